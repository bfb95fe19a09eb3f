"""The PostgreSQL store: the shared contract plus what only a server-backed store must show."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest
from psycopg import sql

from eventcore_lab import Event, EventRegistry, EventToWrite, ExpectedVersion, Metadata
from eventcore_lab.core.errors import InvalidFormat, TooLong
from eventcore_lab.core.executor import Executor
from eventcore_lab.core.ids import new_event_id
from eventcore_lab.errors import (
    ConnectionFailed,
    ConnectionPoolExhausted,
    InvalidArgument,
    MigrationError,
    TransactionError,
    VersionConflict,
)
from eventcore_lab.examples.banking import OpenAccount, account_stream
from eventcore_lab.stores import bulk
from eventcore_lab.stores.memory import MemoryStore
from eventcore_lab.stores.postgres import DSN_ENV, PostgresStore, _migrations
from eventcore_lab.testing.contract import (
    NO_STREAM,
    ContractNote,
    PersistentStoreContract,
    StoreContract,
    note,
    write,
)


@pytest.fixture
def pg_store(pg_url: str, pg_schema: str) -> Iterator[PostgresStore]:
    with PostgresStore(pg_url, schema=pg_schema, pool_max=8) as store:
        yield store


class TestPostgresContract(StoreContract, PersistentStoreContract):
    @pytest.fixture
    def store(self, pg_store: PostgresStore) -> PostgresStore:
        return pg_store

    @pytest.fixture
    def reopen(self, pg_url: str, pg_schema: str) -> Iterator[Callable[[PostgresStore], PostgresStore]]:
        opened: list[PostgresStore] = []

        def reopen(store: PostgresStore) -> PostgresStore:
            store.close()
            opened.append(PostgresStore(pg_url, schema=pg_schema))
            return opened[-1]

        yield reopen
        for store in opened:
            store.close()


# -- helpers ---------------------------------------------------------------------------------------------


def raw(url: str, *, autocommit: bool = False) -> psycopg.Connection[Any]:
    return psycopg.connect(url, autocommit=autocommit, connect_timeout=5)


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def lock_waiters(url: str, marker: str) -> int:
    """How many sessions wait on a lock while running a statement containing ``marker``."""
    with raw(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s",
            [f"%{marker}%"],
        ).fetchone()
    return int(row[0]) if row else 0


def uncommitted_append(conn: psycopg.Connection[Any], schema: str, stream_id: str, text: str) -> int:
    """Run the store's append function in ``conn``'s open transaction; returns the first position."""
    row = conn.execute(
        sql.SQL(
            "SELECT positions[1] FROM {}.append_events(ARRAY[%s], ARRAY[%s::uuid], ARRAY[%s], ARRAY[%s], "
            "ARRAY[%s], '{{}}', '{{}}', '{{}}')"
        ).format(sql.Identifier(schema)),
        [
            stream_id,
            new_event_id(),
            "eventcore.contract.Note",
            msgspec.json.encode(note(text)).decode(),
            msgspec.json.encode(Metadata()).decode(),
        ],
    ).fetchone()
    assert row is not None
    return int(row[0])


# -- positions in commit order ---------------------------------------------------------------------------


@pytest.mark.parametrize("outcome", ["commit", "rollback"])
def test_a_tailer_never_skips_a_smaller_position_that_commits_later(
    pg_store: PostgresStore, pg_url: str, pg_schema: str, outcome: str
) -> None:
    """The skip a plain sequence allows: position 1 commits after position 2, and a tailer that already
    read 2 never sees 1. Here readers stop at the gap until its writer ends; a rolled-back gap is skipped.
    """
    pg_store.migrate()
    expected = [1, 2] if outcome == "commit" else [2]
    seen: list[int] = []

    def tail() -> None:
        with pg_store.subscribe(after=0) as subscription:
            while len(seen) < len(expected):
                event = subscription.poll(timeout=10)
                if event is None:
                    return
                seen.append(event.position)

    reader = threading.Thread(target=tail)
    reader.start()
    slow = raw(pg_url)
    try:
        assert uncommitted_append(slow, pg_schema, "slow", "first") == 1
        [fast] = pg_store.append([write("fast", "second")])  # does not wait for the slow writer
        assert fast.position == 2 and pg_store.head() == 2
        assert pg_store.read_all() == [] and pg_store.read_all(after=0, limit=5) == []
        assert pg_store.wait_for_events(0, timeout=0.2) is False
        assert seen == []
        slow.commit() if outcome == "commit" else slow.rollback()
    finally:
        slow.close()
    reader.join(15)
    assert [e.position for e in pg_store.read_all()] == expected
    assert seen == expected


def test_writers_that_start_after_a_gap_was_seen_do_not_hold_it_back(
    pg_store: PostgresStore, pg_url: str, pg_schema: str
) -> None:
    pg_store.migrate()
    first, third = raw(pg_url), raw(pg_url)
    try:
        assert uncommitted_append(first, pg_schema, "a", "1") == 1
        pg_store.append([write("b", "2")])
        assert pg_store.read_all() == []  # gap at 1 seen while its writer is in flight
        assert uncommitted_append(third, pg_schema, "c", "3") == 3  # a writer that started later
        first.rollback()
        assert [e.position for e in pg_store.read_all()] == [2]  # not held back by the later writer
        with PostgresStore(pg_url, schema=pg_schema) as fresh:
            # A reader that first sees the gap now cannot tell the later writer from the gap's owner,
            # so it waits for both.
            assert fresh.read_all() == []
            third.commit()
            assert [e.position for e in fresh.read_all()] == [2, 3]
        assert [e.position for e in pg_store.read_all()] == [2, 3]
        assert [e.position for e in pg_store.read_all(after=0, limit=1)] == [2]
    finally:
        first.close()
        third.close()


def test_a_gap_whose_writer_has_a_younger_transaction_id_is_not_skipped(
    pg_store: PostgresStore, pg_url: str, pg_schema: str
) -> None:
    """Transaction ids, positions and commits can come in three different orders.

    Q takes its transaction id first, P takes a later id but draws position 1, Q draws 2 and commits.
    P is then running with an id newer than any finished transaction (outside every snapshot's list of
    running ids), and must still hold the reader back.
    """
    pg_store.migrate()
    writer_p, writer_q = raw(pg_url), raw(pg_url)
    try:
        writer_q.execute("SELECT pg_current_xact_id()")
        assert uncommitted_append(writer_p, pg_schema, "p", "1") == 1
        assert uncommitted_append(writer_q, pg_schema, "q", "2") == 2
        writer_q.commit()
        with PostgresStore(pg_url, schema=pg_schema) as reader:
            assert reader.read_all() == []
            writer_p.commit()
            assert [e.position for e in reader.read_all()] == [1, 2]
    finally:
        writer_p.close()
        writer_q.close()


def test_appends_to_other_streams_are_not_blocked_by_a_stream_lock(
    pg_store: PostgresStore, pg_url: str, pg_schema: str
) -> None:
    """Stream locks are per stream: holding one does not stop appends elsewhere (no table lock)."""
    pg_store.migrate()
    with raw(pg_url) as holder:
        holder.execute(sql.SQL("SELECT {}.lock_streams(ARRAY['busy'])").format(sql.Identifier(pg_schema)))
        [stored] = pg_store.append([write("elsewhere", "x")], {"elsewhere": NO_STREAM})
        assert stored.position == 1
        holder.rollback()


# -- immutability ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE {}.events SET event_type = 'Hacked'",
        "DELETE FROM {}.events",
        "TRUNCATE {}.events",
    ],
)
def test_events_cannot_be_changed(
    pg_store: PostgresStore, pg_url: str, pg_schema: str, statement: str
) -> None:
    pg_store.append([write("fixed", "a"), write("fixed", "b")])
    with raw(pg_url, autocommit=True) as conn, pytest.raises(psycopg.Error, match="immutable") as error:
        conn.execute(sql.SQL(statement).format(sql.Identifier(pg_schema)))
    assert error.value.sqlstate == "ECI01"
    assert [e.payload.text for e in pg_store.read_stream("fixed")] == ["a", "b"]
    assert pg_store.read_all()[0].event_type == "eventcore.contract.Note"


# -- connecting ------------------------------------------------------------------------------------------


def test_refused_connection_fails_fast_naming_host_and_port_not_password() -> None:
    started = time.monotonic()
    with pytest.raises(ConnectionFailed) as error:
        PostgresStore("postgresql://someone:topsecret@127.0.0.1:1/somedb", connect_timeout=2)
    assert time.monotonic() - started < 20
    message = str(error.value)
    assert "127.0.0.1:1" in message and "somedb" in message and "topsecret" not in message
    assert error.value.code == "ES002" and error.value.retriable


def test_unreachable_host_fails_within_the_connect_timeout() -> None:
    started = time.monotonic()
    with pytest.raises(ConnectionFailed, match=r"10\.255\.255\.1:5432"):
        PostgresStore("postgresql://postgres@10.255.255.1:5432/postgres", connect_timeout=2)
    assert time.monotonic() - started < 20


def test_malformed_dsn_is_refused_without_echoing_the_password() -> None:
    with pytest.raises(ConnectionFailed) as error:
        PostgresStore("host=127.0.0.1 password=topsecret bogus")
    assert "topsecret" not in str(error.value) and not error.value.retriable


def test_missing_dsn_names_the_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DSN_ENV, raising=False)
    with pytest.raises(ConnectionFailed, match=DSN_ENV):
        PostgresStore()


def test_dsn_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, pg_url: str, pg_schema: str) -> None:
    monkeypatch.setenv(DSN_ENV, pg_url)
    with PostgresStore(schema=pg_schema) as store:
        assert store.append([write("env", "ok")])[0].position == 1


@pytest.mark.parametrize("bad", ["", "1abc", "has-dash", "x" * 64, 'q"uote', "semi;colon"])
def test_bad_schema_names_are_refused(pg_url: str, bad: str) -> None:
    with pytest.raises(InvalidFormat, match="schema name"):
        PostgresStore(pg_url, schema=bad)


def test_pool_exhaustion_is_reported_and_retriable(pg_url: str, pg_schema: str) -> None:
    with PostgresStore(pg_url, schema=pg_schema, pool_min=1, pool_max=1, pool_timeout=0.3) as store:
        store.migrate()
        with raw(pg_url) as holder:
            holder.execute(sql.SQL("SELECT {}.lock_streams(ARRAY['held'])").format(sql.Identifier(pg_schema)))
            blocked = threading.Thread(target=lambda: store.append([write("held", "x")]))
            blocked.start()  # takes the only pooled connection and waits for the stream lock
            wait_until(lambda: lock_waiters(pg_url, "append_events") >= 1)
            with pytest.raises(ConnectionPoolExhausted) as error:
                store.head()
            assert error.value.code == "ES003" and error.value.retriable and "pool_max=1" in str(error.value)
            holder.rollback()
        blocked.join(10)
        assert store.stream_version("held") == 1


@pytest.mark.parametrize(
    ("error", "kind", "retriable"),
    [
        (psycopg.errors.DeadlockDetected("x"), TransactionError, True),
        (psycopg.errors.SerializationFailure("x"), TransactionError, True),
        (psycopg.errors.QueryCanceled("x"), TransactionError, True),
        (psycopg.errors.AdminShutdown("x"), ConnectionFailed, True),
        (psycopg.OperationalError("server closed the connection"), ConnectionFailed, True),
        (psycopg.errors.UniqueViolation("x"), TransactionError, False),
    ],
)
def test_database_errors_map_to_store_errors(
    pg_store: PostgresStore, error: psycopg.Error, kind: type[Exception], retriable: bool
) -> None:
    translated = pg_store._translate(error)
    assert type(translated) is kind and translated.retriable is retriable  # type: ignore[attr-defined]


# -- schema migrations -----------------------------------------------------------------------------------


def schema_versions(url: str, schema: str) -> list[int]:
    with raw(url, autocommit=True) as conn:
        query = sql.SQL("SELECT version FROM {}.schema_version ORDER BY version").format(
            sql.Identifier(schema)
        )
        return [row[0] for row in conn.execute(query)]


LATEST = _migrations.MIGRATIONS[-1][0]
EVERY_VERSION = [version for version, _ in _migrations.MIGRATIONS]


def test_migrate_is_idempotent_and_versioned(pg_store: PostgresStore, pg_url: str, pg_schema: str) -> None:
    assert pg_store.migrate() == LATEST
    pg_store.append([write("m", "kept")])
    assert pg_store.migrate() == LATEST
    assert schema_versions(pg_url, pg_schema) == EVERY_VERSION
    assert pg_store.read_stream("m")[0].payload.text == "kept"


def test_a_version_1_schema_is_upgraded_in_place(pg_url: str, pg_schema: str) -> None:
    with PostgresStore(pg_url, schema=pg_schema) as old:  # what eventcore-lab wrote before migration 2
        assert old.migrate(up_to=1) == 1
    with raw(pg_url, autocommit=True) as conn:  # an append made by a version-1 client
        event = [["m"], [uuid.uuid4()], ["eventcore.contract.Note"], ['{"text": "kept"}']]
        no_checks: list[list[Any]] = [[], [], []]
        conn.execute(
            f'SELECT * FROM "{pg_schema}".append_events(%s, %s, %s, %s, %s, %s, %s, %s)',
            [*event, ['{"correlation_id": "c"}'], *no_checks],
        )
    with PostgresStore(pg_url, schema=pg_schema) as store:
        assert store.migrate() == LATEST
        assert schema_versions(pg_url, pg_schema) == EVERY_VERSION
        result = Executor(store, timeout=10).execute(OpenAccount(account_stream("up"), owner="U"))
        assert result.events_written[0].position == 2  # the bounded append of migration 2 works
        assert store.read_stream("m")[0].payload.text == "kept"


def test_first_use_migrates_from_many_threads_at_once(pg_url: str, pg_schema: str) -> None:
    stores = [PostgresStore(pg_url, schema=pg_schema, pool_min=0, pool_max=2) for _ in range(4)]
    try:
        threads = [
            threading.Thread(target=store.append, args=([write(f"first-{n}", "x")],))
            for n, store in enumerate(stores)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert stores[0].head() == 4
        assert schema_versions(pg_url, pg_schema) == EVERY_VERSION
    finally:
        for store in stores:
            store.close()


def test_a_newer_schema_is_refused(pg_store: PostgresStore, pg_url: str, pg_schema: str) -> None:
    pg_store.migrate()
    with raw(pg_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("INSERT INTO {}.schema_version (version) VALUES (99)").format(sql.Identifier(pg_schema))
        )
    with PostgresStore(pg_url, schema=pg_schema) as newer, pytest.raises(MigrationError, match="99") as error:
        newer.head()
    assert error.value.code == "ES005"


def test_a_failing_migration_changes_nothing(pg_url: str, pg_schema: str) -> None:
    schema = sql.Identifier(pg_schema)
    with raw(pg_url, autocommit=True) as conn:  # a table of the user's that migration 1 also creates
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(schema))
        conn.execute(sql.SQL("CREATE TABLE {}.checkpoints (mine text)").format(schema))
    with PostgresStore(pg_url, schema=pg_schema) as store, pytest.raises(MigrationError, match="migration 1"):
        store.migrate()
    with raw(pg_url, autocommit=True) as conn:  # migration 1 was rolled back as a whole
        events = conn.execute("SELECT to_regclass(%s)", [f'"{pg_schema}".events']).fetchone()
        assert events == (None,)
        assert conn.execute(sql.SQL("SELECT count(*) FROM {}.checkpoints").format(schema)).fetchone() == (0,)
        conn.execute(sql.SQL("DROP TABLE {}.checkpoints").format(schema))
    with PostgresStore(pg_url, schema=pg_schema) as store:  # once the conflict is gone, it migrates
        assert store.migrate() == _migrations.MIGRATIONS[-1][0]


def test_schemas_keep_stores_apart(pg_url: str, pg_schema: str) -> None:
    other = pg_schema + "_b"
    try:
        with PostgresStore(pg_url, schema=pg_schema) as one, PostgresStore(pg_url, schema=other) as two:
            one.append([write("same-id", "in one")])
            two.append([write("same-id", "in two"), write("same-id", "again")])
            assert [e.payload.text for e in one.read_stream("same-id")] == ["in one"]
            assert two.stream_version("same-id") == 2 and one.head() == 1
    finally:
        with raw(pg_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(other)))


# -- notifications and checkpoints -----------------------------------------------------------------------


def test_notify_wakes_a_waiter_in_another_store_instance(
    pg_store: PostgresStore, pg_url: str, pg_schema: str
) -> None:
    pg_store.append([write("n", "before")])
    assert pg_store.wait_for_events(after=1, timeout=0.1) is False
    with PostgresStore(pg_url, schema=pg_schema) as writer:
        timer = threading.Timer(0.2, lambda: writer.append([write("n", "later")]))
        timer.start()
        assert pg_store.wait_for_events(after=1, timeout=30) is True  # would time out without NOTIFY
        timer.join()
    assert pg_store.head() == 2


def test_checkpoints_round_trip_and_are_shared(pg_store: PostgresStore, pg_url: str, pg_schema: str) -> None:
    assert pg_store.checkpoint_load("balances") == 0
    pg_store.checkpoint_save("balances", 7)
    pg_store.checkpoint_save("balances", 12)
    pg_store.checkpoint_save("other ' name; --", 3)
    with PostgresStore(pg_url, schema=pg_schema) as again:
        assert again.checkpoint_load("balances") == 12
        assert again.checkpoint_load("other ' name; --") == 3
    with pytest.raises(InvalidFormat):
        pg_store.checkpoint_save("balances", -1)
    with pytest.raises(InvalidFormat):
        pg_store.checkpoint_save("", 1)
    assert pg_store.checkpoint_load("balances") == 12


# -- bad input -------------------------------------------------------------------------------------------


class Odd(Event):
    event_type = "eventcore.test.Odd"
    text: str


def test_event_types_with_sql_are_stored_verbatim_and_nul_is_refused(pg_url: str, pg_schema: str) -> None:
    registry = EventRegistry()
    tricky = "'; DROP TABLE events; -- ü ✓"
    registry.register(ContractNote, tricky)
    registry.register(Odd, "nul\x00type")
    with PostgresStore(pg_url, schema=pg_schema, registry=registry) as store:
        store.append([write("s", "a")])
        with pytest.raises(InvalidFormat, match="NUL"):
            store.append([write("s", "b"), EventToWrite("s", Odd(text="x"))])
        assert [(e.event_type, e.payload.text) for e in store.read_all()] == [(tricky, "a")]
        store.append([write("s", "c")])
        assert store.stream_version("s") == 2


def test_nul_and_long_unicode_round_trip_where_postgres_allows_them(pg_store: PostgresStore) -> None:
    longest = "ü✓" * 127 + "x"  # 255 characters
    metadata = Metadata(correlation_id="c\x00d", custom={"k": "nul\x00inside"})
    pg_store.append([EventToWrite(longest, note("text with \x00 NUL"), metadata)])
    [event] = pg_store.read_stream(longest)
    assert (
        event.stream_id == longest
        and event.payload.text == "text with \x00 NUL"
        and event.metadata == metadata
    )


def test_a_failed_append_leaves_the_store_usable(pg_store: PostgresStore) -> None:
    pg_store.append([write("s", "a")])
    for _ in range(3):
        with pytest.raises(VersionConflict, match=r"s: expected version 0, actual version 1"):
            pg_store.append([write("s", "b"), write("t", "b")], {"s": ExpectedVersion.exact(0)})
    with pytest.raises(TooLong):
        pg_store.append([write("t", "x" * (2 << 20))])
    assert pg_store.stream_version("t") == 0
    assert pg_store.append([write("t", "ok")])[0].position == 2


# -- bulk ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_export_then_import_into_another_schema(
    pg_store: PostgresStore, pg_url: str, tmp_path: Path, suffix: str
) -> None:
    written = pg_store.append([write(f"b-{i % 3}", str(i)) for i in range(20)])
    path = tmp_path / f"history{suffix}"
    assert pg_store.export_events(path, progress=False) == 20
    assert [e.event_id for e in pg_store.copy_out(after=5)] == [e.event_id for e in written[5:]]
    other = f"ectest_{uuid.uuid4().hex[:16]}"
    try:
        with PostgresStore(pg_url, schema=other) as target:
            target.append([write("existing", "x")])
            assert target.import_events(bulk.read_events(path), progress=False) == 20
            imported = target.read_all(after=1)
            assert [(e.event_id, e.stream_id, e.version, e.payload) for e in imported] == [
                (e.event_id, e.stream_id, e.version, e.payload) for e in written
            ]
            assert [e.position for e in imported] == list(range(2, 22))
            with pytest.raises(VersionConflict, match="b-0"):  # importing again would duplicate versions
                target.import_events(bulk.read_events(path))
            assert target.head() == 21
    finally:
        with raw(pg_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(other)))


def test_import_refuses_bad_items_before_sending_anything(pg_store: PostgresStore) -> None:
    [event] = pg_store.append([write("s", "a")])
    with pytest.raises(InvalidFormat):
        pg_store.import_events([msgspec.structs.replace(event, stream_id="t", version=1), "not an event"])  # type: ignore[list-item]
    with pytest.raises(VersionConflict):
        pg_store.import_events(
            [
                msgspec.structs.replace(event, stream_id="t", version=v, event_id=uuid.uuid4())
                for v in (1, 2, 4)
            ]
        )
    assert pg_store.head() == 1


# -- the stream cache (cache_events > 0) -------------------------------------------------------------


@pytest.fixture
def cached(pg_url: str, pg_schema: str) -> Iterator[PostgresStore]:
    with PostgresStore(pg_url, schema=pg_schema, pool_max=4, cache_events=1000) as store:
        yield store


class TestPostgresContractCached(StoreContract):
    """The whole contract again, reads served from the cache wherever it holds a stream."""

    @pytest.fixture
    def store(self, cached: PostgresStore) -> PostgresStore:
        return cached


def count_queries(store: PostgresStore, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    queries: list[str] = []
    original = store._events

    def counting(query: str, params: Any) -> Any:
        queries.append(query)
        return original(query, params)

    monkeypatch.setattr(store, "_events", counting)
    return queries


def silent(store: PostgresStore, monkeypatch: pytest.MonkeyPatch) -> PostgresStore:
    """``store`` as a writer whose NOTIFYs never arrive (lost, or its process died before sending)."""
    monkeypatch.setattr(store, "_wake_listeners", lambda streams: None)
    return store


def test_cached_streams_are_read_without_the_database_and_follow_own_appends(
    cached: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached.append([write("c-1", "a")])
    first = cached.read_streams(["c-1", "c-new"])  # c-1 written by this store: cached already
    queries = count_queries(cached, monkeypatch)
    again = cached.read_streams(["c-1", "c-new"])
    assert again == first and again.versions == {"c-1": 1, "c-new": 0}
    written = cached.append([write("c-1", "b"), write("c-new", "x")], {"c-1": ExpectedVersion.exact(1)})
    after = cached.read_streams(["c-new", "c-1"])
    assert queries == []
    assert [e.payload.text for e in after.events] == ["a", "b", "x"]
    assert after.events[1:] == written and after.versions == {"c-new": 1, "c-1": 2}


def test_a_conflict_drops_the_stale_streams_even_without_a_notification(
    cached: PostgresStore, pg_url: str, pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached.append([write("s-1", "a")])
    assert cached.read_streams(["s-1"]).versions == {"s-1": 1}
    with PostgresStore(pg_url, schema=pg_schema) as other:
        silent(other, monkeypatch).append([write("s-1", "elsewhere")])
        assert cached.read_streams(["s-1"]).versions == {"s-1": 1}  # stale, as documented
        with pytest.raises(VersionConflict) as info:
            cached.append([write("s-1", "b")], {"s-1": ExpectedVersion.exact(1)})
        assert info.value.conflicts == {"s-1": ("version 1", 2)}
    fresh = cached.read_streams(["s-1"])
    assert fresh.versions == {"s-1": 2} and [e.payload.text for e in fresh.events] == ["a", "elsewhere"]


def test_other_writers_notifications_invalidate_cached_streams(
    cached: PostgresStore, pg_url: str, pg_schema: str
) -> None:
    cached.append([write("n-1", "a"), write("n-2", "a")])
    cached.read_streams(["n-1", "n-2"])
    with PostgresStore(pg_url, schema=pg_schema) as other:
        other.append([write("n-1", "elsewhere")])
        wait_until(lambda: cached.read_streams(["n-1"]).versions == {"n-1": 2})
    assert [e.payload.text for e in cached.read_streams(["n-1", "n-2"]).events] == ["a", "a", "elsewhere"]


def test_single_stream_reads_and_versions_never_use_the_cache(
    cached: PostgresStore, pg_url: str, pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached.append([write("u-1", "a")])
    cached.read_streams(["u-1"])
    with PostgresStore(pg_url, schema=pg_schema) as other:
        silent(other, monkeypatch).append([write("u-1", "elsewhere")])
    assert [e.payload.text for e in cached.read_stream("u-1")] == ["a", "elsewhere"]
    assert cached.stream_version("u-1") == 2


def test_the_cache_keeps_at_most_cache_events(pg_url: str, pg_schema: str) -> None:
    with PostgresStore(pg_url, schema=pg_schema, cache_events=3) as store:
        store.append([write(f"l-{n}", "a") for n in range(5)] + [write("l-big", str(n)) for n in range(4)])
        for n in range(5):
            store.read_streams([f"l-{n}"])
        assert store._cache is not None
        assert list(store._cache._streams) == ["l-2", "l-3", "l-4"]
        assert store.read_streams(["l-big"]).versions == {"l-big": 4}  # too big to keep, still read
        assert "l-big" not in store._cache._streams


@pytest.mark.parametrize("bad", [-1, 1.5, "10"])
def test_bad_cache_sizes_are_refused(pg_url: str, bad: Any) -> None:
    with pytest.raises(InvalidFormat, match="cache_events"):
        PostgresStore(pg_url, schema="unused_schema", cache_events=bad)


def test_migrate_up_to_a_version_that_does_not_exist_is_refused(pg_url: str, pg_schema: str) -> None:
    with PostgresStore(pg_url, schema=pg_schema) as store:
        for bad in (0, 99, True, "1"):
            with pytest.raises(InvalidArgument, match="up_to"):
                store.migrate(up_to=bad)  # type: ignore[arg-type]
        assert store.migrate(up_to=1) == 1 and store.migrate() == _migrations.MIGRATIONS[-1][0]


def test_one_import_may_hold_more_streams_than_the_server_has_lock_slots(pg_store: PostgresStore) -> None:
    """An import takes one exclusive key, not a lock per stream: 20,000 new streams in one call used to
    exhaust the server's lock table (max_locks_per_transaction x max_connections, 6,400 by default)."""
    source = MemoryStore()
    streams = [f"many-{i}" for i in range(20_000)]
    for start in range(0, len(streams), 5_000):
        source.append([write(sid, f"n{sid}") for sid in streams[start : start + 5_000]])
    assert pg_store.import_events(source.read_all()) == len(streams)
    assert pg_store.head() == len(streams)
    assert [pg_store.stream_version(sid) for sid in (streams[0], streams[-1])] == [1, 1]
    pg_store.append([write(streams[-1], "after")], {streams[-1]: ExpectedVersion.exact(1)})
    assert pg_store.stream_version(streams[-1]) == 2
