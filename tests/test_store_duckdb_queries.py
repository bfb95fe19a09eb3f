"""DuckDB specifics of queries: the in-place upgrade to table version 3 (tags), and append conditions
that see appends queued ahead of them in the group-commit queue."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import duckdb
import pytest

from eventcore_lab.core.errors import AppendConditionFailed
from eventcore_lab.core.query import AppendCondition, Query, QueryItem
from eventcore_lab.stores.duckdb import DuckDBStore
from eventcore_lab.stores.duckdb._connection import SCHEMA_VERSION
from eventcore_lab.testing._contract_events import tagged
from eventcore_lab.testing.contract import write

_OLD_TABLE = """
create table eventcore_schema (version integer not null, applied_at timestamptz not null);
create table events (
    position bigint primary key, event_id uuid not null, stream_id varchar not null,
    version bigint not null, event_type varchar not null, payload json not null, metadata json not null,
    recorded_at timestamptz not null {extra}
);
create table checkpoints (
    name varchar primary key, position bigint not null, updated_at timestamptz not null
);
insert into events values (1, uuid(), 'old-1', 1, 'eventcore.contract.Note', '{{"text": "old"}}',
    '{{"correlation_id": "c"}}', now() {value});
insert into eventcore_schema values ({version}, now());
"""


@pytest.mark.parametrize("version", [1, 2])
def test_an_older_file_is_upgraded_in_place_and_its_rows_carry_no_tags(tmp_path: Path, version: int) -> None:
    path = tmp_path / f"v{version}.duckdb"
    extra, value = ("", "") if version == 1 else (", schema_version integer not null default 1", ", 1")
    con = duckdb.connect(str(path))
    con.execute(_OLD_TABLE.format(extra=extra, value=value, version=version))
    con.close()
    with DuckDBStore(path) as store:
        [old] = store.read_all()
        assert old.payload.text == "old" and old.tags == ()
        [new] = store.append([tagged("new-1", "new", "course:7")])
        assert store.read_query(Query.of(QueryItem(tags=("course:7",)))).events == [new]
        assert store.sql("select max(version) as v from eventcore_schema")["v"][0] == SCHEMA_VERSION == 3
    with DuckDBStore(path) as again:
        assert [e.tags for e in again.read_all()] == [(), ("course:7",)]


def test_a_condition_sees_appends_queued_ahead_of_it(tmp_path: Path) -> None:
    """While the writer is held inside a commit, a matching append queues behind it; a conditional append
    made meanwhile either fails or commits before it: never both succeed out of order."""
    entered, release = threading.Event(), threading.Event()

    def hold_first_commit(rows: int) -> None:
        if not entered.is_set():
            entered.set()
            release.wait(30)

    course_8 = Query.of(QueryItem(tags=("course:8",)))
    with DuckDBStore(tmp_path / "q.duckdb", commit_hook=hold_first_commit) as store:
        results: dict[str, object] = {}

        def run(name: str, call: object) -> None:
            try:
                results[name] = call()  # type: ignore[operator]
            except AppendConditionFailed as exc:
                results[name] = exc

        first = threading.Thread(
            target=run, args=("first", lambda: store.append([tagged("a", "7", "course:7")]))
        )
        first.start()
        assert entered.wait(30)
        queued = threading.Thread(
            target=run, args=("queued", lambda: store.append([tagged("b", "8", "course:8")]))
        )
        queued.start()
        time.sleep(0.2)  # lets the matching append reach the queue first (either order is checked below)
        conditional = threading.Thread(
            target=run,
            args=(
                "conditional",
                lambda: store.append([tagged("c", "x", "course:8")], condition=AppendCondition(course_8, 0)),
            ),
        )
        conditional.start()
        release.set()
        for thread in (first, queued, conditional):
            thread.join(30)
        matching = store.read_query(course_8).events
        if isinstance(results["conditional"], AppendConditionFailed):
            assert [e.stream_id for e in matching] == ["b"]
        else:  # it ran first: the queued append came after it
            assert [e.stream_id for e in matching] == ["c", "b"]
        assert store.head() == len(store.read_all()) == 2 + (len(matching) == 2)
        store.append([write("d", "still usable")])
