"""The store contract for filtered reads: event types, stream categories, ``backwards`` and ``limit`` on
``read_all``, ``read_stream``, ``read_filtered`` and ``subscribe``, the same on every store.

The reference is always the unfiltered log filtered in Python, so a store that filters in SQL must give
exactly what the memory store gives, page for page.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ..core.errors import InvalidArgument, StoreClosed, UnknownEventType, ValidationError
from ..core.events import EventToWrite, Metadata, StoredEvent
from ..core.registry import UnknownEvent
from ..stores.base import EventStore
from ..stores.filters import category_of
from ._contract_events import Measured, NotRegistered, note
from ._contract_rules import _HYPOTHESIS

NOTE, MEASURED = "eventcore.contract.Note", "eventcore.contract.Measured"


def _event(stream_id: str, kind: str, n: int) -> EventToWrite:
    payload = note(f"n{n}", number=n) if kind == NOTE else Measured(value=float(n))
    return EventToWrite(stream_id, payload)


def _mixed(store: EventStore, prefix: str = "") -> list[StoredEvent]:
    """Eleven events over three categories and two types, written in four appends."""
    plan = [
        ("order", NOTE),
        ("order", MEASURED),
        ("cart", NOTE),
        ("user", MEASURED),
        ("cart", MEASURED),
        ("order", NOTE),
    ]
    written: list[StoredEvent] = []
    for n in range(4):
        kinds = plan[n % 3 :: 2]
        written += store.append(
            [_event(f"{cat}-{prefix}{n}", kind, n * 10 + i) for i, (cat, kind) in enumerate(kinds)]
        )
    return written


def _reference(
    events: list[StoredEvent], types: set[str] | None, categories: set[str] | None
) -> list[StoredEvent]:
    return [
        e
        for e in events
        if (types is None or e.event_type in types)
        and (categories is None or category_of(e.stream_id) in categories)
    ]


BAD_FILTERS: dict[str, Callable[[EventStore], object]] = {
    "read_all(event_types='x')": lambda s: s.read_all(event_types="x"),
    "read_all(event_types=[])": lambda s: s.read_all(event_types=[]),
    "read_all(event_types=[1])": lambda s: s.read_all(event_types=[1]),  # type: ignore[list-item]
    "read_all(categories='a')": lambda s: s.read_all(categories="a"),
    "read_all(categories=[])": lambda s: s.read_all(categories=[]),
    "read_all(categories=['a-b'])": lambda s: s.read_all(categories=["a-b"]),
    "read_all(categories=[''])": lambda s: s.read_all(categories=[""]),
    "read_all(backwards='yes')": lambda s: s.read_all(backwards="yes"),  # type: ignore[arg-type]
    "read_all(backwards=1)": lambda s: s.read_all(backwards=1),  # type: ignore[arg-type]
    "read_stream(limit=-1)": lambda s: s.read_stream("s", limit=-1),
    "read_stream(backwards=None)": lambda s: s.read_stream("s", backwards=None),  # type: ignore[arg-type]
    "read_stream(event_types=[])": lambda s: s.read_stream("s", event_types=[]),
    "read_filtered(limit=-1)": lambda s: s.read_filtered(limit=-1),
    "read_filtered(after=-1)": lambda s: s.read_filtered(after=-1),
    "read_filtered(categories=[3])": lambda s: s.read_filtered(categories=[3]),  # type: ignore[list-item]
    "subscribe(event_types='x')": lambda s: s.subscribe(event_types="x"),
    "subscribe(categories=['a-'])": lambda s: s.subscribe(categories=["a-"]),
}


class FilteredReadsContract:
    """Filtered, backward and limited reads: the same results on every store."""

    @pytest.mark.parametrize(
        ("types", "categories"),
        [
            ({NOTE}, None),
            ({MEASURED}, None),
            (None, {"order"}),
            (None, {"cart", "user"}),
            ({NOTE}, {"cart"}),
            ({NOTE, MEASURED}, {"order", "cart", "user"}),
            ({"eventcore.contract.Nothing"}, None),
            (None, {"nobody"}),
        ],
    )
    def test_read_all_filters_by_type_and_category(
        self, store: EventStore, types: set[str] | None, categories: set[str] | None
    ) -> None:
        everything = _mixed(store)
        expected = _reference(everything, types, categories)
        assert store.read_all(event_types=types, categories=categories) == expected
        for after in (0, 3, 7, 12):
            for limit in (None, 0, 1, 2, 5):
                got = store.read_all(after=after, limit=limit, event_types=types, categories=categories)
                tail = [e for e in expected if e.position > after]
                assert got == (tail if limit is None else tail[:limit]), (after, limit)

    def test_event_types_may_be_classes_or_names(self, store: EventStore) -> None:
        everything = _mixed(store)
        by_class = store.read_all(event_types=[Measured])
        assert by_class == store.read_all(event_types=[MEASURED])
        assert by_class == _reference(everything, {MEASURED}, None) and by_class

    def test_read_filtered_looks_past_events_that_do_not_match(self, store: EventStore) -> None:
        everything = _mixed(store)
        store.append([_event("user-late", MEASURED, 99), _event("user-late", MEASURED, 100)])
        head = store.head()
        notes = _reference(everything, {NOTE}, None)
        read = store.read_filtered(event_types=[NOTE])
        assert read.events == notes
        assert read.position == head  # the trailing Measured events were looked at, not returned
        assert store.read_filtered(after=head, event_types=[NOTE]).events == []
        assert store.read_filtered(after=head, event_types=[NOTE]).position == head
        cut = store.read_filtered(event_types=[NOTE], limit=2)
        assert cut.events == notes[:2] and cut.position == notes[1].position
        assert store.read_filtered(limit=0, after=2, event_types=[NOTE]).position == 2

    @pytest.mark.parametrize("page", [1, 2, 3, 7])
    def test_paging_by_the_returned_position_reads_every_match_once(
        self, store: EventStore, page: int
    ) -> None:
        everything = _mixed(store)
        for types, categories in (({NOTE}, None), (None, {"order"}), ({MEASURED}, {"user", "cart"})):
            got: list[StoredEvent] = []
            position = 0
            for _ in range(len(everything) + 2):
                read = store.read_filtered(
                    after=position, limit=page, event_types=types, categories=categories
                )
                assert read.position >= position
                got += read.events
                if read.position == position:
                    break
                position = read.position
            assert got == _reference(everything, types, categories)
            assert position == store.head()

    def test_backwards_reads_give_the_newest_first(self, store: EventStore) -> None:
        everything = _mixed(store)
        assert store.read_all(backwards=True) == everything[::-1]
        assert store.read_all(backwards=True, limit=3) == everything[::-1][:3]
        assert store.read_all(backwards=True, after=9) == everything[9:][::-1]
        notes = _reference(everything, {NOTE}, {"order"})
        assert (
            store.read_all(backwards=True, limit=2, event_types=[NOTE], categories=["order"])
            == (notes[::-1][:2])
        )

    def test_read_stream_filters_reverses_and_limits(self, store: EventStore) -> None:
        stream = f"mix-{uuid.uuid4().hex[:8]}"
        kinds = [NOTE, MEASURED, NOTE, NOTE, MEASURED, NOTE]
        written = store.append([_event(stream, kind, n) for n, kind in enumerate(kinds)])
        store.append([_event("other-1", NOTE, 1)])
        assert store.read_stream(stream, backwards=True) == written[::-1]
        assert store.read_stream(stream, limit=2) == written[:2]
        assert store.read_stream(stream, backwards=True, limit=2) == written[::-1][:2]
        assert store.read_stream(stream, event_types=[NOTE]) == [e for e in written if e.event_type == NOTE]
        assert store.read_stream(stream, event_types=[MEASURED], backwards=True) == [written[4], written[1]]
        assert store.read_stream(stream, event_types=[MEASURED], after_version=2) == [written[4]]
        assert store.read_stream(stream, event_types=[NOTE], after_version=1, limit=2) == [
            written[2],
            written[3],
        ]
        assert store.read_stream("nothing-here", backwards=True, limit=3) == []
        assert store.read_stream(stream, limit=0) == []

    def test_bad_filters_are_refused_and_change_nothing(self, store: EventStore) -> None:
        everything = _mixed(store)
        for call, read in BAD_FILTERS.items():
            try:
                read(store)
            except ValidationError:
                pass
            else:
                raise AssertionError(f"{call} was not refused")
        with pytest.raises(InvalidArgument, match="event_types is empty"):
            store.read_all(event_types=())
        with pytest.raises(UnknownEventType):
            store.read_all(event_types=[NotRegistered])
        assert store.read_all() == everything

    def test_a_closed_store_refuses_filtered_reads(self, store: EventStore) -> None:
        _mixed(store)
        store.close()
        for call in (
            lambda: store.read_filtered(event_types=[NOTE]),
            lambda: store.read_all(categories=["order"]),
            lambda: store.read_all(backwards=True),
            lambda: store.read_stream("order-0", backwards=True),
            lambda: store.subscribe(event_types=[NOTE]),
        ):
            with pytest.raises(StoreClosed):
                call()

    def test_filtered_subscription_delivers_matches_and_moves_past_the_rest(self, store: EventStore) -> None:
        everything = _mixed(store)
        with store.subscribe(event_types=[MEASURED], categories=["user", "order"], batch_size=2) as sub:
            got = []
            while (event := sub.poll(timeout=0.2)) is not None:
                got.append(event)
            assert got == _reference(everything, {MEASURED}, {"user", "order"})
            assert sub.position == store.head()
            store.append([_event("cart-x", MEASURED, 1), _event("cart-x", NOTE, 2)])
            assert sub.poll(timeout=0.2) is None
            assert sub.position == store.head()  # the cart events were looked at and passed
            [late] = store.append([_event("user-x", MEASURED, 3)])
            assert sub.poll(timeout=5.0) == late

    def test_filters_match_the_type_an_upcaster_renames_to(self, store: EventStore) -> None:
        from ..evolution import Upcasters

        old_name = "eventcore.contract.OldMeasured"
        store.append([_event("user-1", NOTE, 1)])
        old = StoredEvent(
            event_id=uuid.uuid4(),
            stream_id="user-2",
            version=1,
            position=1,
            event_type=old_name,
            payload=UnknownEvent(old_name, b'{"value": 2.5}'),
            metadata=Metadata(correlation_id="c-old"),
            recorded_at=datetime(2026, 1, 2, tzinfo=UTC),
        )
        store.import_events([old])
        store.append([_event("user-1", MEASURED, 3), _event("cart-1", NOTE, 4)])
        chains = Upcasters(store.registry)
        chains.rename_type(old_name, 1, MEASURED)
        chains.install()
        try:
            measured = store.read_all(event_types=[MEASURED])
            assert [(e.position, e.event_type) for e in measured] == [(2, MEASURED), (3, MEASURED)]
            assert measured[0].payload == Measured(value=2.5)
            assert store.read_all(event_types=[old_name]) == []
            pages, position = [], 0
            while (read := store.read_filtered(after=position, limit=1, event_types=[MEASURED])).events:
                pages += read.events
                position = read.position
            assert pages == measured
            assert store.read_filtered(event_types=[MEASURED]).position == store.head()
            assert (
                store.read_all(event_types=[MEASURED], categories=["user"], backwards=True) == measured[::-1]
            )
            assert store.read_stream("user-2", event_types=[MEASURED]) == measured[:1]
        finally:
            chains.uninstall()

    @_HYPOTHESIS
    @given(data=st.data())
    def test_random_filters_and_pages_equal_the_filtered_log(
        self, store: EventStore, data: st.DataObject
    ) -> None:
        tag = uuid.uuid4().hex[:6]
        before = store.head()
        writes = data.draw(
            st.lists(
                st.tuples(
                    st.sampled_from(["a", "b", "c"]), st.integers(0, 2), st.sampled_from([NOTE, MEASURED])
                ),
                min_size=1,
                max_size=25,
            ),
            label="writes",
        )
        for cat, n, kind in writes:
            store.append([_event(f"{cat}-{tag}{n}", kind, n)])
        log = store.read_all(after=before)
        types = data.draw(st.none() | st.sets(st.sampled_from([NOTE, MEASURED]), min_size=1), label="types")
        cats = data.draw(st.none() | st.sets(st.sampled_from(["a", "b", "c", "d"]), min_size=1), label="cats")
        page = data.draw(st.integers(1, 6), label="page")
        expected = _reference(log, types, cats)
        got: list[StoredEvent] = []
        position = before
        while True:
            read = store.read_filtered(after=position, limit=page, event_types=types, categories=cats)
            got += read.events
            if read.position == position:
                break
            position = read.position
        assert got == expected and position == store.head()
        back = store.read_all(after=before, event_types=types, categories=cats, backwards=True, limit=page)
        assert back == expected[::-1][:page]
