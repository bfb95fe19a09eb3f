"""DuckDBStore.sql() cannot change anything, whatever the statement: it is read-only by construction."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eventcore_lab.core.errors import InvalidFormat
from eventcore_lab.stores.duckdb import DuckDBStore
from eventcore_lab.testing.contract import write

# Each of these would change the log, the schema, the settings or the files if it ran.
WRITES = [
    "delete from events",
    "update events set version = 0",
    "insert into events select * from events",
    "drop table events",
    "alter table events add column extra integer",
    "create table scratch (x integer)",
    "create view recent as select * from events",
    "create sequence counter",
    "truncate events",
    "explain analyze delete from events",
    "explain analyze update events set version = 0",
    "explain delete from events",
    "with gone as (delete from events returning *) select count(*) from gone",
    "with moved as (update events set version = version + 1 returning *) select * from moved",
    "select * from events; delete from events",
    "select 1; select 2",
    "pragma enable_profiling",
    "pragma threads = 3",
    "set threads = 3",
    "reset threads",
    "attach ':memory:' as other",
    "detach memory",
    "copy events to '{tmp}/out.csv'",
    "copy events from '{tmp}/in.csv'",
    "copy (select * from events) to '{tmp}/out.parquet' (format parquet)",
    "export database '{tmp}/dump'",
    "import database '{tmp}/dump'",
    "install json",
    "load json",
    "checkpoint",
    "force checkpoint",
    "call pragma_version()",
    "begin transaction",
    "commit",
    "rollback",
    "vacuum",
    "insert or replace into checkpoints values ('x', 99, now())",
    "delete from checkpoints",
    "create macro twice(x) as x * 2",
    "pivot events on event_type",
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBStore]:
    with DuckDBStore(tmp_path / "log.duckdb") as store:
        store.append([write("s-1", "a"), write("s-2", "b")])
        store.append([write("s-1", "c")])
        store.checkpoint_save("projection", 2)
        yield store


def everything(store: DuckDBStore) -> tuple[Any, ...]:
    """The log, checkpoints, tables, attached databases and settings, as seen from a new query."""
    log = store.sql("select * replace (tags::varchar as tags) from events order by position").to_dict(
        "records"
    )
    checkpoints = store.sql("select name, position from checkpoints").to_dict("records")
    tables = store.sql("select table_name from duckdb_tables() order by 1")["table_name"].tolist()
    views = store.sql("select count(*) as n from duckdb_views() where not internal")["n"].tolist()
    databases = store.sql("select database_name from duckdb_databases() order by 1")["database_name"].tolist()
    threads = store.sql("select current_setting('threads') as t")["t"].tolist()
    return log, checkpoints, tables, views, databases, threads


@pytest.mark.parametrize("statement", WRITES)
def test_no_statement_changes_anything_and_the_store_stays_usable(
    store: DuckDBStore, tmp_path: Path, statement: str
) -> None:
    (tmp_path / "in.csv").write_text("")
    before = everything(store)
    files = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(InvalidFormat):
        store.sql(statement.format(tmp=tmp_path))
    assert everything(store) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == files
    assert store.append([write("s-2", "after")])[0].position == 4
    assert [e.payload.text for e in store.read_stream("s-2")] == ["b", "after"]


@pytest.mark.parametrize(
    "query",
    [
        "select stream_id, count(*) as n from events group by 1 order by 1",
        "from events select stream_id, version order by position",
        "with counted as (select stream_id, count(*) as n from events group by 1) select * from counted",
        "describe events",
        "summarize events",
        "select * from pragma_table_info('events')",
        "explain select * from events",
    ],
)
def test_queries_run(store: DuckDBStore, query: str) -> None:
    assert len(store.sql(query)) > 0


def test_parameters_are_bound(store: DuckDBStore) -> None:
    frame = store.sql("select version from events where stream_id = ? order by version", ["s-1"])
    assert frame["version"].tolist() == [1, 2]


def test_a_failing_query_is_a_library_error_and_leaves_no_transaction_open(store: DuckDBStore) -> None:
    with pytest.raises(InvalidFormat, match="failed"):
        store.sql("select * from no_such_table")
    with pytest.raises(InvalidFormat, match="parse"):
        store.sql("selec nothing")
    assert store.append([write("s-3", "x")])[0].position == 4
    assert store.sql("select count(*) as n from events")["n"].tolist() == [4]
