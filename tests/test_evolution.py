"""Schema evolution: a history written by old classes reads as current on every store and read path."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pandas as pd
import pytest
from _evolution_domain import (
    expected_current,
    history_v1,
    register_current,
    register_v1,
    upcasters,
)

from eventcore_lab.core.events import EventToWrite
from eventcore_lab.core.registry import EventRegistry, RetiredEvent, UnknownEvent
from eventcore_lab.evolution import (
    StrictSchemaViolation,
    UpcasterChainGap,
    Upcasters,
    UpcastFailed,
)
from eventcore_lab.projections import ProjectionRunner, events_frame, state_at
from eventcore_lab.stores import bulk
from eventcore_lab.stores.base import BulkExport, EventStore
from eventcore_lab.stores.duckdb import DuckDBStore
from eventcore_lab.stores.memory import MemoryStore
from eventcore_lab.stores.postgres import PostgresStore

STORES = ["memory", "duckdb", "postgres"]


class Recorder:
    """A projection that keeps (type, payload as builtins) of every event it sees."""

    name = "recorder"

    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []

    def apply(self, event: Any) -> None:
        self.seen.append(_seen(event))


def _seen(event: Any) -> tuple[str, Any]:
    payload = event.payload
    if isinstance(payload, UnknownEvent):
        return event.event_type, payload.data
    return event.event_type, msgspec.to_builtins(payload)


@pytest.fixture
def opener(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[str, EventRegistry], EventStore]]:
    """open(kind, registry): the same store each time for a kind, reopened with another registry (as a
    deployment of new code would), closed at the end."""
    opened: list[EventStore] = []
    memory: dict[str, MemoryStore] = {}

    def open_store(kind: str, registry: EventRegistry) -> EventStore:
        for store in opened:
            if not isinstance(store, MemoryStore):
                store.close()
        store: EventStore
        if kind == "memory":
            store = memory.setdefault("store", MemoryStore(registry=registry))
            store.registry = registry
        elif kind == "duckdb":
            store = DuckDBStore(tmp_path / "events.duckdb", registry=registry)
        else:
            url = request.getfixturevalue("pg_url")
            schema = request.getfixturevalue("pg_schema")
            store = PostgresStore(url, schema=schema, registry=registry, pool_min=0, pool_max=2)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()


def _write_v1(open_store: Callable[[str, EventRegistry], EventStore], kind: str) -> None:
    old = EventRegistry()
    classes = register_v1(old)
    store = open_store(kind, old)
    writes = history_v1(classes)
    for start in range(0, len(writes), 5):  # one append per account: 5 events
        store.append(writes[start : start + 5])


def _deploy(open_store: Callable[[str, EventRegistry], EventStore], kind: str) -> EventStore:
    new = EventRegistry()
    register_current(new)
    upcasters(new).install()
    return open_store(kind, new)


@pytest.mark.parametrize("kind", STORES)
def test_a_v1_history_reads_as_current_through_every_read_path(
    kind: str, opener: Callable[[str, EventRegistry], EventStore], tmp_path: Path
) -> None:
    _write_v1(opener, kind)
    store = _deploy(opener, kind)
    expected = expected_current()

    everything = store.read_all()
    assert [_seen(e) for e in everything] == expected
    assert type(everything[2].payload) is RetiredEvent and everything[2].payload.event_type == "Note"
    assert [_seen(e) for e in store.read_all(after=3, limit=4)] == expected[3:7]
    by_stream = [e for n in range(3) for e in store.read_stream(f"account-{n}")]
    assert [_seen(e) for e in by_stream] == expected
    assert [_seen(e) for e in store.read_stream("account-1", after_version=3)] == expected[8:10]
    both = store.read_streams(["account-2", "account-0"])
    assert [_seen(e) for e in both.events] == expected[:5] + expected[10:]
    with store.subscribe(batch_size=4) as subscription:
        delivered = [subscription.poll(timeout=1.0) for _ in range(len(expected))]
    assert [_seen(e) for e in delivered] == expected

    runner = ProjectionRunner(store, Recorder(), batch_size=4)
    runner.run_until_caught_up()
    assert runner.projection.seen == expected
    assert state_at(store, Recorder, 7).seen == expected[:7]

    for name in ("export.jsonl", "export.parquet"):
        bulk.write_events(bulk.iter_store(store), tmp_path / name, store.registry)
        assert [_seen(e) for e in bulk.read_events(tmp_path / name, store.registry)] == expected
    if isinstance(store, BulkExport):
        store.export_events(tmp_path / "native.parquet")
        back = list(bulk.read_events(tmp_path / "native.parquet", store.registry))
        assert [_seen(e) for e in back] == expected

    if isinstance(store, DuckDBStore):  # its raw frame (payload JSON) shows current events too
        raw = store.events_frame()
        assert [
            (t, msgspec.json.decode(p)) for t, p in zip(raw["event_type"], raw["payload"], strict=True)
        ] == [(t, p) for t, p in expected]
        assert raw["schema_version"].tolist() == [2, 3, 1, 1, 2] * 3
        assert store.events_frame(event_types=["Charged"])["position"].tolist() == [5, 10, 15]

    # the columnar path (DuckDB: SQL for current rows, Python for the upcast ones) equals the per-event one
    frame = events_frame(store, types=["AccountOpened", "Deposited", "Charged", "Withdrawn"])
    rows = [(t, p) for t, p in expected if t != "Note"]
    assert frame["event_type"].tolist() == [t for t, _ in rows]
    for column in ("first", "last", "amount", "cents"):
        wanted = [p.get(column) for _, p in rows]
        got = [None if pd.isna(v) else v for v in frame[column].tolist()]
        assert got == wanted, column


@pytest.mark.parametrize("kind", STORES)
def test_writes_are_current_and_the_version_is_a_column(
    kind: str, opener: Callable[[str, EventRegistry], EventStore]
) -> None:
    _write_v1(opener, kind)
    store = _deploy(opener, kind)
    deposited = store.registry.event_class("Deposited")
    store.append([EventToWrite("account-0", deposited(amount=700))])
    assert _seen(store.read_stream("account-0")[-1]) == ("Deposited", {"amount": 700})
    if isinstance(store, DuckDBStore):
        found = store.sql(
            "select event_type, schema_version, count(*) as n from events group by all order by all"
        )
        pairs = list(found.itertuples(index=False, name=None))
    elif isinstance(store, PostgresStore):
        import psycopg

        with psycopg.connect(os.environ["EVENTCORE_DATABASE_URL"]) as conn:
            pairs = conn.execute(
                f'SELECT event_type, schema_version, count(*) FROM "{store.schema}".events '
                "GROUP BY 1, 2 ORDER BY 1, 2"
            ).fetchall()
    else:
        return  # the memory store keeps objects: their class says their version (checked below)
    assert ("Deposited", 1, 3) in pairs and ("Deposited", 3, 1) in pairs


def test_rows_of_a_version_1_duckdb_file_read_as_schema_version_1(tmp_path: Path) -> None:
    import duckdb

    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create table eventcore_schema (version integer not null, applied_at timestamptz not null)")
    con.execute("insert into eventcore_schema values (1, now())")
    con.execute(
        "create table events (position bigint primary key, event_id uuid not null, "
        "stream_id varchar not null, version bigint not null, event_type varchar not null, "
        "payload json not null, metadata json not null, recorded_at timestamptz not null)"
    )
    con.execute(
        "create table checkpoints (name varchar primary key, position bigint not null, "
        "updated_at timestamptz not null)"
    )
    con.execute(
        "insert into events values (1, uuid(), 'account-0', 1, 'Deposited', '{\"amt\": 4}', "
        '\'{"correlation_id": "c"}\', now())'
    )
    con.close()
    registry = EventRegistry()
    register_current(registry)
    upcasters(registry).install()
    with DuckDBStore(path, registry=registry) as store:
        assert _seen(store.read_all()[0]) == ("Deposited", {"amount": 400})
        assert store.sql("select schema_version from events")["schema_version"].tolist() == [1]


def test_rows_written_before_the_postgres_schema_version_column_read_as_version_1(
    pg_url: str, pg_schema: str
) -> None:
    import uuid

    import psycopg

    from eventcore_lab.stores.postgres import _migrations

    latest, column_added = _migrations.MIGRATIONS[-1][0], 3  # migration 3 adds events.schema_version
    with PostgresStore(pg_url, schema=pg_schema) as store:
        assert store.migrate(up_to=column_added - 1) == column_added - 1
    with psycopg.connect(pg_url, autocommit=True) as conn:  # an append as a version-1 client made it
        conn.execute(
            f'SELECT * FROM "{pg_schema}".append_events(%s, %s, %s, %s, %s, %s, %s, %s)',
            [
                ["account-0"],
                [uuid.uuid4()],
                ["Deposited"],
                ['{"amt": 2}'],
                ['{"correlation_id": "c"}'],
                [],
                [],
                [],
            ],
        )
    new = EventRegistry()
    register_current(new)
    upcasters(new).install()
    with PostgresStore(pg_url, schema=pg_schema, registry=new) as store:
        assert store.migrate() == latest
        assert _seen(store.read_all()[0]) == ("Deposited", {"amount": 200})


def test_event_files_without_a_schema_version_read_as_version_1(tmp_path: Path) -> None:
    old = EventRegistry()
    classes = register_v1(old)
    source = MemoryStore(registry=old)
    source.append([EventToWrite("account-0", classes["Deposited"](amt=3))])
    path = tmp_path / "old.jsonl"
    bulk.write_events(source.read_all(), path, old)
    lines = [msgspec.json.decode(line) for line in path.read_bytes().splitlines()]
    assert lines[0].pop("schema_version") == 1
    path.write_bytes(b"\n".join(msgspec.json.encode(line) for line in lines) + b"\n")
    new = EventRegistry()
    register_current(new)
    upcasters(new).install()
    assert [_seen(e) for e in bulk.read_events(path, new)] == [("Deposited", {"amount": 300})]


# -- registration --------------------------------------------------------------------------------


def test_a_gap_in_a_chain_is_refused_at_registration_naming_both_versions() -> None:
    chains = Upcasters(EventRegistry())
    chains.rename_field("Deposited", 1, "amt", "amount")
    with pytest.raises(UpcasterChainGap, match=r"'Deposited' from v3 to v4 .* from v2 to v3"):
        chains.rename_field("Deposited", 3, "a", "b")
    with pytest.raises(UpcasterChainGap, match="already has an upcaster from v1 to v2"):
        chains.rename_field("Deposited", 1, "x", "y")
    chains.rename_field("Deposited", 2, "a", "b")  # contiguous: accepted
    chains.retire("Deposited", 3)
    with pytest.raises(UpcasterChainGap, match="retired at v3"):
        chains.rename_field("Deposited", 4, "a", "b")
    with pytest.raises(UpcasterChainGap, match="versions are ints >= 1"):
        chains.rename_field("Other", 0, "a", "b")


def test_install_refuses_a_chain_that_stops_short_of_the_class_version() -> None:
    registry = EventRegistry()
    register_current(registry)  # Deposited is at v3
    chains = Upcasters(registry)
    chains.rename_field("Deposited", 1, "amt", "amount")
    with pytest.raises(UpcasterChainGap, match=r"'Deposited' stop at v2 but its class is at v3"):
        chains.install()
    assert registry.evolution is None


def test_install_follows_a_chain_through_a_type_rename() -> None:
    """Stored ``Thing`` v1 reads as ``Item`` v2, but ``Item`` is at v3: caught at install, not at read."""
    registry = EventRegistry()
    item = msgspec.defstruct(
        "Item", [("n", int)], module="evolution_install", namespace={"schema_version": 3}
    )
    registry.register(item, "Item")
    chains = Upcasters(registry)
    chains.rename_type("Thing", 1, "Item")
    with pytest.raises(UpcasterChainGap, match=r"'Item' stop at v2 but its class is at v3"):
        chains.install()
    chains.rename_field("Item", 2, "m", "n")
    chains.install()
    assert registry.evolution is chains


def test_a_failing_step_names_the_type_and_version(
    opener: Callable[[str, EventRegistry], EventStore],
) -> None:
    _write_v1(opener, "memory")
    registry = EventRegistry()
    register_current(registry)
    chains = upcasters(registry)
    chains.add("Withdrawn", 1, lambda data: data["missing"])
    registry.event_class("Withdrawn").schema_version = 2
    chains.install()
    store = opener("memory", registry)
    with pytest.raises(UpcastFailed, match=r"'Withdrawn' from v1 .*KeyError"):
        store.read_all()


# -- weak and strict schema ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["memory", "duckdb"])
def test_unknown_fields_are_ignored_by_default_and_refused_in_strict_mode(
    kind: str, opener: Callable[[str, EventRegistry], EventStore]
) -> None:
    newer = EventRegistry()
    with_extra = msgspec.defstruct("Withdrawn", [("amount", int), ("channel", str)], module="bank_domain")
    newer.register(with_extra, "Withdrawn")
    store = opener(kind, newer)
    store.append([EventToWrite("account-0", with_extra(amount=5, channel="atm"))])

    weak = EventRegistry()
    register_current(weak)
    Upcasters(weak).install()
    store = opener(kind, weak)
    assert _seen(store.read_all()[0]) == ("Withdrawn", {"amount": 5})

    strict = EventRegistry()
    register_current(strict)
    Upcasters(strict, strict=True).install()
    store = opener(kind, strict)
    with pytest.raises(StrictSchemaViolation, match=r"Withdrawn.*channel"):
        store.read_all()


# -- retired events ------------------------------------------------------------------------------


def test_command_folds_skip_retired_events_and_imports_keep_them(tmp_path: Path) -> None:
    from eventcore_lab import Command, Executor, emit, stream

    store = MemoryStore(registry=EventRegistry())
    classes = register_v1(store.registry)
    for write in history_v1(classes, accounts=1):
        store.append([write])
    registry = EventRegistry()
    current = register_current(registry)
    upcasters(registry).install()
    store.registry = registry
    seen: list[str] = []

    class Audit(Command[int]):
        account: str = stream()

        def initial_state(self) -> int:
            return 0

        def apply(self, state: int, event: Any) -> int:
            seen.append(type(event.payload).__name__)
            return state + 1

        def handle(self, state: int, ctx: Any) -> list[EventToWrite]:
            return [emit(self.account, current["Withdrawn"](amount=state))]

    Executor(store).execute(Audit("account-0"))
    assert seen == ["AccountOpened", "Deposited", "Withdrawn", "Charged"]  # Note (retired) is skipped
    assert store.read_stream("account-0")[-1].payload == current["Withdrawn"](amount=4)

    path = tmp_path / "copy.duckdb"
    with DuckDBStore(path, registry=registry) as copy:  # an export read back, retired event included
        assert copy.import_events(store.read_all()) == 6
        retired = copy.read_stream("account-0")[2]
        assert type(retired.payload) is RetiredEvent and retired.payload.raw == b'{"text":"vip"}'
        rows = copy.sql("select event_type, schema_version from events order by position")
        assert list(rows.itertuples(index=False, name=None))[:5] == [
            ("AccountOpened", 2),
            ("Deposited", 3),
            ("Note", 1),
            ("Withdrawn", 1),
            ("Charged", 2),
        ]


@pytest.mark.parametrize("kind", STORES)
def test_the_compatibility_check_reads_each_store_as_stored(
    kind: str, opener: Callable[[str, EventRegistry], EventStore]
) -> None:
    from eventcore_lab.evolution import check_compatibility

    _write_v1(opener, kind)
    new = EventRegistry()
    register_current(new)
    store = opener(kind, new)
    failing = check_compatibility(store)
    assert [p.split(":")[0] for p in failing.problems] == [
        "AccountOpened v1 (3 events)",
        "Deposited v1 (3 events)",
        "Note v1 (3 events)",
        "FeeCharged v1 (3 events)",
    ]
    assert store.registry is new  # the scan lends the store a blank registry and gives its own back
    fixed = check_compatibility(store, upcasters=upcasters(new))
    assert fixed.ok and fixed.frame["events"].sum() == 15
