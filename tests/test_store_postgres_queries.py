"""PostgreSQL specifics of queries (migration 4): processes racing on append conditions, writers in flight
with a lower position than a committed one, the upgrade of older schemas, and the indexes a tag lookup
uses (EXPLAIN)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from eventcore_lab import ExpectedVersion
from eventcore_lab.core.errors import AppendConditionFailed, VersionConflict
from eventcore_lab.core.query import AppendCondition, Query, QueryItem
from eventcore_lab.stores.postgres import PostgresStore
from eventcore_lab.stores.postgres._migrations import MIGRATIONS
from eventcore_lab.testing.contract import tagged, write

COURSE_7 = Query.of(QueryItem(tags=("course:7",)))

RACER = """
import json, sys
from eventcore_lab.core.errors import AppendConditionFailed
from eventcore_lab.core.query import AppendCondition, Query, QueryItem
from eventcore_lab.stores.postgres import PostgresStore
from eventcore_lab.testing.contract import tagged

dsn, schema, me = sys.argv[1], sys.argv[2], int(sys.argv[3])
claimed, joined = [], False
with PostgresStore(dsn, schema=schema, pool_max=2) as store:
    for name in range(15):  # every process tries every username: each must be claimed once
        condition = AppendCondition(Query.of(QueryItem(tags=(f"username:{name}",))))
        try:
            store.append([tagged(f"user-{me}-{name}", str(me), f"username:{name}")], condition=condition)
            claimed.append(name)
        except AppendConditionFailed:
            pass
    course = Query.of(QueryItem(tags=("course:7",)))
    for _ in range(200):  # join a course of capacity 3: read, decide, append under the read's position
        read = store.read_query(course)
        if len(read.events) >= 3:
            break
        try:
            condition = AppendCondition(course, read.position)
            store.append([tagged(f"student-{me}", "join", "course:7")], condition=condition)
            joined = True
            break
        except AppendConditionFailed:
            continue
print(json.dumps({"claimed": claimed, "joined": joined}))
"""


@pytest.fixture
def store(pg_url: str, pg_schema: str) -> Iterator[PostgresStore]:
    with PostgresStore(pg_url, schema=pg_schema, pool_max=4) as store:
        yield store


def test_processes_racing_on_append_conditions_claim_each_name_once(
    store: PostgresStore, pg_url: str, pg_schema: str
) -> None:
    store.migrate()
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, pg_url, pg_schema, str(n)], stdout=subprocess.PIPE, text=True
        )
        for n in range(6)
    ]
    results = []
    for worker in workers:
        out, _ = worker.communicate(timeout=120)
        assert worker.returncode == 0
        results.append(json.loads(out))
    claims = sorted(name for r in results for name in r["claimed"])
    assert claims == list(range(15))  # each exactly once, across processes
    for name in range(15):
        assert len(store.read_query(Query.of(QueryItem(tags=(f"username:{name}",)))).events) == 1
    assert sum(r["joined"] for r in results) == 3
    assert len(store.read_query(COURSE_7).events) == 3


def _append_uncommitted(conn: psycopg.Connection[Any], schema: str, stream: str, tag: str) -> int:
    """Call the schema's append function in an open transaction: a writer in flight, holding its
    position (drawn now) and its locks until the caller commits."""
    row = conn.execute(
        sql.SQL(
            "SELECT positions[1] FROM {}.append_events(%s::text[], %s::uuid[], %s::text[], %s::text[], "
            "%s::text[], '{{}}', '{{}}', '{{}}', '{{1}}', %s::jsonb, NULL)"
        ).format(sql.Identifier(schema)),
        [
            [stream],
            [uuid.uuid4()],
            ["eventcore.contract.Note"],
            ['{"text": "in flight"}'],
            ['{"correlation_id": "c"}'],
            json.dumps([[tag]]),
        ],
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_read_waits_for_a_matching_writer_in_flight_with_a_lower_position(
    store: PostgresStore, pg_url: str, pg_schema: str
) -> None:
    """Positions commit out of order: a matching event at position p may commit after p + 1. A read
    that returned head p + 1 without it would let a condition 'nothing after p + 1' miss it for ever."""
    store.migrate()
    with psycopg.connect(pg_url) as slow:
        low = _append_uncommitted(slow, pg_schema, "slow", "course:7")
        [other] = store.append([write("fast", "unrelated, committed first")])
        assert other.position > low
        found: list[Any] = []
        reader = threading.Thread(target=lambda: found.append(store.read_query(COURSE_7)))
        reader.start()
        reader.join(0.5)
        assert reader.is_alive()  # waiting for the writer of a matching event
        slow.commit()
    reader.join(30)
    [read] = found
    assert [e.position for e in read.events] == [low] and read.position >= other.position
    store.append([tagged("next", "ok", "course:7")], condition=AppendCondition(COURSE_7, read.position))


def test_a_condition_waits_for_a_matching_writer_in_flight_and_then_fails(
    store: PostgresStore, pg_url: str, pg_schema: str
) -> None:
    store.migrate()
    decided = store.read_query(COURSE_7)
    with psycopg.connect(pg_url) as slow:
        low = _append_uncommitted(slow, pg_schema, "slow", "course:7")
        outcome: list[BaseException | None] = []

        def conditional() -> None:
            try:
                store.append(
                    [tagged("mine", "x", "course:7")], condition=AppendCondition(COURSE_7, decided.position)
                )
                outcome.append(None)
            except AppendConditionFailed as exc:
                outcome.append(exc)

        appender = threading.Thread(target=conditional)
        appender.start()
        appender.join(0.5)
        assert appender.is_alive()
        slow.commit()
    appender.join(30)
    [error] = outcome
    assert isinstance(error, AppendConditionFailed) and error.position == low
    assert store.stream_version("mine") == 0


def test_unrelated_writers_in_flight_do_not_hold_a_query_read_back(
    store: PostgresStore, pg_url: str, pg_schema: str
) -> None:
    store.migrate()
    with psycopg.connect(pg_url) as slow:
        _append_uncommitted(slow, pg_schema, "slow", "course:8")
        read = store.read_query(COURSE_7)  # returns at once: no key in common
        assert read.events == []
        store.append([tagged("mine", "x", "course:7")], condition=AppendCondition(COURSE_7, read.position))
        slow.rollback()


def test_an_older_schema_is_upgraded_and_its_events_read_without_tags(pg_url: str, pg_schema: str) -> None:
    with PostgresStore(pg_url, schema=pg_schema) as old:
        assert old.migrate(up_to=3) == 3
        with psycopg.connect(pg_url, autocommit=True) as conn:  # an append made by a version-3 library
            conn.execute(
                sql.SQL(
                    "SELECT {}.append_events(%s::text[], %s::uuid[], %s::text[], %s::text[], %s::text[], "
                    "'{{}}', '{{}}', '{{}}')"
                ).format(sql.Identifier(pg_schema)),
                [
                    ["old"],
                    [uuid.uuid4()],
                    ["eventcore.contract.Note"],
                    ['{"text": "v3"}'],
                    ['{"correlation_id": "c"}'],
                ],
            )
    with PostgresStore(pg_url, schema=pg_schema) as store:
        assert store.migrate() == MIGRATIONS[-1][0]
        [old] = store.read_all()
        assert old.payload.text == "v3" and old.tags == ()
        [new] = store.append([tagged("new", "v4", "course:7")])
        assert store.read_query(COURSE_7).events == [new]


def test_a_version_5_schema_is_upgraded_in_place_and_keeps_every_check(pg_url: str, pg_schema: str) -> None:
    """Migration 6 rewrites the append function: a schema at version 5 holding tagged events (appended
    by a version-5 library, as it called the function) upgrades, and its append still numbers after
    them, refuses a wrong version, and refuses a condition a matching event breaks."""
    with PostgresStore(pg_url, schema=pg_schema) as old:
        assert old.migrate(up_to=5) == 5
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL(
                    "SELECT * FROM {}.append_events_within('5s', %s::text[], %s::uuid[], %s::text[], "
                    "%s::text[], %s::text[], '{{old}}', '{{no_stream}}', '{{NULL}}', '{{1}}', %s::jsonb, "
                    "NULL, '{{yeventcore.contract.Note,tcourse:7,*}}', '{{f,f,f}}')"
                ).format(sql.Identifier(pg_schema)),
                [
                    ["old"],
                    [uuid.uuid4()],
                    ["eventcore.contract.Note"],
                    ['{"text": "v5"}'],
                    ['{"correlation_id": "c"}'],
                    json.dumps([["course:7"]]),
                ],
            )
    with PostgresStore(pg_url, schema=pg_schema) as store:
        assert store.migrate() == MIGRATIONS[-1][0] >= 6
        [old] = store.read_query(COURSE_7).events
        assert (old.stream_id, old.version, old.position, old.tags) == ("old", 1, 1, ("course:7",))
        with pytest.raises(VersionConflict):
            store.append([write("old", "again")], {"old": ExpectedVersion.NO_STREAM})
        with pytest.raises(AppendConditionFailed) as failed:
            store.append([tagged("new", "late", "course:7")], condition=AppendCondition(COURSE_7, 0))
        assert failed.value.position == 1
        [new] = store.append([tagged("new", "v6", "course:7")], condition=AppendCondition(COURSE_7, 1))
        assert (new.version, new.position) == (1, 2)
        assert [e.position for e in store.read_query(COURSE_7).events] == [1, 2]


def _plan(conn: psycopg.Connection[Any], schema: str, where: str) -> str:
    """The plan of an append condition's lookup (see first_match in migration 4)."""
    query = sql.SQL("EXPLAIN SELECT min(position) FROM {}.events WHERE " + where + " AND position > 0")
    return "\n".join(row[0] for row in conn.execute(query.format(sql.Identifier(schema))))


def test_tag_and_type_lookups_use_their_indexes(store: PostgresStore, pg_url: str, pg_schema: str) -> None:
    store.migrate()
    for batch in range(10):
        store.append([tagged(f"s-{batch}-{i}", "x", f"course:{batch}-{i}", "common") for i in range(200)])
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(sql.SQL("ANALYZE {}.events").format(sql.Identifier(pg_schema)))
        tag_plan = _plan(conn, pg_schema, "tags @> ARRAY['course:3-7']")
        type_plan = _plan(conn, pg_schema, "event_type = ANY(ARRAY['nothing.Here'])")
    print(tag_plan, type_plan, sep="\n\n")  # shown with -s: the evidence quoted in the report
    assert "events_tags" in tag_plan
    assert "events_type_position" in type_plan
    assert [e.stream_id for e in store.read_query(Query.of(QueryItem(tags=("course:3-7",)))).events] == [
        "s-3-7"
    ]
