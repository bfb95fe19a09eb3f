"""The store contract: one test suite that every event store must pass.

Subclass :class:`StoreContract` in a pytest module and provide a ``store`` fixture that yields a fresh,
empty store; pytest then runs every ``test_*`` method against it::

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store(self, tmp_path):
            with MyStore(tmp_path / "events.db") as store:
                yield store

Stores that keep data across restarts also subclass :class:`PersistentStoreContract` and provide a
``reopen`` fixture: a function that closes the given store and opens it again.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from ..core.errors import SerializationError, TooLong, UnknownEventType, ValidationError, VersionConflict
from ..core.events import EventToWrite, ExpectedVersion, Metadata, StoredEvent
from ._contract_events import ContractNote, NotRegistered, Unserializable, note, snapshot, tagged, write
from ._contract_filters import FilteredReadsContract
from ._contract_queries import QueriesContract
from ._contract_rules import PersistentRulesContract, RulesContract

__all__ = [
    "ContractNote",
    "NotRegistered",
    "PersistentStoreContract",
    "StoreContract",
    "Unserializable",
    "note",
    "snapshot",
    "tagged",
    "write",
]

NO_STREAM, ANY, NO_CHECK, exact = (
    ExpectedVersion.NO_STREAM,
    ExpectedVersion.ANY,
    ExpectedVersion.NO_CHECK,
    ExpectedVersion.exact,
)


class StoreContract(RulesContract, QueriesContract, FilteredReadsContract):
    """The behaviour every store shares. Override the ``store`` fixture."""

    @pytest.fixture
    def store(self) -> Any:
        raise NotImplementedError("provide a `store` fixture that yields a fresh, empty store")

    # -- appending and reading ----------------------------------------------------------------------

    def test_new_store_is_empty(self, store: Any) -> None:
        assert store.head() == 0
        assert store.read_all() == []
        assert store.stream_version("nothing-here") == 0
        assert store.read_stream("nothing-here") == []

    def test_versions_start_at_one_and_positions_grow(self, store: Any) -> None:
        first = store.append([write("s-1", "a"), write("s-1", "b"), write("s-2", "c")])
        assert [(e.stream_id, e.version) for e in first] == [("s-1", 1), ("s-1", 2), ("s-2", 1)]
        positions = [e.position for e in first]
        assert positions == sorted(positions) and len(set(positions)) == 3 and positions[0] >= 1
        second = store.append([write("s-1", "d")])
        assert second[0].version == 3 and second[0].position > positions[-1]
        assert store.stream_version("s-1") == 3 and store.stream_version("s-2") == 1
        assert store.head() == second[0].position

    def test_stored_event_round_trips_payload_and_metadata(self, store: Any) -> None:
        when = datetime(2026, 5, 17, 8, 30, 15, 123456, tzinfo=UTC)
        payload = note("ünïcode ✓", number=-7, amount=Decimal("12.345"), when=when, tags=["a", "b"])
        metadata = Metadata(
            correlation_id="corr-1", causation_id="cause-1", user_id="ann", custom={"k": [1, 2]}
        )
        [stored] = store.append([EventToWrite("round-trip", payload, metadata)])
        [read] = store.read_stream("round-trip")
        for event in (stored, read):
            assert event.payload == payload
            assert event.metadata == metadata
            assert event.event_type == "eventcore.contract.Note"
            assert event.recorded_at.tzinfo is not None
        assert read.event_id == stored.event_id and read.position == stored.position

    def test_metadata_gets_a_correlation_id_when_absent(self, store: Any) -> None:
        [stored] = store.append([write("meta", "x")])
        assert stored.metadata.correlation_id

    def test_read_stream_after_version(self, store: Any) -> None:
        store.append([write("s", str(i)) for i in range(5)])
        assert [e.version for e in store.read_stream("s", after_version=3)] == [4, 5]

    def test_read_streams_merges_in_position_order(self, store: Any) -> None:
        store.append([write("a", "1")])
        store.append([write("b", "2")])
        store.append([write("a", "3"), write("c", "x")])
        found = store.read_streams(["a", "b", "empty"])
        assert [e.payload.text for e in found.events] == ["1", "2", "3"]
        assert dict(found.versions) == {"a": 2, "b": 1, "empty": 0}

    def test_read_all_after_and_limit(self, store: Any) -> None:
        stored = store.append([write(f"s-{i % 3}", str(i)) for i in range(10)])
        everything = store.read_all()
        assert [e.event_id for e in everything] == [e.event_id for e in stored]
        middle = stored[3].position
        assert [e.payload.text for e in store.read_all(after=middle, limit=2)] == ["4", "5"]
        assert store.read_all(after=stored[-1].position) == []

    def test_empty_append_writes_nothing(self, store: Any) -> None:
        assert store.append([]) == []
        assert store.head() == 0

    # -- expected versions --------------------------------------------------------------------------

    def test_expected_no_stream(self, store: Any) -> None:
        store.append([write("s", "a")], {"s": NO_STREAM})
        with pytest.raises(VersionConflict) as error:
            store.append([write("s", "b")], {"s": NO_STREAM})
        assert error.value.streams == ("s",) and error.value.retriable
        assert store.stream_version("s") == 1

    def test_expected_exact(self, store: Any) -> None:
        store.append([write("s", "a")], {"s": exact(0)})
        store.append([write("s", "b")], {"s": exact(1)})
        with pytest.raises(VersionConflict):
            store.append([write("s", "c")], {"s": exact(1)})
        assert store.stream_version("s") == 2

    def test_expected_any_needs_an_existing_stream(self, store: Any) -> None:
        with pytest.raises(VersionConflict):
            store.append([write("s", "a")], {"s": ANY})
        store.append([write("s", "a")])
        store.append([write("s", "b")], {"s": ANY})
        assert store.stream_version("s") == 2

    def test_no_check_always_appends(self, store: Any) -> None:
        store.append([write("s", "a")], {"s": NO_CHECK})
        store.append([write("s", "b")], {"s": NO_CHECK})
        assert store.stream_version("s") == 2

    def test_multi_stream_append_is_all_or_nothing(self, store: Any) -> None:
        store.append([write("a", "1"), write("b", "1")])
        before = snapshot(store)
        with pytest.raises(VersionConflict) as error:
            store.append([write("a", "2"), write("b", "2"), write("c", "1")], {"a": exact(1), "b": exact(0)})
        assert "b" in error.value.streams
        assert snapshot(store) == before

    def test_read_only_stream_is_version_checked(self, store: Any) -> None:
        """An expectation on a stream that is not written still guards the append."""
        store.append([write("rates", "v1")])
        with pytest.raises(VersionConflict):
            store.append([write("orders", "o1")], {"rates": exact(0), "orders": NO_STREAM})
        assert store.stream_version("orders") == 0
        store.append([write("orders", "o1")], {"rates": exact(1), "orders": NO_STREAM})
        assert store.stream_version("orders") == 1 and store.stream_version("rates") == 1

    # -- bad input -----------------------------------------------------------------------------------

    @pytest.mark.parametrize("bad_id", ["", "   ", "x" * 256, "tab\there", "nul\x00byte", "line\nbreak"])
    def test_invalid_stream_ids_are_refused_and_change_nothing(self, store: Any, bad_id: str) -> None:
        store.append([write("good", "1")])
        before = snapshot(store)
        with pytest.raises(ValidationError) as error:
            store.append([write("good", "2"), write(bad_id, "bad")])
        assert error.value.code in {"VE001", "VE002", "VE003"}
        assert snapshot(store) == before
        store.append([write("good", "2")])  # still usable
        assert store.stream_version("good") == 2

    def test_unregistered_event_type_is_refused(self, store: Any) -> None:
        with pytest.raises(UnknownEventType, match="NotRegistered"):
            store.append([write("s", "ok"), EventToWrite("s", NotRegistered("x"))])
        assert store.head() == 0

    def test_unserializable_payload_is_refused(self, store: Any) -> None:
        with pytest.raises(SerializationError):
            store.append([write("s", "ok"), EventToWrite("s", Unserializable(value=object()))])
        assert store.head() == 0
        store.append([write("s", "ok")])
        assert store.stream_version("s") == 1

    def test_too_large_payload_is_refused(self, store: Any) -> None:
        with pytest.raises(TooLong):
            store.append([EventToWrite("s", note("x" * (2 << 20)))])
        assert store.head() == 0
        store.append([write("s", "small")])
        assert store.stream_version("s") == 1

    @pytest.mark.parametrize(
        "tricky",
        ["'; DROP TABLE events; --", 'quote"double', "back\\slash", "ünïcødé-✓-" + "é" * 240, "%s %(x)s {0}"],
    )
    def test_tricky_stream_ids_are_stored_verbatim(self, store: Any, tricky: str) -> None:
        store.append([write(tricky, "a"), write(tricky, "b")])
        assert [e.payload.text for e in store.read_stream(tricky)] == ["a", "b"]
        assert store.stream_version(tricky) == 2
        assert store.read_all()[0].stream_id == tricky

    def test_tricky_payload_text_round_trips(self, store: Any) -> None:
        text = "'; DROP TABLE events; -- \" \\ \u2028 ✓ 𝄞"
        store.append([write("s", text)])
        assert store.read_stream("s")[0].payload.text == text

    # -- import ---------------------------------------------------------------------------------------

    def test_import_keeps_ids_and_versions(self, store: Any) -> None:
        events = [
            StoredEvent(
                event_id=uuid.UUID(int=i + 1),
                stream_id=f"imp-{i % 2}",
                version=i // 2 + 1,
                position=100 + i,
                event_type="eventcore.contract.Note",
                payload=note(str(i)),
                metadata=Metadata(correlation_id=f"c{i}"),
                recorded_at=datetime(2026, 1, 1, tzinfo=UTC),
            )
            for i in range(6)
        ]
        assert store.import_events(events) == 6
        read = store.read_all()
        assert [(e.event_id, e.stream_id, e.version) for e in read] == [
            (e.event_id, e.stream_id, e.version) for e in events
        ]
        assert [e.position for e in read] == sorted(e.position for e in read)
        assert read[0].recorded_at == events[0].recorded_at
        assert read[3].metadata.correlation_id == "c3"

    def test_import_with_a_version_gap_imports_nothing(self, store: Any) -> None:
        store.append([write("imp", "existing")])
        stored = store.read_all()[0]
        gap = msgspec.structs.replace(stored, stream_id="imp", version=3, event_id=uuid.uuid4())
        ok = msgspec.structs.replace(stored, stream_id="other", version=1, event_id=uuid.uuid4())
        with pytest.raises(VersionConflict):
            store.import_events([ok, gap])
        assert store.stream_version("other") == 0 and store.head() == 1

    # -- concurrency and tailing -----------------------------------------------------------------------

    def test_concurrent_appends_keep_versions_gap_free(self, store: Any) -> None:
        def writer(n: int) -> None:
            for i in range(25):
                store.append([write(f"shared-{i % 3}", f"{n}-{i}"), write(f"own-{n}", str(i))])

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        everything = store.read_all()
        assert len(everything) == 200
        positions = [e.position for e in everything]
        assert positions == sorted(positions) and len(set(positions)) == 200
        for stream_id in {e.stream_id for e in everything}:
            assert [e.version for e in store.read_stream(stream_id)] == list(
                range(1, store.stream_version(stream_id) + 1)
            )

    def test_optimistic_check_lets_exactly_one_writer_win(self, store: Any) -> None:
        outcomes: list[str] = []
        barrier = threading.Barrier(6)

        def writer(n: int) -> None:
            barrier.wait()
            try:
                store.append([write("contended", str(n))], {"contended": NO_STREAM})
                outcomes.append("ok")
            except VersionConflict:
                outcomes.append("conflict")

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes) == ["conflict"] * 5 + ["ok"]
        assert store.stream_version("contended") == 1

    def test_subscription_catches_up_then_follows_live(self, store: Any) -> None:
        store.append([write("sub", "old-1"), write("sub", "old-2")])
        seen: list[str] = []
        with store.subscribe(after=0) as subscription:
            for _ in range(2):
                event = subscription.poll(timeout=5)
                assert event is not None
                seen.append(event.payload.text)
            assert subscription.poll(timeout=0.05) is None
            threading.Timer(0.05, lambda: store.append([write("sub", "live")])).start()
            event = subscription.poll(timeout=10)
            assert event is not None
            seen.append(event.payload.text)
        assert seen == ["old-1", "old-2", "live"]

    def test_tailing_reader_never_skips_under_concurrent_writers(self, store: Any) -> None:
        total = 4 * 30
        seen: list[int] = []

        def tail() -> None:
            with store.subscribe(after=0, batch_size=7) as subscription:
                while len(seen) < total:
                    event = subscription.poll(timeout=10)
                    if event is None:
                        return
                    seen.append(event.position)

        def writer(n: int) -> None:
            for i in range(30):
                store.append([write(f"tail-{(n + i) % 5}", f"{n}-{i}")])

        reader = threading.Thread(target=tail)
        reader.start()
        writers = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
        for thread in writers:
            thread.start()
        for thread in writers:
            thread.join()
        reader.join(timeout=30)
        assert seen == [e.position for e in store.read_all()]
        assert len(seen) == total


class PersistentStoreContract(PersistentRulesContract):
    """For stores that keep their events across restarts. Provide ``store`` and ``reopen`` fixtures."""

    @pytest.fixture
    def reopen(self) -> Any:
        raise NotImplementedError("provide a `reopen` fixture: a function store -> reopened store")

    def test_reopen_restores_everything(self, store: Any, reopen: Any) -> None:
        written = store.append([write("p-1", "a"), write("p-2", "b"), write("p-1", "c")])
        again = reopen(store)
        assert [(e.event_id, e.stream_id, e.version, e.position) for e in again.read_all()] == [
            (e.event_id, e.stream_id, e.version, e.position) for e in written
        ]
        assert again.stream_version("p-1") == 2
        more = again.append([write("p-1", "d")], {"p-1": exact(2)})
        assert more[0].version == 3 and more[0].position > written[-1].position
