"""PostgreSQL bulk import into an empty store: indexes built after the COPY, and nothing lost on failure."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import msgspec
import psycopg
import pytest
from psycopg import sql

from eventcore_lab import ExpectedVersion
from eventcore_lab.core.events import StoredEvent
from eventcore_lab.errors import TransactionError, VersionConflict
from eventcore_lab.stores.memory import MemoryStore
from eventcore_lab.stores.postgres import PostgresStore
from eventcore_lab.testing.contract import write


@pytest.fixture
def pg_store(pg_url: str, pg_schema: str) -> Iterator[PostgresStore]:
    with PostgresStore(pg_url, schema=pg_schema) as store:
        yield store


def history(streams: int = 20, per_stream: int = 30) -> list[StoredEvent]:
    source = MemoryStore()
    for round_ in range(per_stream):
        source.append([write(f"imp-{s}", f"r{round_}") for s in range(streams)])
    return source.read_all()


def indexes(url: str, schema: str) -> dict[str, tuple[int, str]]:
    """Each index of the events table: its oid and its definition (constraints included)."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT c.relname, i.indexrelid::int8, pg_get_indexdef(i.indexrelid) "
            "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = %s::regclass",
            [sql.Identifier(schema, "events").as_string(conn)],
        ).fetchall()
    return {name: (oid, definition) for name, oid, definition in rows}


def owner_sql(url: str, statement: sql.Composable) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement)


def test_an_import_into_an_empty_store_builds_the_same_indexes_after_its_rows(
    pg_store: PostgresStore, pg_url: str, pg_schema: str
) -> None:
    pg_store.head()  # the schema exists from here
    before = indexes(pg_url, pg_schema)
    events = history()
    assert pg_store.import_events(events) == len(events)
    after = indexes(pg_url, pg_schema)
    assert {n: d for n, (_, d) in after.items()} == {n: d for n, (_, d) in before.items()}
    assert all(after[n][0] != before[n][0] for n in before)  # each built anew: the fast path was taken
    assert {"events_pkey", "events_stream_version_key", "events_tags"} <= set(before)
    # the rebuilt indexes hold every row: lookups through them find the imported events
    assert [e.version for e in pg_store.read_stream("imp-3")] == list(range(1, 31))
    with pytest.raises(VersionConflict):  # the unique (stream_id, version) rule holds again
        pg_store.append([write("imp-3", "late")], {"imp-3": ExpectedVersion.exact(29)})
    assert pg_store.append([write("imp-3", "next")], {"imp-3": ExpectedVersion.exact(30)})[0].version == 31


def test_an_import_into_a_store_with_events_keeps_its_indexes(
    pg_store: PostgresStore, pg_url: str, pg_schema: str
) -> None:
    pg_store.append([write("first", "x")])
    before = indexes(pg_url, pg_schema)
    events = history(streams=3, per_stream=4)
    assert pg_store.import_events(events) == 12
    assert indexes(pg_url, pg_schema) == before
    assert [e.version for e in pg_store.read_stream("imp-2")] == [1, 2, 3, 4]


def test_a_failure_on_the_server_after_the_indexes_went_leaves_the_store_as_before(
    pg_store: PostgresStore, pg_url: str, pg_schema: str
) -> None:
    """A row the server refuses in the middle of the COPY (here a CHECK the owner added: the client
    cannot know it) rolls back the rows and the dropped indexes together."""
    pg_store.head()
    table = sql.Identifier(pg_schema, "events")
    owner_sql(
        pg_url,
        sql.SQL("ALTER TABLE {} ADD CONSTRAINT no_poison CHECK (stream_id <> 'imp-poison')").format(table),
    )
    before = indexes(pg_url, pg_schema)
    events = history()
    poison = msgspec.structs.replace(events[0], stream_id="imp-poison", version=1, event_id=uuid.uuid4())
    with pytest.raises(TransactionError, match="no_poison"):
        pg_store.import_events([*events[:400], poison, *events[400:]])
    assert indexes(pg_url, pg_schema) == before  # the very same indexes: the drop was rolled back
    assert pg_store.head() == 0 and pg_store.read_all() == []
    owner_sql(pg_url, sql.SQL("ALTER TABLE {} DROP CONSTRAINT no_poison").format(table))
    assert pg_store.import_events(events) == len(events)
    assert pg_store.stream_version("imp-0") == 30


def test_a_store_with_an_insert_trigger_keeps_its_indexes(
    pg_store: PostgresStore, pg_url: str, pg_schema: str
) -> None:
    """An INSERT trigger may look rows up through the indexes (a hardened store's insert guard does):
    no fast path."""
    pg_store.head()
    table = sql.Identifier(pg_schema, "events")
    function = sql.Identifier(pg_schema, f"count_{uuid.uuid4().hex[:8]}")
    owner_sql(
        pg_url,
        sql.SQL(
            "CREATE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$; "
            "CREATE TRIGGER pass_through BEFORE INSERT ON {} FOR EACH ROW EXECUTE FUNCTION {}()"
        ).format(function, table, function),
    )
    before = indexes(pg_url, pg_schema)
    events = history(streams=2, per_stream=3)
    assert pg_store.import_events(events) == 6
    assert indexes(pg_url, pg_schema) == before
