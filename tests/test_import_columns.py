"""Import validation column by column must decide exactly as event by event.

``prepare_import`` checks a whole import column-wise and hands anything refused or unusual to the
row-by-row check, which names the first refused event. These tests hold the two to the same result:
equal prepared imports for valid input, and for each kind of bad input the column check declines
(returns None) and ``prepare_import`` raises the row check's own error.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import msgspec
import pytest

from eventcore_lab import Metadata, StoredEvent
from eventcore_lab.core.errors import InvalidFormat
from eventcore_lab.core.registry import UnknownEvent, default_registry
from eventcore_lab.stores.bulk import schema_versions
from eventcore_lab.stores.duckdb._batches import _IMPORT_FIELDS
from eventcore_lab.stores.rules import (
    MAX_PAYLOAD_BYTES,
    ImportColumns,
    PreparedImport,
    _prepare_import_columns,
    _prepare_import_rows,
    prepare_import,
)
from eventcore_lab.testing._contract_events import Constrained, Measured, NotRegistered, note

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def history(count: int = 40, streams: int = 5) -> list[StoredEvent]:
    """Interleaved streams, two payload classes, shared and separate metadata objects."""
    shared = Metadata(correlation_id="c-shared")
    versions: dict[str, int] = {}
    events = []
    for i in range(count):
        sid = f"s-{i % streams}"
        versions[sid] = versions.get(sid, 0) + 1
        payload = note(f"n{i}", number=i, amount=Decimal("0.5") * i) if i % 3 else Measured(value=i / 7)
        events.append(
            StoredEvent(
                event_id=uuid.UUID(int=i + 1),
                stream_id=sid,
                version=versions[sid],
                position=i + 1,
                event_type=default_registry.type_name(payload),
                payload=payload,
                metadata=shared if i % 2 else Metadata(correlation_id=f"c{i}", custom={"i": i}),
                recorded_at=START + timedelta(seconds=i),
            )
        )
    return events


def changed(events: list[StoredEvent], index: int, **fields: object) -> list[StoredEvent]:
    events = list(events)
    events[index] = msgspec.structs.replace(events[index], **fields)
    return events


def both(events: list[StoredEvent]) -> tuple[PreparedImport | None, PreparedImport]:
    """The column check's result (without the columns it adds) and the row check's."""
    columns = _prepare_import_columns(events, default_registry, MAX_PAYLOAD_BYTES)
    rows = _prepare_import_rows(events, default_registry, MAX_PAYLOAD_BYTES)
    assert rows.columns is None
    if columns is not None:
        assert columns.columns == ImportColumns(
            *([getattr(e, name) for e in events] for name in _IMPORT_FIELDS)
        ), "the columns are the events' fields"
        columns = msgspec.structs.replace(columns, columns=None)
    return columns, rows


def test_a_plain_import_is_prepared_column_wise_exactly_as_row_by_row() -> None:
    columns, rows = both(history())
    assert columns is not None, "a plain export must take the column-wise path"
    assert columns == rows
    assert list(columns.first_versions.items()) == list(rows.first_versions.items())  # same order too


def test_unknown_payloads_are_kept_byte_for_byte_column_wise() -> None:
    unknown = UnknownEvent("gone.Type", b'{"a": 1}', schema_version=3)
    events = changed(history(), 7, payload=unknown, event_type="gone.Type")
    columns, rows = both(events)
    assert columns is not None and columns == rows
    assert columns.payloads[7] == b'{"a": 1}'


def test_an_empty_import_is_empty_both_ways() -> None:
    assert _prepare_import_columns([], default_registry, MAX_PAYLOAD_BYTES) == PreparedImport(
        [], [], [], {}, {}
    )
    assert _prepare_import_rows([], default_registry, MAX_PAYLOAD_BYTES) == PreparedImport([], [], [], {}, {})


UNUSUAL: dict[str, Callable[[list[StoredEvent]], list[StoredEvent]]] = {
    "stream id to trim": lambda e: changed(e, 3, stream_id="  s-3 "),
    "another time zone": lambda e: changed(e, 4, recorded_at=START.astimezone(timezone(timedelta(hours=2)))),
    "tags": lambda e: changed(e, 5, tags=("b", "a")),
    "tags as a list": lambda e: changed(e, 5, tags=[]),
}


@pytest.mark.parametrize("case", UNUSUAL)
def test_unusual_but_valid_imports_are_left_to_the_row_check(case: str) -> None:
    events = UNUSUAL[case](history())
    columns, rows = both(events)
    assert columns is None
    assert prepare_import(events, default_registry) == rows


BAD: dict[str, Callable[[list[StoredEvent]], list[StoredEvent]]] = {
    "not a StoredEvent": lambda e: [*e[:3], "event", *e[3:]],  # type: ignore[list-item]
    "blank stream id": lambda e: changed(e, 6, stream_id="  "),
    "id not a UUID": lambda e: changed(e, 6, event_id=str(e[6].event_id)),
    "id twice": lambda e: changed(e, 9, event_id=e[2].event_id),
    "version not an int": lambda e: changed(e, 6, version=True),
    "version zero": lambda e: changed(e, 0, version=0),
    "version gap": lambda e: changed(e, 30, version=e[30].version + 1),
    "versions swapped": lambda e: changed(changed(e, 11, version=e[16].version), 16, version=e[11].version),
    "blank type name": lambda e: changed(e, 6, event_type=" "),
    "type name of another class": lambda e: changed(e, 4, event_type="eventcore.contract.Measured"),
    "unregistered class": lambda e: changed(e, 6, payload=NotRegistered("x")),
    "payload that does not read back": lambda e: changed(
        e, 6, payload=Constrained(amount=-5), event_type="eventcore.contract.Constrained"
    ),
    "NaN": lambda e: changed(e, 3, payload=Measured(value=float("nan"))),
    "payload too long": lambda e: changed(e, 8, payload=note("x" * (MAX_PAYLOAD_BYTES + 1))),
    "unknown payload of another type": lambda e: changed(e, 5, payload=UnknownEvent("a.B", b"{}")),
    "unknown payload not an object": lambda e: changed(
        e, 5, payload=UnknownEvent("a.B", b"[1]"), event_type="a.B"
    ),
    "metadata not a Metadata": lambda e: changed(e, 6, metadata={"correlation_id": "c"}),
    "metadata that cannot be stored": lambda e: changed(
        e, 6, metadata=Metadata(correlation_id="c", custom={"x": float("inf")})
    ),
    "naive recorded_at": lambda e: changed(e, 6, recorded_at=datetime(2026, 1, 1)),
    "recorded_at not a datetime": lambda e: changed(e, 6, recorded_at="2026-01-01T00:00:00Z"),
    "tag twice": lambda e: changed(e, 6, tags=("a", "a")),
}


@pytest.mark.parametrize("case", BAD)
def test_refused_imports_raise_the_row_checks_error(case: str) -> None:
    events = BAD[case](history())
    assert _prepare_import_columns(events, default_registry, MAX_PAYLOAD_BYTES) is None
    with pytest.raises(Exception) as by_rows:
        _prepare_import_rows(events, default_registry, MAX_PAYLOAD_BYTES)
    with pytest.raises(type(by_rows.value)) as by_prepare:
        prepare_import(events, default_registry)
    assert str(by_prepare.value) == str(by_rows.value)


def test_schema_versions_are_read_per_class_and_per_unknown_event() -> None:
    unknown = UnknownEvent("gone.Type", b"{}", schema_version=4)
    payloads: list[object] = [note("a"), Measured(value=1.0), unknown]
    assert schema_versions(payloads[:2]) == [1, 1]
    assert schema_versions(payloads) == [1, 1, 4]


def test_an_event_refused_before_the_input_fails_is_reported_as_row_by_row() -> None:
    """Reading the input fails part way (a damaged file): an event read before that which would be
    refused is named, as checking each event as it is read would; else the reading error comes out."""

    def damaged(events: list[StoredEvent]) -> Iterator[StoredEvent]:
        yield from events
        raise OSError("the file ends too early")

    events = history()
    with pytest.raises(InvalidFormat, match="not a UUID"):
        prepare_import(damaged(changed(events, 6, event_id="x")), default_registry)
    with pytest.raises(OSError, match="too early"):
        prepare_import(damaged(events), default_registry)
    assert prepare_import(iter(events), default_registry) == prepare_import(events, default_registry)


@pytest.mark.parametrize(("start", "stop"), [(0, None), (0, 1), (7, 23), (39, 40)])
def test_duckdb_import_columns_built_before_queueing_equal_those_built_at_insert(
    start: int, stop: int | None
) -> None:
    """An import's Arrow columns are built by the importing thread (with its shared metadata objects and
    timestamps converted once); the writer slices them. Any slice equals the table built from the lists."""
    from eventcore_lab.stores.duckdb._batches import _Rows

    events = [
        msgspec.structs.replace(e, tags=("t-a", "t-b") if i % 5 == 0 else ()) for i, e in enumerate(history())
    ]
    prepared = prepare_import(events, default_registry)
    built = _Rows.of_import(prepared)
    built.positions = list(range(101, 101 + len(events)))
    plain = _Rows.of_import(prepared)
    plain.positions, plain.arrow = built.positions, None
    assert built.arrow is not None
    assert built.table(start, stop).to_pylist() == plain.table(start, stop).to_pylist()
    rows = built.table(start, stop).to_pylist()
    assert [r["event_id"] for r in rows] == [e.event_id for e in events[start:stop]]
    assert [r["recorded_at"] for r in rows] == [e.recorded_at for e in events[start:stop]]
    assert [tuple(r["tags"]) for r in rows] == [e.tags for e in events[start:stop]]
