"""The in-memory store passes the store contract and takes a clock and an id source."""

import itertools
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from eventcore_lab import MemoryStore
from eventcore_lab.core.errors import InvalidFormat
from eventcore_lab.core.events import EventToWrite, Metadata, StoredEvent
from eventcore_lab.core.ids import RepeatableIds, uuid7_at
from eventcore_lab.examples import banking
from eventcore_lab.testing.contract import StoreContract


class TestMemoryStoreContract(StoreContract):
    @pytest.fixture
    def store(self) -> Iterator[MemoryStore]:
        with MemoryStore() as store:
            yield store


# -- clock and id source -------------------------------------------------------------------------------


def deposit(stream: str = "account-1", amount: int = 1) -> EventToWrite:
    return EventToWrite(stream, banking.MoneyDeposited(amount=amount), Metadata(correlation_id="t"))


def test_a_fake_clock_and_id_source_show_up_in_stored_events() -> None:
    moments = iter([datetime(2024, 5, 1, 12, tzinfo=UTC), datetime(2024, 5, 1, 13, tzinfo=UTC)])
    ids = iter(uuid.UUID(int=n) for n in range(1, 10))
    store = MemoryStore(clock=lambda: next(moments), new_id=lambda: next(ids))
    first = store.append([deposit(), deposit("account-2")])
    second = store.append([deposit()])
    assert [e.event_id.int for e in store.read_all()] == [1, 2, 3]
    assert [e.recorded_at for e in first] == [
        datetime(2024, 5, 1, 12, tzinfo=UTC)
    ] * 2  # one reading per append
    assert second[0].recorded_at == datetime(2024, 5, 1, 13, tzinfo=UTC)


def test_clock_readings_are_stored_in_utc() -> None:
    paris = timezone(timedelta(hours=2))
    store = MemoryStore(clock=lambda: datetime(2024, 5, 1, 14, tzinfo=paris))
    (event,) = store.append([deposit()])
    assert event.recorded_at == datetime(2024, 5, 1, 12, tzinfo=UTC) and event.recorded_at.tzinfo is UTC


def test_defaults_give_real_time_and_strictly_increasing_v7_ids() -> None:
    store = MemoryStore()
    before = datetime.now(UTC)
    for _ in range(200):
        store.append([deposit(), deposit("account-2")])
    events = store.read_all()
    assert all(e.event_id.version == 7 for e in events)
    assert all(a.event_id < b.event_id for a, b in itertools.pairwise(events))
    assert before <= events[0].recorded_at <= events[-1].recorded_at <= datetime.now(UTC)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"clock": lambda: datetime(2024, 1, 1)}, "timezone-aware"),
        ({"clock": lambda: "noon"}, "timezone-aware"),
        ({"new_id": lambda: "not-a-uuid"}, "must return a uuid.UUID"),
    ],
)
def test_a_bad_clock_or_id_source_is_refused_and_nothing_is_written(
    kwargs: dict[str, Any], words: str
) -> None:
    store = MemoryStore(**kwargs)
    with pytest.raises(InvalidFormat, match=words):
        store.append([deposit(), deposit()])
    assert store.head() == 0 and store.stream_version("account-1") == 0


def test_clock_and_new_id_must_be_callables() -> None:
    with pytest.raises(InvalidFormat, match="clock must be a callable"):
        MemoryStore(clock=datetime(2024, 1, 1, tzinfo=UTC))  # type: ignore[arg-type]
    with pytest.raises(InvalidFormat, match="new_id must be a callable"):
        MemoryStore(new_id=uuid.UUID(int=1))  # type: ignore[arg-type]


def test_import_keeps_the_given_ids_and_times() -> None:
    source = MemoryStore(clock=lambda: datetime(2020, 1, 1, tzinfo=UTC))
    source.append([deposit(), deposit()])
    target = MemoryStore(clock=lambda: datetime(2030, 1, 1, tzinfo=UTC), new_id=lambda: uuid.UUID(int=0))
    target.import_events(source.read_all())
    assert target.read_all() == source.read_all()


# -- RepeatableIds ---------------------------------------------------------------------------------------


class StepClock:
    def __init__(self, *moments: datetime) -> None:
        self.moments = list(moments)

    def __call__(self) -> datetime:
        return self.moments.pop(0) if len(self.moments) > 1 else self.moments[0]


T0 = datetime(2024, 1, 1, 8, tzinfo=UTC)


def millis(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def test_repeatable_ids_are_v7_with_the_clock_millisecond_and_strictly_increase() -> None:
    moments = [
        T0,
        T0,
        T0 + timedelta(microseconds=999),
        T0 + timedelta(milliseconds=1),
        T0 + timedelta(days=3),
    ]
    ids = RepeatableIds(StepClock(*moments))
    made = [ids() for _ in moments]
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in made)
    assert [i.int >> 80 for i in made] == [millis(m) for m in moments]
    assert all(a < b for a, b in itertools.pairwise(made))
    assert [i.int & ((1 << 62) - 1) for i in made] == [1, 2, 3, 4, 5]  # unseeded: the counter is 1, 2, 3...


def test_repeatable_ids_repeat_per_seed_and_differ_between_seeds() -> None:
    def run(seed: int | None) -> list[uuid.UUID]:
        ids = RepeatableIds(StepClock(T0, T0, T0 + timedelta(seconds=1)), seed)
        return [ids() for _ in range(5)]

    assert run(5) == run(5) and run(None) == run(None)
    assert run(5) != run(6) and run(5) != run(None)
    assert all(a < b for a, b in itertools.pairwise(run(5)))


def test_repeatable_ids_keep_increasing_when_the_clock_goes_back() -> None:
    ids = RepeatableIds(StepClock(T0 + timedelta(seconds=5), T0, T0 + timedelta(seconds=6)))
    first, back, later = ids(), ids(), ids()
    assert first < back < later
    assert back.int >> 80 == millis(T0 + timedelta(seconds=5))  # the last timestamp is kept
    assert later.int >> 80 == millis(T0 + timedelta(seconds=6))


def test_repeatable_ids_refuse_bad_clock_readings_without_using_up_a_value() -> None:
    readings = iter([datetime(2024, 1, 1), datetime(1969, 12, 31, tzinfo=UTC), T0])
    ids = RepeatableIds(lambda: next(readings))
    with pytest.raises(InvalidFormat, match="timezone-aware"):
        ids()
    with pytest.raises(InvalidFormat, match="1970"):
        ids()
    assert ids().int & ((1 << 62) - 1) == 1
    with pytest.raises(InvalidFormat, match="clock must be a callable"):
        RepeatableIds(T0)  # type: ignore[arg-type]
    with pytest.raises(InvalidFormat, match="counter"):
        uuid7_at(T0, -1)


def test_repeatable_ids_drive_a_store_the_same_way_twice() -> None:
    def run() -> list[StoredEvent]:
        now = [T0]
        clock = lambda: now[0]  # noqa: E731  (a clock that moves only when the test says so)
        store = MemoryStore(clock=clock, new_id=RepeatableIds(clock, seed=1))
        for n in range(3):
            now[0] += timedelta(seconds=1.5)
            store.append([deposit(amount=n + 1), deposit("account-2")])
        return store.read_all()

    first = run()
    assert first == run()
    assert [e.event_id.int >> 80 for e in first] == [millis(e.recorded_at) for e in first]
