"""The query half of the store contract: tags, ``read_query`` and append conditions, on every store.

The matching rules are those of :mod:`eventcore_lab.core.query` (the dcb.events model); the examples are
the specification's (a unique username, course subscriptions with a capacity, invoice numbers without
gaps), run at store level with racing threads.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ..core.errors import AppendConditionFailed, InvalidArgument, ValidationError, VersionConflict
from ..core.events import EventToWrite, ExpectedVersion, StoredEvent
from ..core.query import AppendCondition, Query, QueryItem
from ..core.tags import MAX_TAG_LENGTH, MAX_TAGS_PER_EVENT
from ..stores import bulk
from ..stores.base import BulkImport, Queries
from ._contract_events import ContractClaimed, ContractJoined, tagged, write
from ._contract_rules import _HYPOTHESIS

NOTE, JOINED, CLAIMED = "eventcore.contract.Note", "eventcore.contract.Joined", "eventcore.contract.Claimed"


def item(*types: str, tags: tuple[str, ...] = ()) -> QueryItem:
    return QueryItem(types=types, tags=tags)


def joined(stream_id: str, student: str, course: str | None = None) -> EventToWrite:
    return EventToWrite(stream_id, ContractJoined(student=student, course=course))


def claimed(stream_id: str, name: str, number: int = 0) -> EventToWrite:
    return EventToWrite(stream_id, ContractClaimed(name=name, number=number))


def snapshot(store: Any) -> list[tuple[uuid.UUID, str, int, int, tuple[str, ...]]]:
    """Everything a store holds, tags included, to show that a refused call changed nothing."""
    return [(e.event_id, e.stream_id, e.version, e.position, e.tags) for e in store.read_all()]


def race(count: int, work: Callable[[int], str]) -> list[str]:
    """Run ``work(n)`` in ``count`` threads started together; their results, sorted."""
    barrier = threading.Barrier(count)
    results: list[str] = []
    errors: list[BaseException] = []

    def run(n: int) -> None:
        barrier.wait()
        try:
            results.append(work(n))
        except BaseException as exc:  # reported below, so a failing thread fails the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return sorted(results)


#: name -> (query, indices into the events :meth:`QueriesContract._matching_table` writes)
MATCHING = {
    "one type": (Query.of(item(NOTE)), [0, 1, 6]),
    "two types": (Query.of(item(NOTE, CLAIMED)), [0, 1, 5, 6]),
    "one tag": (Query.of(item(tags=("x",))), [0, 1]),
    "two tags, both required": (Query.of(item(tags=("x", "y"))), [1]),
    "a tag on two types": (Query.of(item(tags=("student:1",))), [2, 4]),
    "type and tag": (Query.of(item(JOINED, tags=("course:7",))), [2, 3]),
    "type and a tag it never carries": (Query.of(item(CLAIMED, tags=("course:7",))), []),
    "two tags of one event": (Query.of(item(tags=("student:1", "course:7"))), [2]),
    "several items": (
        Query.of(item(JOINED, tags=("student:2",)), item(tags=("x", "y")), item(CLAIMED)),
        [1, 3, 5],
    ),
    "overlapping items give each event once": (Query.of(item(NOTE), item(tags=("x",))), [0, 1, 6]),
    "an unknown tag": (Query.of(item(tags=("nobody",))), []),
    "an unknown type": (Query.of(item("nothing.Here")), []),
    "all": (Query.all(), [0, 1, 2, 3, 4, 5, 6]),
}

BAD_TAGS = {
    "empty": "",
    "a space": "student 1",
    "a tab": "tab\there",
    "a newline": "line\nbreak",
    "a control character": "nul\x00byte",
    "too long": "t" * (MAX_TAG_LENGTH + 1),
}


class QueriesContract:
    """Tags, ``read_query`` and ``append(condition=...)``; mixed into :class:`StoreContract`."""

    def _matching_table(self, store: Any) -> list[StoredEvent]:
        return store.append(
            [
                tagged("a", "n1", "x"),
                tagged("b", "n2", "x", "y"),
                joined("j-1", "1", "7"),
                joined("j-2", "2", "7"),
                joined("j-3", "1"),
                claimed("c-1", "ann"),
                write("a", "n3"),
            ]
        )

    def test_store_reads_by_query(self, store: Any) -> None:
        assert isinstance(store, Queries)

    @pytest.mark.parametrize("case", list(MATCHING))
    def test_query_matching(self, store: Any, case: str) -> None:
        query, indices = MATCHING[case]
        stored = self._matching_table(store)
        read = store.read_query(query)
        assert [e.position for e in read.events] == [stored[i].position for i in indices]
        assert read.position == store.head()
        assert all(query.matches(e.event_type, e.tags) for e in read.events)

    def test_tags_come_from_the_class_and_from_emit_in_order_without_duplicates(self, store: Any) -> None:
        write_ = EventToWrite("j", ContractJoined(student="1", course="7"), tags=("course:7", "vip", "vip"))
        [stored] = store.append([write_])
        assert stored.tags == ("student:1", "course:7", "vip")
        [read] = store.read_stream("j")
        assert read == stored and read.tags == stored.tags
        [none] = store.append([joined("j", "2")])  # course None: that template gives no tag
        assert none.tags == ("student:2",)
        assert store.read_all()[-1].tags == ("student:2",)

    def test_one_event_with_two_tags_is_stored_once_and_found_by_both(self, store: Any) -> None:
        [event] = store.append([joined("j", "42", "7")])
        by_student = store.read_query(Query.of(item(tags=("student:42",)))).events
        by_course = store.read_query(Query.of(item(tags=("course:7",)))).events
        both = store.read_query(Query.of(item(tags=("student:42",)), item(tags=("course:7",)))).events
        assert by_student == by_course == both == [event]
        assert store.head() == 1 and len(store.read_all()) == 1

    def test_read_query_after_and_limit(self, store: Any) -> None:
        stored = store.append([tagged(f"s-{i % 3}", str(i), "t", f"n:{i}") for i in range(8)])
        store.append([write("untagged", "x")])
        query = Query.of(item(tags=("t",)))
        page = store.read_query(query, after=stored[2].position, limit=3)
        assert [e.payload.text for e in page.events] == ["3", "4", "5"]
        assert page.position == store.head()
        assert store.read_query(query, after=stored[-1].position).events == []
        assert store.read_query(query, limit=0).events == []
        empty = store.read_query(Query.of(item(tags=("nothing",))))
        assert empty.events == [] and empty.position == store.head()

    def test_a_new_store_reads_nothing_at_position_zero(self, store: Any) -> None:
        assert store.read_query(Query.all()) == store.read_query(Query.of(item(NOTE)))
        assert store.read_query(Query.all()).position == 0

    # -- append conditions ----------------------------------------------------------------------------

    def test_a_condition_violated_after_the_read_fails_and_writes_nothing(self, store: Any) -> None:
        query = Query.of(item(JOINED, tags=("course:7",)))
        store.append([joined("j-1", "1", "7")])
        decision = store.read_query(query)
        store.append([joined("j-2", "2", "7")])  # committed after the decision was read
        before = snapshot(store)
        with pytest.raises(AppendConditionFailed) as error:
            store.append([joined("j-3", "3", "7")], condition=AppendCondition(query, decision.position))
        assert error.value.retriable and error.value.code == "ES007"
        assert error.value.after == decision.position and error.value.position == store.head()
        assert snapshot(store) == before
        again = store.read_query(query)  # read again and retry: it holds now
        [stored] = store.append([joined("j-3", "3", "7")], condition=AppendCondition(query, again.position))
        assert stored.position == again.position + 1

    def test_a_condition_overlapping_only_on_an_unrelated_tag_does_not_conflict(self, store: Any) -> None:
        query = Query.of(item(JOINED, tags=("course:7",)))
        decision = store.read_query(query)
        store.append([joined("j-1", "1", "8")])  # same student tag, other course
        store.append([tagged("n", "course 7 but a note", "course:7")])  # the tag, not the type
        [stored] = store.append(
            [joined("j-2", "1", "7")], condition=AppendCondition(query, decision.position)
        )
        assert stored.tags == ("student:1", "course:7")

    def test_a_condition_without_a_position_fails_on_any_match(self, store: Any) -> None:
        query = Query.of(item(CLAIMED, tags=("claim:ann",)))
        store.append([claimed("user-1", "ann")])
        with pytest.raises(AppendConditionFailed) as error:
            store.append([claimed("user-2", "ann")], condition=AppendCondition(query))
        assert error.value.after is None
        assert store.stream_version("user-2") == 0
        store.append(
            [claimed("user-2", "bob")], condition=AppendCondition(Query.of(item(tags=("claim:bob",))))
        )
        assert store.stream_version("user-2") == 1

    def test_a_condition_on_every_event_fails_after_any_later_event(self, store: Any) -> None:
        store.append([write("s", "a")])
        with pytest.raises(AppendConditionFailed):
            store.append([write("s", "b")], condition=AppendCondition(Query.all(), 0))
        store.append([write("s", "b")], condition=AppendCondition(Query.all(), store.head()))
        assert store.stream_version("s") == 2

    def test_an_empty_append_with_a_condition_only_checks_it(self, store: Any) -> None:
        query = Query.of(item(tags=("claim:ann",)))
        assert store.append([], condition=AppendCondition(query)) == []
        store.append([claimed("user-1", "ann")])
        with pytest.raises(AppendConditionFailed):
            store.append([], condition=AppendCondition(query))
        assert store.head() == 1

    def test_stream_expectations_and_the_condition_are_checked_together(self, store: Any) -> None:
        query = Query.of(item(tags=("claim:ann",)))
        store.append([claimed("user-1", "ann")])
        both_fail = AppendCondition(query, 0)
        with pytest.raises(VersionConflict):  # a stream conflict is reported first
            store.append([claimed("user-1", "x")], {"user-1": ExpectedVersion.NO_STREAM}, condition=both_fail)
        with pytest.raises(AppendConditionFailed):  # a holding expectation does not excuse the condition
            store.append([claimed("user-1", "x")], {"user-1": ExpectedVersion.exact(1)}, condition=both_fail)
        assert store.head() == 1

    def test_unique_username_claim_lets_exactly_one_of_racing_writers_win(self, store: Any) -> None:
        condition = AppendCondition(Query.of(item(CLAIMED, tags=("claim:ann",))))

        def claim(n: int) -> str:
            try:
                store.append([claimed(f"user-{n}", "ann")], condition=condition)
            except AppendConditionFailed:
                return "taken"
            return "won"

        assert race(6, claim) == ["taken"] * 5 + ["won"]
        assert len(store.read_query(condition.fail_if_events_match).events) == 1

    def test_course_subscriptions_never_exceed_the_capacity(self, store: Any) -> None:
        capacity, query = 3, Query.of(item(JOINED, tags=("course:7",)))

        def subscribe(n: int) -> str:
            for _ in range(50):
                read = store.read_query(query)
                if len(read.events) >= capacity:
                    return "full"
                try:
                    store.append(
                        [joined(f"student-{n}", str(n), "7")], condition=AppendCondition(query, read.position)
                    )
                except AppendConditionFailed:
                    continue
                return "joined"
            return "gave up"

        assert race(8, subscribe) == ["full"] * 5 + ["joined"] * 3
        assert len(store.read_query(query).events) == capacity

    def test_invoice_numbers_have_no_gaps(self, store: Any) -> None:
        query = Query.of(item(CLAIMED))  # a condition on the type alone: any new invoice conflicts

        def issue(n: int) -> str:
            issued = 0
            while issued < 5:
                read = store.read_query(query)
                last = read.events[-1].payload.number if read.events else 0
                try:
                    store.append(
                        [claimed(f"invoice-{last + 1}", f"invoice-{last + 1}", last + 1)],
                        condition=AppendCondition(query, read.position),
                    )
                except AppendConditionFailed:
                    continue
                issued += 1
            return "done"

        race(4, issue)
        numbers = [e.payload.number for e in store.read_query(query).events]
        assert numbers == list(range(1, 21))

    # -- bad input ----------------------------------------------------------------------------------

    @pytest.mark.parametrize("case", list(BAD_TAGS))
    def test_bad_tags_are_refused_naming_the_stream_and_change_nothing(self, store: Any, case: str) -> None:
        store.append([tagged("good", "1", "ok")])
        before = snapshot(store)
        with pytest.raises(ValidationError) as error:
            store.append([tagged("good", "2"), tagged("bad-stream", "x", BAD_TAGS[case])])
        assert "bad-stream" in str(error.value)
        assert snapshot(store) == before
        with pytest.raises(ValidationError):
            store.read_query(Query.of(item(tags=(BAD_TAGS[case],))))
        store.append([tagged("good", "2", "ok")])  # still usable
        assert store.stream_version("good") == 2

    def test_tag_limits(self, store: Any) -> None:
        longest = "t" * MAX_TAG_LENGTH
        many = [f"n:{i}" for i in range(MAX_TAGS_PER_EVENT - 1)]
        [stored] = store.append([tagged("s", "limits", longest, *many)])
        assert stored.tags == (longest, *many)
        assert store.read_query(Query.of(item(tags=(longest,)))).events == [stored]
        with pytest.raises(ValidationError, match="limit is 32"):
            store.append([tagged("s", "too many", longest, *many, "one-more")])
        with pytest.raises(ValidationError, match="is a string"):
            store.append([EventToWrite("s", ContractClaimed(name="x"), tags=(5,))])  # type: ignore[arg-type]
        assert store.head() == 1

    def test_bad_query_and_condition_arguments_are_refused(self, store: Any) -> None:
        store.append([write("s", "a")])
        with pytest.raises(InvalidArgument):
            store.read_query("course:7")
        with pytest.raises(InvalidArgument):
            store.read_query(Query.all(), after=-1)
        with pytest.raises(InvalidArgument):
            store.read_query(Query.all(), limit=True)
        with pytest.raises(InvalidArgument):
            store.append([write("s", "b")], condition=Query.all())
        assert store.head() == 1

    # -- tags survive every way out and back in ------------------------------------------------------

    @pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
    def test_tags_round_trip_through_export_and_import(self, store: Any, tmp_path: Path, suffix: str) -> None:
        written = store.append([joined("j-1", "1", "7"), tagged("n", "plain"), write("n", "untagged")])
        path = tmp_path / f"out{suffix}"
        if hasattr(store, "export_events"):
            store.export_events(path)
        else:
            bulk.export_store(store, path)
        back = list(bulk.read_events(path, store.registry))
        assert [e.tags for e in back] == [("student:1", "course:7"), (), ()]
        copies = [
            msgspec.structs.replace(
                e, stream_id=f"copy-{e.stream_id}", event_id=uuid.uuid4(), tags=(*e.tags, "copy")
            )
            for e in back
        ]
        copy_path = tmp_path / f"copies{suffix}"
        bulk.write_events(copies, copy_path, store.registry)
        if isinstance(store, BulkImport):
            assert store.import_file(copy_path) == 3
        else:
            assert store.import_events(bulk.read_events(copy_path, store.registry)) == 3
        found = store.read_query(Query.of(item(tags=("copy", "course:7")))).events
        assert [(e.stream_id, e.tags) for e in found] == [("copy-j-1", ("student:1", "course:7", "copy"))]
        assert len(store.read_query(Query.of(item(tags=("copy",)))).events) == 3
        assert store.read_all()[0].tags == written[0].tags

    def test_import_refuses_bad_tags(self, store: Any) -> None:
        [event] = store.append([tagged("s", "a", "ok")])
        for bad in (("ok", "ok"), ("has space",)):
            copy = msgspec.structs.replace(event, stream_id="copy", event_id=uuid.uuid4(), tags=bad)
            with pytest.raises(ValidationError):
                store.import_events([copy])
        assert store.head() == 1

    # -- the property: a query read is a filtered read_all ---------------------------------------------

    @_HYPOTHESIS
    @given(
        events=st.lists(
            st.tuples(
                st.sampled_from(["note", "joined", "claimed"]),
                st.sets(st.sampled_from("abcd")),
                st.booleans(),
            ),
            max_size=8,
        ),
        items=st.lists(
            st.tuples(st.sets(st.sampled_from([NOTE, JOINED, CLAIMED])), st.sets(st.sampled_from("abcde"))),
            max_size=3,
        ),
        after=st.integers(0, 12),
        limit=st.none() | st.integers(0, 6),
    )
    def test_read_query_is_read_all_filtered(
        self,
        store: Any,
        events: list[tuple[str, set[str], bool]],
        items: list[tuple[set[str], set[str]]],
        after: int,
        limit: int | None,
    ) -> None:
        writes = []
        for kind, tags, second in events:
            extra = tuple(sorted(f"t:{t}" for t in tags))
            if kind == "note":
                writes.append(tagged("h", "x", *extra))
            else:
                event = ContractJoined(student="a", course="b" if second else None)
                if kind == "claimed":
                    event = ContractClaimed(name="a")  # type: ignore[assignment]
                writes.append(EventToWrite("h", event, tags=extra))
        if writes:
            store.append(writes)
        query_items = [
            QueryItem(types=tuple(sorted(t)), tags=tuple(sorted(f"t:{x}" for x in g)))
            for t, g in items
            if t or g
        ]
        query = Query.of(*query_items) if query_items else Query.all()
        expected = [e for e in store.read_all(after=after) if query.matches(e.event_type, e.tags)][:limit]
        read = store.read_query(query, after=after, limit=limit)
        assert read.events == expected
        assert read.position == store.head()
