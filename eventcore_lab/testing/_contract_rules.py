"""The failure half of the store contract: every rule of :mod:`eventcore_lab.stores.rules`, on every store.

Each test gives a store bad input (payloads that cannot be read back, bad imports, damaged files, bad
read arguments, calls after ``close()``) and checks that it is refused with the same library error on
every store, that nothing was written, and that the store stays usable. The hypothesis tests feed random
payloads, metadata and damaged files: each input is stored and read back exactly, or refused with a
library error; nothing else may escape.
"""

from __future__ import annotations

import gzip
import math
import os
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..core.command import Command, emit, stream
from ..core.errors import (
    EventCoreError,
    EventTypeMismatch,
    InvalidArgument,
    InvalidEventFile,
    InvalidFormat,
    SerializationError,
    StoreClosed,
    TooLong,
    UnknownEventFolded,
    ValidationError,
    VersionConflict,
)
from ..core.events import EventToWrite, Metadata, StoredEvent
from ..core.executor import Executor
from ..core.registry import UnknownEvent
from ..core.retry import RetryConfig
from ..stores import base as store_base
from ..stores import bulk
from ..stores.base import BulkImport, Checkpoints, EventStore, Subscription
from ._contract_events import Constrained, ContractNote, Measured, Unserializable, note, write

#: Examples per hypothesis test and store; raise it with EVENTCORE_CONTRACT_EXAMPLES for a longer hunt.
_HYPOTHESIS = settings(
    max_examples=int(os.environ.get("EVENTCORE_CONTRACT_EXAMPLES", "12")),
    deadline=None,
    database=None,
    # one store per test is the point; the suite runs as methods of each store's test class
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.differing_executors,
    ],
)


def everything(store: EventStore) -> list[StoredEvent]:
    return store.read_all()


def import_file(store: EventStore, path: Path) -> int:
    """Import an event file the store's own way when it has one, else through :mod:`.bulk`."""
    if isinstance(store, BulkImport):
        return store.import_file(path)
    return store.import_events(bulk.read_events(path, store.registry))


def assert_still_usable(store: EventStore, before: list[StoredEvent]) -> None:
    """Nothing was written by the refused call, every read works, and a good append still succeeds."""
    assert everything(store) == before
    assert store.head() == (before[-1].position if before else 0)
    for stream_id in {e.stream_id for e in before}:
        assert store.read_stream(stream_id) == [e for e in before if e.stream_id == stream_id]
    marker = f"usable-{uuid.uuid4()}"
    [added] = store.append([write(marker, "still works")])
    assert store.read_stream(marker) == [added]


def stored(event_id: uuid.UUID | None = None, **fields: Any) -> StoredEvent:
    """A StoredEvent to import; fields override a valid first event of stream ``imp``."""
    values: dict[str, Any] = {
        "event_id": event_id or uuid.uuid4(),
        "stream_id": "imp",
        "version": 1,
        "position": 1,
        "event_type": "eventcore.contract.Note",
        "payload": note("imported"),
        "metadata": Metadata(correlation_id="c-imp"),
        "recorded_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    }
    values.update(fields)
    return StoredEvent(**values)


# Payloads a durable store could not give back as written, and the field the error must name.
NOT_READABLE_BACK: dict[str, tuple[Callable[[], object], str]] = {
    "constraint": (lambda: Constrained(amount=-5), "amount"),
    "nan": (lambda: Measured(value=math.nan), "value"),
    "inf": (lambda: Measured(value=math.inf), "value"),
    "-inf in an optional field": (lambda: Measured(value=1.0, maybe=-math.inf), "maybe"),
    "bytes in Any": (lambda: Unserializable(value=b"raw"), "value"),
    "tuple in Any": (lambda: Unserializable(value=(1, 2)), "value"),
    "set in Any": (lambda: Unserializable(value={1, 2}), "value"),
    "datetime in Any": (lambda: Unserializable(value=datetime(2026, 1, 1, tzinfo=UTC)), "value"),
    "int keys in Any": (lambda: Unserializable(value={1: "a"}), "value"),
    "nested nan in Any": (lambda: Unserializable(value={"x": [1.0, math.nan]}), "value"),
    "decimal in Any": (lambda: Unserializable(value=Decimal("1.5")), "value"),
    "uuid in Any": (lambda: Unserializable(value=uuid.UUID(int=1)), "value"),
    "nested too deep in Any": (lambda: Unserializable(value=nested(10_000)), "value"),
    "lone surrogate in a string": (lambda: note("a\ud800"), "text"),
}


def nested(depth: int) -> list[Any]:
    """A list inside a list... ``depth`` deep: deeper than JSON encoders recurse."""
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


BAD_METADATA: dict[str, Callable[[], Metadata]] = {
    "nan": lambda: Metadata(correlation_id="c", custom={"x": math.nan}),
    "tuple": lambda: Metadata(correlation_id="c", custom={"x": (1, 2)}),
    "bytes": lambda: Metadata(correlation_id="c", custom={"x": b"raw"}),
    "lone surrogate": lambda: Metadata(correlation_id="c\ud800"),
}

# Imports (as Python objects) that must be refused, with the error class every store raises.
BAD_IMPORTS: dict[str, tuple[Callable[[], list[Any]], type[Exception]]] = {
    "constraint": (
        lambda: [stored(event_type="eventcore.contract.Constrained", payload=Constrained(amount=-5))],
        SerializationError,
    ),
    "nan": (
        lambda: [stored(event_type="eventcore.contract.Measured", payload=Measured(value=math.nan))],
        SerializationError,
    ),
    "nested too deep": (
        lambda: [
            stored(
                event_type="eventcore.contract.Unserializable", payload=Unserializable(value=nested(10_000))
            )
        ],
        SerializationError,
    ),
    "type/payload mismatch": (lambda: [stored(event_type="eventcore.contract.Measured")], EventTypeMismatch),
    "undecodable payload": (
        lambda: [stored(payload=UnknownEvent("eventcore.contract.Note", b'{"text": 5}'))],
        SerializationError,
    ),
    "unknown payload that is not JSON": (
        lambda: [stored(event_type="gone.Type", payload=UnknownEvent("gone.Type", b"not json"))],
        SerializationError,
    ),
    "naive recorded_at": (lambda: [stored(recorded_at=datetime(2026, 1, 1))], InvalidFormat),
    "duplicate event ids": (
        lambda: [stored(uuid.UUID(int=7)), stored(uuid.UUID(int=7), version=2)],
        InvalidFormat,
    ),
    "version 0": (lambda: [stored(version=0)], InvalidFormat),
    "version as text": (lambda: [stored(version="1")], InvalidFormat),
    "versions not consecutive": (lambda: [stored(), stored(version=3)], VersionConflict),
    "not a StoredEvent": (lambda: [stored(), "an event"], InvalidFormat),
    "blank stream id": (lambda: [stored(stream_id="  ")], ValidationError),
    "control character in type": (lambda: [stored(event_type="eventcore.contract.Note\x00")], InvalidFormat),
    "lone surrogate in type": (lambda: [stored(event_type="x\udc80")], InvalidFormat),
    "metadata not Metadata": (lambda: [stored(metadata={"correlation_id": "c"})], InvalidFormat),
    "nan in metadata": (lambda: [stored(metadata=BAD_METADATA["nan"]())], SerializationError),
    "event id not a UUID": (lambda: [stored(event_id="not-a-uuid")], InvalidFormat),  # type: ignore[arg-type]
    "too large": (lambda: [stored(payload=note("x" * (2 << 20)))], TooLong),
}

# Ways to spoil one event of a big, otherwise valid import (given the event and the import), with the
# error every store raises. The import is refused as a whole and the error names the spoiled event.
BAD_IN_A_BIG_IMPORT: dict[
    str, tuple[Callable[[StoredEvent, list[StoredEvent]], StoredEvent], type[Exception]]
] = {
    "constraint": (
        lambda e, _: msgspec.structs.replace(
            e, event_type="eventcore.contract.Constrained", payload=Constrained(amount=-5)
        ),
        SerializationError,
    ),
    "nan": (
        lambda e, _: msgspec.structs.replace(
            e, event_type="eventcore.contract.Measured", payload=Measured(value=math.nan)
        ),
        SerializationError,
    ),
    "type/payload mismatch": (
        lambda e, _: msgspec.structs.replace(e, event_type="eventcore.contract.Measured", payload=note("x")),
        EventTypeMismatch,
    ),
    "duplicate event id": (
        lambda e, events: msgspec.structs.replace(e, event_id=events[0].event_id),
        InvalidFormat,
    ),
    "version gap": (lambda e, _: msgspec.structs.replace(e, version=e.version + 1), VersionConflict),
    "naive recorded_at": (
        lambda e, _: msgspec.structs.replace(e, recorded_at=datetime(2026, 1, 1)),
        InvalidFormat,
    ),
    "nan in metadata": (
        lambda e, _: msgspec.structs.replace(e, metadata=BAD_METADATA["nan"]()),
        SerializationError,
    ),
    "too large": (lambda e, _: msgspec.structs.replace(e, payload=note("x" * (2 << 20))), TooLong),
}


def big_import(run: str, count: int = 3_000, streams: int = 30) -> list[StoredEvent]:
    """A valid import of ``count`` events interleaved over ``streams`` streams (ids of equal length, so
    that none is part of another), two payload classes, metadata shared by all."""
    meta = Metadata(correlation_id=f"c-{run}")
    at = datetime(2026, 1, 2, tzinfo=UTC)
    events = []
    for i in range(count):
        payload: object = Measured(value=i / 4) if i % 7 == 3 else note(f"n{i}", number=i)
        events.append(
            stored(
                stream_id=f"big-{run}-{i % streams:03d}",
                version=i // streams + 1,
                event_type="eventcore.contract.Measured" if i % 7 == 3 else "eventcore.contract.Note",
                payload=payload,
                metadata=meta,
                recorded_at=at,
            )
        )
    return events


BAD_FILES: dict[str, type[Exception]] = {
    "constraint": SerializationError,
    "type/payload mismatch": SerializationError,
    "undecodable payload": SerializationError,
    "null payload": InvalidEventFile,
    "truncated": InvalidEventFile,
}

BAD_READS: dict[str, Callable[[EventStore], object]] = {
    "read_all(after=-1)": lambda s: s.read_all(after=-1),
    "read_all(limit=-1)": lambda s: s.read_all(limit=-1),
    "read_all(after=True)": lambda s: s.read_all(after=True),
    "read_all(limit=1.5)": lambda s: s.read_all(limit=1.5),  # type: ignore[arg-type]
    "read_all(after='1')": lambda s: s.read_all(after="1"),  # type: ignore[arg-type]
    "read_all(limit=False)": lambda s: s.read_all(limit=False),
    "read_stream(after_version=-1)": lambda s: s.read_stream("s", after_version=-1),
    "read_stream(after_version=True)": lambda s: s.read_stream("s", after_version=True),
    "read_stream(after_version=1.0)": lambda s: s.read_stream("s", after_version=1.0),  # type: ignore[arg-type]
    "subscribe(after=-1)": lambda s: s.subscribe(after=-1),
}

CALLS_AFTER_CLOSE: dict[str, Callable[[EventStore], object]] = {
    "append": lambda s: s.append([write("s", "late")]),
    "read_stream": lambda s: s.read_stream("s"),
    "read_streams": lambda s: s.read_streams(["s"]),
    "read_all": lambda s: s.read_all(),
    "stream_version": lambda s: s.stream_version("s"),
    "head": lambda s: s.head(),
    "import_events": lambda s: s.import_events([stored()]),
    "subscribe": lambda s: s.subscribe(),
}

BAD_CHECKPOINTS: dict[str, tuple[object, object]] = {
    "empty name": ("", 1),
    "blank name": ("  ", 1),
    "NUL in name": ("a\x00b", 1),
    "lone surrogate in name": ("a\ud800", 1),
    "name not a string": (5, 1),
    "negative position": ("p", -1),
    "bool position": ("p", True),
    "float position": ("p", 1.5),
}


class ReadGone(Command[int]):
    """Folds a stream; used to show that an unknown event type is not folded silently."""

    stream_id: str = stream()

    def initial_state(self) -> int:
        return 0

    def apply(self, state: int, event: StoredEvent) -> int:
        return state + 1

    def handle(self, state: int, ctx: Any) -> list[EventToWrite]:
        return [emit(self.stream_id, note(f"seen {state}"))]


class ReadGoneTolerantly(ReadGone):
    accepts_unknown_events = True


UNKNOWN = UnknownEvent("eventcore.contract.Gone", b'{"kept":"as written","n":[1,2.5,null]}')


class RulesContract:
    """Failure paths every store shares: refused writes, bad imports and files, bad reads, closing."""

    # -- what cannot be read back is not written --------------------------------------------------------

    # Each case table is run in a loop inside one test (not one test per case): a fresh durable store
    # per case would cost more than all the checks. The failure message names the case.

    def test_append_refuses_what_could_not_be_read_back(self, store: EventStore) -> None:
        store.append([write("before", "a")])
        for case, (make, field) in NOT_READABLE_BACK.items():
            before = everything(store)
            with pytest.raises(SerializationError, match=field) as error:
                store.append([write("s", "ok"), EventToWrite("s", make())])
            assert "'s'" in str(error.value), case
            assert_still_usable(store, before)

    def test_append_refuses_metadata_that_could_not_be_read_back(self, store: EventStore) -> None:
        for case, make in BAD_METADATA.items():
            before = everything(store)
            with pytest.raises(SerializationError, match="metadata") as error:
                store.append([EventToWrite("s", note("x"), make())])
            assert "'s'" in str(error.value), case
            assert_still_usable(store, before)

    def test_values_json_keeps_round_trip_in_untyped_fields(self, store: EventStore) -> None:
        value = {"a": [1, 2.5, None, True, "x", {"b": -(2**63)}], "c": 2**64 - 1, "d": 1e300}
        payload = Unserializable(value=value)
        [written] = store.append([EventToWrite("loose", payload)])
        assert written.payload == payload
        assert store.read_stream("loose")[0].payload == payload
        assert store.read_streams(["loose"]).events[0].payload == payload

    def test_constrained_and_float_events_that_fit_are_stored(self, store: EventStore) -> None:
        events = [Constrained(amount=5), Measured(value=-0.0, maybe=1e-300), Measured(value=2.5)]
        store.append([EventToWrite("fits", e) for e in events])
        assert [e.payload for e in store.read_stream("fits")] == events

    # -- imports: the same rules ---------------------------------------------------------------------

    def test_bad_imports_are_refused_and_change_nothing(self, store: EventStore) -> None:
        store.append([write("other", "x")])
        for case, (make, error) in BAD_IMPORTS.items():
            before = everything(store)
            try:
                store.import_events(make())
            except error:
                pass
            else:
                raise AssertionError(f"import with {case} was not refused with {error.__name__}")
            assert_still_usable(store, before)

    def test_a_bad_event_deep_in_a_big_import_is_named_and_nothing_is_written(
        self, store: EventStore
    ) -> None:
        store.append([write("other", "x")])
        for case, (spoil, error) in BAD_IN_A_BIG_IMPORT.items():
            events = big_import(uuid.uuid4().hex[:8])
            middle = len(events) // 2
            target = events[middle]
            events[middle] = spoil(target, events)
            before = everything(store)
            with pytest.raises(error) as raised:
                store.import_events(events)
            message = str(raised.value)
            assert target.stream_id in message and f"version {target.version}" in message, (case, message)
            assert_still_usable(store, before)
        events = big_import(uuid.uuid4().hex[:8])
        assert store.import_events(events) == len(events)  # the same import, unspoiled, goes in whole
        assert [(e.event_id, e.version, e.payload) for e in everything(store)[-len(events) :]] == [
            (e.event_id, e.version, e.payload) for e in events
        ]

    def test_import_converts_times_to_utc_and_keeps_everything_else(self, store: EventStore) -> None:
        paris = timezone(timedelta(hours=2))
        event = stored(recorded_at=datetime(2026, 5, 1, 14, 0, 0, 123456, tzinfo=paris))
        assert store.import_events([event]) == 1
        [read] = store.read_stream("imp")
        assert read.recorded_at == datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
        assert read.recorded_at.utcoffset() == timedelta(0)
        assert (read.event_id, read.payload, read.metadata, read.version) == (
            event.event_id,
            event.payload,
            event.metadata,
            1,
        )

    # -- files --------------------------------------------------------------------------------------

    @pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".parquet"])
    def test_bad_files_are_refused_with_library_errors(
        self, store: EventStore, tmp_path: Path, suffix: str
    ) -> None:
        store.append([write("before", "a")])
        for case, error in BAD_FILES.items():
            before = everything(store)
            path = _bad_file(tmp_path / f"{case.replace('/', '-')}{suffix}", case)
            try:
                import_file(store, path)
            except error:
                pass
            else:
                raise AssertionError(f"a {suffix} file with {case} was not refused with {error.__name__}")
            assert_still_usable(store, before)

    def test_a_missing_file_is_refused(self, store: EventStore, tmp_path: Path) -> None:
        from ..core.errors import EventFileMissing

        for name in ("absent.jsonl", "absent.parquet"):
            with pytest.raises(EventFileMissing):
                import_file(store, tmp_path / name)
        assert_still_usable(store, [])

    @pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".parquet"])
    def test_export_then_import_keeps_every_event(
        self, store: EventStore, tmp_path: Path, suffix: str
    ) -> None:
        written = store.append([write("x", "1"), write("y", "2"), EventToWrite("x", Measured(value=0.5))])
        path = tmp_path / f"out{suffix}"
        assert bulk.export_store(store, path) == 3
        back = list(bulk.read_events(path, store.registry))
        assert [(e.event_id, e.stream_id, e.version, e.payload, e.metadata, e.recorded_at) for e in back] == [
            (e.event_id, e.stream_id, e.version, e.payload, e.metadata, e.recorded_at) for e in written
        ]

    # -- read arguments, closing, checkpoints, capabilities --------------------------------------------

    def test_bad_read_arguments_are_refused_the_same_way(self, store: EventStore) -> None:
        store.append([write("s", "a"), write("s", "b")])
        for call, read in BAD_READS.items():
            try:
                read(store)
            except InvalidArgument:
                pass
            else:
                raise AssertionError(f"{call} was not refused with InvalidArgument")
        assert [e.version for e in store.read_stream("s", after_version=1)] == [2]
        assert len(store.read_all(after=0, limit=1)) == 1

    @pytest.mark.parametrize("call", sorted(CALLS_AFTER_CLOSE))
    def test_a_closed_store_refuses_every_call_with_store_closed(self, store: EventStore, call: str) -> None:
        store.append([write("s", "a")])
        store.close()
        with pytest.raises(StoreClosed) as error:
            CALLS_AFTER_CLOSE[call](store)
        assert not error.value.retriable and error.value.code == "ES006"
        store.close()  # closing again is harmless

    def test_store_keeps_the_event_store_protocol(self, store: EventStore) -> None:
        assert isinstance(store, EventStore)
        assert isinstance(store.subscribe(), Subscription)

    def test_health_answers_timed_and_never_raises(self, store: EventStore) -> None:
        """``health()`` (the rule in :mod:`eventcore_lab.stores.health`): one timed round trip that
        reports the head and, for stores with a schema, a schema this store has brought up to date;
        closed, it reports StoreClosed instead of raising it."""
        assert isinstance(store, store_base.HealthCheck)
        store.append([write("s", "a"), write("s", "b")])
        health = store.health()
        assert health.ok and health.error is None, health
        assert health.head == store.head() and health.latency_ms >= 0
        if health.schema_version is not None:  # used once, a durable store's schema is current
            assert health.schema_version == health.latest_schema_version and health.migrations_pending == 0
        assert msgspec.json.decode(msgspec.json.encode(health.to_dict()))["head"] == health.head
        store.close()
        closed = store.health()
        assert not closed.ok and closed.head is None and "StoreClosed" in (closed.error or "")

    def test_checkpoints_follow_the_shared_rules(self, store: EventStore) -> None:
        if not isinstance(store, Checkpoints):
            pytest.skip(f"{type(store).__name__} keeps no checkpoints")
        assert store.checkpoint_load("projection-a") == 0
        store.checkpoint_save("projection-a", 5)
        store.checkpoint_save("projection-a", 7)
        store.checkpoint_save("ünïcode name ✓", 0)
        assert store.checkpoint_load("projection-a") == 7
        assert store.checkpoint_load("ünïcode name ✓") == 0
        for case, (name, position) in BAD_CHECKPOINTS.items():
            with pytest.raises(InvalidArgument):
                store.checkpoint_save(name, position)  # type: ignore[arg-type]
            if type(position) is int and position == 1:  # the name is the bad part
                with pytest.raises(InvalidArgument, match="name"):
                    store.checkpoint_load(name)  # type: ignore[arg-type]
            assert store.checkpoint_load("projection-a") == 7, case

    # -- events of types that are not registered --------------------------------------------------------

    def test_an_unknown_type_is_read_replayed_and_exported_as_written(
        self, store: EventStore, tmp_path: Path
    ) -> None:
        store.append([write("gone", "first")])
        gone = stored(stream_id="gone", version=2, event_type=UNKNOWN.event_type, payload=UNKNOWN)
        assert store.import_events([gone]) == 1
        store.append([write("gone", "third")])
        read = store.read_stream("gone")
        assert [type(e.payload) for e in read] == [ContractNote, UnknownEvent, ContractNote]
        unknown = read[1]
        assert unknown.payload == UNKNOWN and unknown.payload.data["kept"] == "as written"
        assert (unknown.event_id, unknown.event_type, unknown.metadata, unknown.recorded_at) == (
            gone.event_id,
            gone.event_type,
            gone.metadata,
            gone.recorded_at,
        )
        assert store.read_streams(["gone"]).events == read
        assert everything(store)[-3:] == read
        with store.subscribe() as subscription:
            assert [subscription.poll(5) for _ in range(3)][1] == unknown
        path = tmp_path / "with-unknown.jsonl"
        bulk.export_store(store, path)
        lines = [msgspec.json.decode(line) for line in path.read_bytes().splitlines()]
        raw_lines = path.read_bytes().splitlines()
        assert lines[1]["event_type"] == UNKNOWN.event_type and UNKNOWN.raw in raw_lines[1]
        with pytest.raises(UnknownEventFolded, match=r"eventcore\.contract\.Gone"):
            Executor(store, retry=RetryConfig.none()).execute(ReadGone("gone"))
        assert Executor(store).execute(ReadGoneTolerantly("gone")).events_written[0].payload.text == "seen 3"

    # -- random input ------------------------------------------------------------------------------------

    @_HYPOTHESIS
    @given(data=st.data())
    def test_random_payloads_and_metadata_round_trip_or_are_refused(
        self, store: EventStore, data: st.DataObject
    ) -> None:
        payload = data.draw(_payloads(), label="payload")
        meta = data.draw(_metadata(), label="metadata")
        stream_id = f"random-{uuid.uuid4()}"
        before = store.head()
        try:
            [written] = store.append([EventToWrite(stream_id, payload, meta)])
        except EventCoreError:
            assert store.head() == before and store.read_stream(stream_id) == []
            return
        assert written.payload == payload and written.metadata == meta
        assert store.read_stream(stream_id) == [written]
        assert store.read_all(after=before) == [written]

    @_HYPOTHESIS
    @given(data=st.data())
    def test_random_imports_round_trip_or_are_refused(self, store: EventStore, data: st.DataObject) -> None:
        stream_id = f"random-{uuid.uuid4()}"
        events = [
            stored(
                stream_id=stream_id,
                version=version,
                event_type=data.draw(
                    st.sampled_from(["eventcore.contract.Note", "eventcore.contract.Unserializable"])
                ),
                payload=data.draw(_payloads()),
                metadata=data.draw(_metadata()),
                recorded_at=data.draw(st.datetimes(timezones=st.none() | st.just(UTC) | st.timezones())),
            )
            for version in data.draw(st.lists(st.integers(0, 4), min_size=1, max_size=3))
        ]
        before = store.head()
        try:
            store.import_events(events)
        except EventCoreError:
            assert store.head() == before and store.read_stream(stream_id) == []
            return
        read = store.read_stream(stream_id)
        assert [(e.event_id, e.version, e.payload, e.metadata) for e in read] == [
            (e.event_id, e.version, e.payload, e.metadata) for e in events
        ]
        assert [e.recorded_at for e in read] == [e.recorded_at for e in events]

    @_HYPOTHESIS
    @given(data=st.data())
    def test_damaged_files_import_as_read_or_are_refused(
        self, store: EventStore, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
    ) -> None:
        suffix = data.draw(st.sampled_from([".jsonl", ".jsonl.gz", ".parquet"]), label="format")
        folder = tmp_path_factory.mktemp("damaged")
        path = folder / f"events{suffix}"
        run = uuid.uuid4().hex  # fresh streams per example, of the same length
        source = [
            stored(stream_id=f"file-{i % 2}-{run}", version=i // 2 + 1, payload=note(f"n{i}", number=i))
            for i in range(6)
        ]
        bulk.write_events(source, path, store.registry)
        content = bytearray(path.read_bytes())
        damage = data.draw(st.sampled_from(["truncate", "flip", "overwrite"]), label="damage")
        at = data.draw(st.integers(0, 1 << 20), label="at") % len(content)  # sizes vary between runs
        if damage == "truncate":
            del content[at:]
        elif damage == "flip":
            content[at] ^= data.draw(st.integers(1, 255), label="xor")
        else:
            chunk = data.draw(st.binary(min_size=1, max_size=16), label="bytes")
            content[at : at + len(chunk)] = chunk
        path.write_bytes(bytes(content))
        before = everything(store)
        try:
            count = import_file(store, path)
        except EventCoreError:
            assert everything(store) == before
            return
        imported = everything(store)[len(before) :]
        assert len(imported) == count
        try:
            expected = list(bulk.read_events(path, store.registry))
        except EventCoreError:  # the damage hit only what the store's own reader ignores (e.g. the
            expected = source  # Arrow schema pyarrow keeps in Parquet metadata; DuckDB skips it)
        assert [
            (e.event_id, e.stream_id, e.version, e.payload, e.metadata, e.recorded_at) for e in imported
        ] == [(e.event_id, e.stream_id, e.version, e.payload, e.metadata, e.recorded_at) for e in expected]


class PersistentRulesContract:
    """For stores that keep events across restarts: refused input leaves a store that reopens whole."""

    def test_refused_input_leaves_a_store_that_reopens_whole(
        self, store: EventStore, reopen: Callable[[EventStore], EventStore], tmp_path: Path
    ) -> None:
        store.append([write("p", "kept"), EventToWrite("p", Measured(value=1.5))])
        gone = stored(stream_id="p", version=3, event_type=UNKNOWN.event_type, payload=UNKNOWN)
        store.import_events([gone])
        for make, _ in NOT_READABLE_BACK.values():
            with pytest.raises(SerializationError):
                store.append([EventToWrite("p", make())])
        for make_import, error in BAD_IMPORTS.values():
            items = make_import()
            with pytest.raises(error):
                store.import_events(items)
        for case in ("constraint", "type/payload mismatch"):
            with pytest.raises(SerializationError):
                import_file(store, _bad_file(tmp_path / f"{case.replace('/', '-')}.parquet", case))
        before = everything(store)
        again = reopen(store)
        assert everything(again) == before
        assert again.read_stream("p")[2].payload == UNKNOWN
        assert again.read_streams(["p", "imp"]).versions == {"p": 3, "imp": 0}
        assert_still_usable(again, before)

    @_HYPOTHESIS
    @given(data=st.data())
    def test_random_events_read_back_equal_after_reopen(
        self, store: EventStore, reopen: Callable[[EventStore], EventStore], data: st.DataObject
    ) -> None:
        live: list[EventStore] = self.__dict__.setdefault("_live_stores", [store])  # one per example
        stream_id = f"reopen-{uuid.uuid4()}"
        meta = data.draw(_metadata(), label="metadata")
        written: list[StoredEvent] = []
        for payload in data.draw(st.lists(_payloads(), min_size=1, max_size=4), label="payloads"):
            try:
                written += live[-1].append([EventToWrite(stream_id, payload, meta)])
            except EventCoreError:
                continue
        live.append(reopen(live[-1]))
        assert live[-1].read_stream(stream_id) == written
        assert live[-1].read_streams([stream_id]).events == written


# -- helpers -------------------------------------------------------------------------------------------


def _bad_file(path: Path, case: str) -> Path:
    """An event file whose second row has the named defect (the first row is good)."""
    good = [
        stored(stream_id="file", version=1, payload=note("good")),
        stored(stream_id="file", version=2, payload=note("second")),
    ]
    table = bulk.events_to_arrow(good)
    payloads = table.column("payload").to_pylist()
    types = table.column("event_type").to_pylist()
    if case == "constraint":
        types[1], payloads[1] = "eventcore.contract.Constrained", '{"amount":-5}'
    elif case == "type/payload mismatch":
        types[1], payloads[1] = "eventcore.contract.Measured", payloads[1]
    elif case == "undecodable payload":
        payloads[1] = '{"text": 5}'
    elif case == "null payload":
        payloads[1] = None
    table = table.set_column(4, "event_type", pa.array(types, pa.string()))
    table = table.set_column(5, "payload", pa.array(payloads, pa.string()))
    if path.suffix == ".parquet":
        pq.write_table(table, path)
        if case == "truncated":
            data = path.read_bytes()
            path.write_bytes(data[: len(data) // 2])
        return path
    lines = _jsonl_lines(table)
    if case == "truncated":
        lines = lines[: len(lines) * 2 // 3]
    if path.name.endswith(".gz"):
        packed = gzip.compress(lines)
        path.write_bytes(packed[: len(packed) - 8] if case == "truncated" else packed)
    else:
        path.write_bytes(lines if case != "truncated" else lines[: lines.rindex(b",")])
    return path


def _jsonl_lines(table: pa.Table) -> bytes:
    """JSON Lines for an event table, payloads embedded as written (also when they are not valid)."""
    out = []
    for row in table.to_pylist():
        payload = row["payload"]
        fields = {k: v for k, v in row.items() if k not in ("payload", "metadata")}
        fields["recorded_at"] = row["recorded_at"].isoformat()
        head = msgspec.json.encode(fields)[:-1]
        meta = row["metadata"]
        out.append(
            head
            + b',"payload":'
            + (b"null" if payload is None else payload.encode())
            + b',"metadata":'
            + meta.encode()
            + b"}\n"
        )
    return b"".join(out)


_json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(st.characters(exclude_categories=[]) | st.sampled_from(["\ud800", "\udfff", "\x00"]), max_size=8),
)
_odd = st.one_of(
    st.binary(max_size=4),
    st.tuples(st.integers(), st.text(max_size=3)),
    st.frozensets(st.integers(0, 5), max_size=3),
    st.datetimes(timezones=st.none() | st.just(UTC)),
    st.decimals(allow_nan=True),
    st.uuids(),
    st.dictionaries(st.integers(0, 5), st.integers(), max_size=2),
)
_values = st.recursive(
    st.one_of(_json_scalars, _odd),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


def _payloads() -> st.SearchStrategy[object]:
    text = st.text(st.characters(exclude_categories=[]) | st.just("\ud800"), max_size=20)
    return st.one_of(
        st.builds(Unserializable, value=_values),
        st.builds(
            ContractNote, text=text, number=st.integers(-(2**64), 2**64), tags=st.lists(text, max_size=2)
        ),
        st.builds(Measured, value=st.floats(), maybe=st.none() | st.floats()),
        st.builds(Constrained, amount=st.integers(-3, 3)),
    )


def _metadata() -> st.SearchStrategy[Metadata]:
    short = st.text(st.characters(exclude_categories=[]) | st.just("\udc80"), min_size=1, max_size=8)
    return st.builds(
        Metadata,
        correlation_id=short,
        causation_id=st.none() | short,
        user_id=st.none() | short,
        custom=st.dictionaries(st.text(max_size=5), _values, max_size=3),
    )
