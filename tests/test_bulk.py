"""Bulk event files (JSON Lines, gzip, Parquet) and bulk import/export between stores."""

from __future__ import annotations

import gzip
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import msgspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from eventcore_lab import EventToWrite, MemoryStore, Metadata, StoredEvent
from eventcore_lab.core.errors import EventTypeMismatch, InvalidFormat, SerializationError
from eventcore_lab.core.registry import UnknownEvent
from eventcore_lab.errors import VersionConflict
from eventcore_lab.stores import bulk
from eventcore_lab.stores.duckdb import DuckDBStore
from eventcore_lab.testing.contract import note, write

FORMATS = ["events.jsonl", "events.jsonl.gz", "events.parquet"]


def sample_events(count: int = 30) -> list[StoredEvent]:
    start = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    versions: dict[str, int] = {}
    events = []
    for i in range(count):
        stream_id = f"acct-{i % 4}" if i % 5 else "'; DROP TABLE events; -- ✓"
        versions[stream_id] = versions.get(stream_id, 0) + 1
        events.append(
            StoredEvent(
                event_id=uuid.UUID(int=(i + 1) << 64),
                stream_id=stream_id,
                version=versions[stream_id],
                position=10 + i,
                event_type="eventcore.contract.Note",
                payload=note(f'n{i} \u2028 "q"', number=i, amount=Decimal("1.25") * i, tags=["x"]),
                metadata=Metadata(correlation_id=f"c{i // 3}", user_id="ann", custom={"i": i}),
                recorded_at=start + timedelta(seconds=i),
            )
        )
    return events


def same(a: StoredEvent, b: StoredEvent) -> bool:
    """Equal apart from the position, which an import assigns anew."""
    return msgspec.structs.replace(a, position=0) == msgspec.structs.replace(b, position=0)


@pytest.mark.parametrize("name", FORMATS)
def test_files_round_trip_every_field(tmp_path: Path, name: str) -> None:
    events = sample_events()
    path = tmp_path / name
    assert bulk.write_events(events, path) == len(events)
    assert list(bulk.read_events(path)) == events


def test_gzip_is_used_for_gz_names(tmp_path: Path) -> None:
    bulk.write_jsonl(sample_events(3), tmp_path / "e.jsonl.gz")
    with gzip.open(tmp_path / "e.jsonl.gz", "rt") as handle:
        first = msgspec.json.decode(handle.readline())
    assert first["payload"]["text"].startswith("n0") and first["stream_id"].startswith("'; DROP")


def test_parquet_is_plain_columns_for_other_tools(tmp_path: Path) -> None:
    bulk.write_parquet(sample_events(5), tmp_path / "e.parquet")
    frame = pd.read_parquet(tmp_path / "e.parquet")
    assert list(frame.columns) == [*bulk.COLUMNS, bulk.SCHEMA_VERSION_COLUMN, bulk.TAGS_COLUMN]
    assert msgspec.json.decode(frame["payload"].iloc[1])["number"] == 1


def test_bad_files_give_clear_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    bulk.write_jsonl(sample_events(2), path)
    with path.open("a") as handle:
        handle.write('{"not": "an event"}\n')
    with pytest.raises(InvalidFormat, match=r"bad\.jsonl line 3"):
        list(bulk.read_jsonl(path))
    unknown = tmp_path / "unknown.jsonl"
    unknown.write_text(path.read_text().split("\n")[0].replace("eventcore.contract.Note", "Nope") + "\n")
    [kept] = bulk.read_jsonl(unknown)  # an unregistered type is kept, its JSON byte for byte
    assert isinstance(kept.payload, UnknownEvent) and kept.payload.event_type == "Nope"
    assert kept.payload.data["text"].startswith("n0")
    with pytest.raises(InvalidFormat, match="cannot tell the format"):
        bulk.write_events([], tmp_path / "events.csv")
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    with pytest.raises(InvalidFormat, match="not a readable Parquet"):
        list(bulk.read_parquet(tmp_path / "junk.parquet"))


def test_progress_bar_can_be_forced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bulk.write_parquet(sample_events(), tmp_path / "e.parquet", progress=True)
    assert "100%" in capsys.readouterr().err
    bulk.write_parquet(sample_events(), tmp_path / "e.parquet", progress=False)
    assert capsys.readouterr().err == ""


# -- stores -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FORMATS)
def test_duckdb_export_then_import_into_duckdb_and_memory(tmp_path: Path, name: str) -> None:
    with DuckDBStore(tmp_path / "source.duckdb") as source:
        source.import_events(sample_events())
        source.append([write("acct-1", "appended")])
        written = source.read_all()
        assert bulk.export_store(source, tmp_path / name) == len(written)
        assert source.export_events(tmp_path / f"late-{name}", after=25) == len(written) - 25
    assert [e.position for e in bulk.read_events(tmp_path / f"late-{name}")] == list(range(26, 32))

    with DuckDBStore(tmp_path / "target.duckdb") as target:
        target.append([write("unrelated", "first")])
        assert target.import_file(tmp_path / name) == len(written)
        imported = target.read_all(after=1)
        assert all(same(a, b) for a, b in zip(imported, written, strict=True))
        assert [e.position for e in imported] == list(range(2, 2 + len(written)))
        version = target.stream_version("acct-1")
        assert target.append([write("acct-1", "more")])[0].version == version + 1
    memory = MemoryStore()
    memory.import_events(bulk.read_events(tmp_path / name))
    assert all(same(a, b) for a, b in zip(memory.read_all(), written, strict=True))


def test_import_must_follow_current_versions_and_is_all_or_nothing(tmp_path: Path) -> None:
    events = sample_events(8)
    with DuckDBStore(tmp_path / "s.duckdb") as store:
        store.append([write("acct-1", "already here")])
        with pytest.raises(VersionConflict, match="acct-1"):
            store.import_events(events)
        assert store.head() == 1
        skipping = [*events[:3], msgspec.structs.replace(events[3], version=events[3].version + 1)]
        with pytest.raises(VersionConflict):
            store.import_events(skipping)
        assert store.head() == 1
        with pytest.raises(InvalidFormat, match="StoredEvent"):
            store.import_events([EventToWrite("s", note("x"))])  # type: ignore[list-item]
        others = [e for e in events if e.stream_id != "acct-1"]
        assert store.import_events(others) == len(others) == 7
        assert store.head() == 8


def test_import_refuses_a_payload_that_contradicts_its_type(tmp_path: Path) -> None:
    event = msgspec.structs.replace(sample_events(1)[0], event_type="Something.Else")
    with DuckDBStore(tmp_path / "s.duckdb") as store:
        with pytest.raises(EventTypeMismatch, match=r"Something\.Else"):
            store.import_events([event])
        assert store.head() == 0


def test_import_is_visible_to_cached_readers_and_tailers(tmp_path: Path) -> None:
    events = sample_events(12)
    with DuckDBStore(tmp_path / "s.duckdb") as store:
        store.import_events(events[:6])
        assert len(store.read_stream("acct-1")) == 1  # now cached
        subscription = store.subscribe(after=0)
        first = [subscription.poll(1).position for _ in range(6)]  # type: ignore[union-attr]
        store.import_events(events[6:])
        rest = [subscription.poll(1).position for _ in range(6)]  # type: ignore[union-attr]
        assert first + rest == list(range(1, 13))
        assert [e.version for e in store.read_stream("acct-1")] == [1, 2]


# -- Parquet import inside DuckDB ---------------------------------------------------------------------------


def test_parquet_import_checks_in_sql_and_is_all_or_nothing(tmp_path: Path) -> None:
    events = sample_events(20)
    good = tmp_path / "good.parquet"
    bulk.write_parquet(events, good)
    with DuckDBStore(tmp_path / "s.duckdb") as store:
        store.append([write("unrelated", "first")])
        assert store.import_file(good) == 20
        assert all(same(a, b) for a, b in zip(store.read_all(after=1), events, strict=True))
        assert store.read_all(after=1)[0].position == 2
        with pytest.raises(VersionConflict):  # the same histories again no longer follow
            store.import_file(good)
        assert store.head() == 21

    base = bulk.events_to_arrow(events[:3])
    gap = bulk.events_to_arrow([*events[:8], msgspec.structs.replace(events[8], version=9)])
    bad_cases = {
        "gap": (gap, VersionConflict, "consecutive versions"),
        "type": (base.set_column(5, "payload", pa.array(['{"x": 1}'] * 3)), SerializationError, "read back"),
        "json": (
            base.set_column(5, "payload", pa.array(["{}", "not json", "{}"])),
            InvalidFormat,
            "1 with payload",
        ),
        "id": (base.set_column(1, "event_id", pa.array(["x", None, "y"])), InvalidFormat, "missing fields"),
    }
    for name, (table, error, message) in bad_cases.items():
        path = tmp_path / f"{name}.parquet"
        pq.write_table(table, path)
        with DuckDBStore(tmp_path / f"{name}.duckdb") as store:
            store.append([write("still", "works")])
            with pytest.raises(error, match=message):
                store.import_file(path)
            assert store.head() == 1
            assert store.sql("select count(*) as n from duckdb_tables() where temporary")["n"].iloc[0] == 0
            store.append([write("still", "works")])
            assert store.stream_version("still") == 2
