"""DuckDB's group commit: one client's append that the database refuses fails that append alone.

The database is made to refuse rows the way a user could: the ``events`` table of the file is created
beforehand with a CHECK constraint (the store keeps an existing table), so DuckDB itself rejects every
row of a stream whose name starts with ``refused-``, after the store validated and queued it.
``EVENTCORE_GROUP_COMMIT_APPENDS`` sets how many appends each of the 32 clients makes (default 15).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from eventcore_lab import ExpectedVersion
from eventcore_lab.core.errors import InvalidFormat, TransactionError
from eventcore_lab.errors import VersionConflict
from eventcore_lab.stores.duckdb import DuckDBStore
from eventcore_lab.testing.contract import write

CLIENTS = 32
APPENDS = int(os.environ.get("EVENTCORE_GROUP_COMMIT_APPENDS", "15"))


def refusing_file(path: Path) -> Path:
    """A DuckDB file whose events table refuses the streams ``refused-*``, made before the store opens it."""
    with duckdb.connect(str(path)) as con:
        con.execute(
            "create table events (position bigint primary key, event_id uuid not null, "
            "stream_id varchar not null check (stream_id not like 'refused-%'), version bigint not null, "
            "event_type varchar not null, payload json not null, metadata json not null, "
            "recorded_at timestamptz not null)"
        )
    return path


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBStore]:
    with DuckDBStore(refusing_file(tmp_path / "refusing.duckdb")) as store:
        yield store


def assert_log_whole(store: DuckDBStore) -> None:
    """Positions 1..head without a hole, each stream's versions 1..n, versions as the store reports."""
    events = store.read_all()
    assert [e.position for e in events] == list(range(1, store.head() + 1))
    versions: dict[str, int] = {}
    for event in events:
        assert event.version == versions.get(event.stream_id, 0) + 1
        versions[event.stream_id] = event.version
    for sid, version in versions.items():
        assert store.stream_version(sid) == version
        assert [e.version for e in store.read_stream(sid)] == list(range(1, version + 1))


def test_a_refused_append_fails_alone(store: DuckDBStore) -> None:
    store.append([write("fine", "a")])
    with pytest.raises(TransactionError) as info:
        store.append([write("fine", "b"), write("refused-1", "x")])
    assert not info.value.retriable
    assert isinstance(info.value.__cause__, duckdb.ConstraintException)
    assert "refused-1" not in store.stream_ids()
    assert [e.payload.text for e in store.read_stream("fine")] == ["a"]
    assert store.append([write("fine", "c")])[0].position == 2
    assert_log_whole(store)


def test_32_threads_append_while_one_sends_appends_the_database_refuses(tmp_path: Path) -> None:
    path = refusing_file(tmp_path / "refusing.duckdb")
    failures: list[BaseException] = []
    refused: list[BaseException] = []
    start = threading.Barrier(CLIENTS)
    with DuckDBStore(path) as store:

        def good(client: int) -> None:
            start.wait()
            try:
                for n in range(APPENDS):
                    expected = {f"good-{client}": ExpectedVersion.exact(n)}
                    store.append(
                        [write(f"good-{client}", str(n)), write(f"good-{client}-log", str(n))], expected
                    )
            except BaseException as exc:
                failures.append(exc)

        def bad() -> None:
            start.wait()
            for n in range(APPENDS):
                try:
                    store.append([write("refused-stream", str(n))])
                except TransactionError as exc:
                    refused.append(exc)

        threads = [threading.Thread(target=good, args=(c,)) for c in range(CLIENTS - 1)]
        threads.append(threading.Thread(target=bad))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        assert not failures, failures[0]
        assert len(refused) == APPENDS
        assert len({id(exc) for exc in refused}) == APPENDS  # each append its own exception ...
        for exc in refused:  # ... chained to DuckDB's refusal, and not worth retrying
            assert isinstance(exc.__cause__, duckdb.ConstraintException)
            assert not exc.retriable
        assert store.head() == 2 * APPENDS * (CLIENTS - 1)
        assert_log_whole(store)
    with DuckDBStore(path) as reopened:  # what was acknowledged is in the file, without holes
        assert reopened.head() == 2 * APPENDS * (CLIENTS - 1)
        assert_log_whole(reopened)


def test_appends_queued_behind_a_refused_one_on_the_same_stream_conflict_and_retry(tmp_path: Path) -> None:
    """An append validated against a refused append's versions cannot keep them: it gets a (retriable)
    version conflict, and a retry succeeds. Appends on other streams move down to fill the positions."""
    path = refusing_file(tmp_path / "refusing.duckdb")
    failures: list[BaseException] = []
    conflicts = 0
    start = threading.Barrier(9)
    with DuckDBStore(path) as store:

        def shared(client: int) -> None:
            nonlocal conflicts
            start.wait()
            try:
                for n in range(20):
                    while True:
                        try:
                            store.append([write("shared", f"{client}-{n}"), write(f"own-{client}", str(n))])
                            break
                        except VersionConflict as exc:
                            assert exc.retriable
                            conflicts += 1
            except BaseException as exc:
                failures.append(exc)

        def bad() -> None:
            start.wait()
            for n in range(20):
                try:
                    store.append([write("shared", f"bad-{n}"), write("refused-x", str(n))])
                    failures.append(AssertionError(f"refused append {n} was accepted"))
                except TransactionError:
                    pass
                except BaseException as exc:
                    failures.append(exc)

        threads = [threading.Thread(target=shared, args=(c,)) for c in range(8)]
        threads.append(threading.Thread(target=bad))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        assert not failures, failures[0]
        assert store.stream_version("shared") == 160
        assert not [e for e in store.read_stream("shared") if e.payload.text.startswith("bad")]
        assert_log_whole(store)


def test_a_parquet_file_changing_during_its_import_fails_only_the_import(
    store: DuckDBStore, tmp_path: Path
) -> None:
    """The import is refused with its own library error; appends committing meanwhile are untouched."""
    with DuckDBStore(tmp_path / "source.duckdb") as source:
        source.append([write(f"imported-{n}", "i") for n in range(50)])
        source.export_events(tmp_path / "history.parquet")
    parquet = tmp_path / "history.parquet"
    stop = threading.Event()
    failures: list[BaseException] = []
    outcomes: list[str] = []

    def touch() -> None:  # the file's modification time changes all the time: "changed during import"
        stamp = parquet.stat().st_mtime_ns
        while not stop.is_set():
            stamp += 1000
            os.utime(parquet, ns=(stamp, stamp))

    def appender(client: int) -> None:
        try:
            n = 0
            while not stop.is_set():
                store.append([write(f"client-{client}", str(n))])
                n += 1
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=touch)] + [
        threading.Thread(target=appender, args=(c,)) for c in range(8)
    ]
    for thread in threads:
        thread.start()
    try:
        for _ in range(20):
            try:
                store.import_file(parquet)
                outcomes.append("imported")
                break  # the streams exist now: a second import would conflict
            except InvalidFormat as exc:
                assert "changed while it was being imported" in str(exc)
                outcomes.append("changed")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert "changed" in outcomes
    assert not failures, failures[0]
    assert_log_whole(store)
