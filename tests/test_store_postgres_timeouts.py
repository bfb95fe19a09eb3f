"""PostgreSQL store calls end with the command's time budget, and connection errors say whether to retry.

The executor hands what is left of a command's timeout to the store calls it makes; PostgreSQL turns
it into server-side ``statement_timeout`` and ``lock_timeout``, so a call blocked on a lock held by
another session ends as :class:`Timeout` instead of hanging.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
import pytest
from psycopg import sql

from eventcore_lab import Executor, MemoryStore, RetryConfig, StoredEvent
from eventcore_lab.core._deadline import remaining
from eventcore_lab.core.errors import ConnectionFailed, Timeout
from eventcore_lab.examples.banking import OpenAccount, account_stream
from eventcore_lab.stores.postgres import PostgresStore

BUDGET = 1.0
#: Slack over the budget for connecting, planning and the test machine being busy: a call that was
#: not bounded would instead wait until the blocking session ends, which is never in these tests.
SLACK = 4.0


@pytest.fixture
def store(pg_url: str, pg_schema: str) -> Iterator[PostgresStore]:
    with PostgresStore(pg_url, schema=pg_schema) as store:
        store.migrate()
        yield store


@pytest.fixture
def other_session(pg_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A second session with an open transaction: whatever it locks stays locked until the test ends, or
    for 8 s at most (so that a store call that is not bounded fails the test rather than hanging it)."""
    with psycopg.connect(pg_url) as conn:
        conn.execute("SET idle_in_transaction_session_timeout = '8s'")
        yield conn
        with contextlib.suppress(psycopg.Error):
            conn.rollback()


def causes(error: BaseException) -> Iterator[BaseException]:
    """``error`` and the errors it was raised from, outermost first."""
    current: BaseException | None = error
    while current is not None:
        yield current
        current = current.__cause__


def test_the_executor_hands_the_time_left_to_the_store() -> None:
    seen: list[float | None] = []

    class Watching(MemoryStore):
        def append(self, events: Sequence[Any], expected: Any = None) -> list[StoredEvent]:
            seen.append(remaining())
            return super().append(events, expected)

    store = Watching()
    Executor(store, timeout=5.0).execute(OpenAccount(account_stream("w"), owner="W"))
    Executor(store, timeout=None).execute(OpenAccount(account_stream("v"), owner="V"))
    assert seen[0] is not None and 0 < seen[0] <= 5.0
    assert seen[1] is None
    assert remaining() is None  # nothing left behind once the command is done


def test_an_append_blocked_on_a_stream_lock_raises_timeout_within_the_budget(
    store: PostgresStore, other_session: psycopg.Connection[Any], pg_schema: str
) -> None:
    account = account_stream("blocked")
    other_session.execute(  # another writer mid-append on the same stream: holds its lock
        sql.SQL(
            "SELECT * FROM {}.append_events(%s::text[], %s::uuid[], %s::text[], %s::text[], %s::text[], "
            "%s::text[], %s::text[], %s::int8[])"
        ).format(sql.Identifier(pg_schema)),
        (
            [account],
            [uuid.uuid4()],
            ["AccountOpened"],
            ['{"owner":"other"}'],
            ['{"correlation_id":"x"}'],
            [],
            [],
            [],
        ),
    )
    executor = Executor(store, timeout=BUDGET, retry=RetryConfig(max_attempts=5, initial_delay=0.01))
    started = time.monotonic()
    with pytest.raises(Timeout) as info:
        executor.execute(OpenAccount(account, owner="Me"))
    assert time.monotonic() - started < BUDGET + SLACK
    assert any(
        isinstance(c, psycopg.errors.LockNotAvailable | psycopg.errors.QueryCanceled)
        for c in causes(info.value)
    )
    other_session.rollback()
    assert store.stream_version(account) == 0  # nothing was written, and the store works on
    assert Executor(store, timeout=BUDGET).execute(OpenAccount(account, owner="Me")).attempts == 1


def test_a_read_blocked_by_a_table_lock_raises_timeout_within_the_budget(
    store: PostgresStore, other_session: psycopg.Connection[Any], pg_schema: str
) -> None:
    other_session.execute(
        sql.SQL("LOCK TABLE {}.events IN ACCESS EXCLUSIVE MODE").format(sql.Identifier(pg_schema))
    )
    started = time.monotonic()
    with pytest.raises(Timeout):
        Executor(store, timeout=BUDGET, retry=RetryConfig.none()).execute(
            OpenAccount(account_stream("r"), owner="R")
        )
    assert time.monotonic() - started < BUDGET + SLACK
    other_session.rollback()
    assert store.read_streams([account_stream("r")]).versions == {account_stream("r"): 0}


def test_store_calls_outside_a_command_are_not_bounded(store: PostgresStore) -> None:
    assert remaining() is None
    store.append([])
    assert store.read_streams(["free"]).versions == {"free": 0}


def with_path(url: str, path: str, user: str | None = None) -> str:
    """``url`` with its database path (and query) replaced, and a password added."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    host, port = info.get("host", "127.0.0.1"), info.get("port", "5432")
    user = user or info.get("user", "postgres")
    return f"postgresql://{user}:hunter2secret@{host}:{port}/{path}"  # trust auth ignores the password


@pytest.mark.parametrize(
    ("path", "retriable"),
    [
        ("no_such_database_x", False),
        ("postgres?options=-cno_such_setting%3D1", False),
        ("postgres?options=-cstatement_timeout%3Dforever", False),
        ("postgres?sslmode=require", False),
        ("postgres?no_such_keyword=1", False),
    ],
)
def test_a_dsn_that_can_never_work_is_not_retriable(pg_url: str, path: str, retriable: bool) -> None:
    with pytest.raises(ConnectionFailed) as info:
        PostgresStore(with_path(pg_url, path), schema="unused_schema")
    assert info.value.retriable is retriable
    assert info.value.__cause__ is not None
    assert "hunter2secret" not in str(info.value) and "hunter2secret" not in str(info.value.__cause__)


def test_an_unknown_role_is_not_retriable(pg_url: str) -> None:
    url = with_path(pg_url, "postgres", user="no_such_role_x")
    with pytest.raises(ConnectionFailed) as error:
        PostgresStore(url, schema="unused_schema")
    assert not error.value.retriable
    assert "hunter2secret" not in str(error.value)


def test_a_refused_connection_is_retriable() -> None:
    with pytest.raises(ConnectionFailed) as info:  # nothing listens on port 1
        PostgresStore("postgresql://postgres:hunter2secret@127.0.0.1:1/postgres", schema="unused_schema")
    assert info.value.retriable
    assert isinstance(info.value.__cause__, psycopg.OperationalError)
    assert "hunter2secret" not in str(info.value) and "hunter2secret" not in str(info.value.__cause__)
