"""Builders, log assertions and hypothesis strategies."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventcore_lab import EventToWrite, MemoryStore, Metadata
from eventcore_lab.core.errors import InvalidFormat, ValidationError
from eventcore_lab.core.ids import StreamId
from eventcore_lab.core.registry import default_registry
from eventcore_lab.examples import banking, tasks
from eventcore_lab.testing import (
    StoredEventBuilder,
    any_event,
    assert_events_ordered,
    assert_stream_contains,
    assert_stream_versions,
    assert_unique_event_ids,
    assert_valid_log,
    build_history,
    command_sequences,
    event_types,
    events,
    invalid_stream_ids,
    metadata,
    restamp,
    stored_event,
    stream_ids,
)

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- builders --------------------------------------------------------------------------------------------


def test_stored_event_defaults() -> None:
    event = stored_event(banking.MoneyDeposited(amount=5))
    assert (event.stream_id, event.version, event.position, event.event_type) == (
        "test-stream",
        1,
        1,
        "MoneyDeposited",
    )
    assert event.metadata.user_id == "test-user"
    with pytest.raises(InvalidFormat, match="version is an int >= 1"):
        stored_event(banking.MoneyDeposited(amount=5), version=0)


def test_builder_is_fluent_and_does_not_share_state() -> None:
    base = StoredEventBuilder().stream("account-1")
    later = base.version(3).position(9).user("ann")
    event = later.build(banking.MoneyDeposited(amount=5))
    assert (event.stream_id, event.version, event.position, event.metadata.user_id) == (
        "account-1",
        3,
        9,
        "ann",
    )
    assert base.build(banking.MoneyDeposited(amount=1)).version == 1


def test_build_history_numbers_like_a_store() -> None:
    opened = banking.AccountOpened(owner="ann")
    built = build_history(("a", opened), ("b", opened), ("a", banking.MoneyDeposited(amount=1)))
    assert [(e.stream_id, e.version, e.position) for e in built] == [("a", 1, 1), ("b", 1, 2), ("a", 2, 3)]
    assert_valid_log(built)
    with pytest.raises(InvalidFormat, match="pairs"):
        build_history(opened)  # type: ignore[arg-type]


# -- assertions ----------------------------------------------------------------------------------------------


def test_assertions_accept_a_real_store_log() -> None:
    store = MemoryStore()
    store.append(
        [
            EventToWrite("a", banking.AccountOpened(owner="x")),
            EventToWrite("b", banking.AccountOpened(owner="y")),
        ]
    )
    store.append([EventToWrite("a", banking.MoneyDeposited(amount=3))])
    assert_valid_log(store)
    assert_stream_contains(store, "a", [banking.AccountOpened(owner="x"), banking.MoneyDeposited(amount=3)])
    assert event_types(store.read_all()) == ["AccountOpened", "AccountOpened", "MoneyDeposited"]


def test_assertions_catch_broken_logs() -> None:
    good = build_history(*[("a", banking.MoneyDeposited(amount=i)) for i in range(1, 4)])
    with pytest.raises(AssertionError, match="out of order: MoneyDeposited at position 1"):
        assert_events_ordered([good[1], good[0]])
    with pytest.raises(AssertionError, match="used twice"):
        assert_unique_event_ids(restamp(good[:2], event_id=good[0].event_id))
    gap = [good[0], msgspec.structs.replace(good[2], version=3)]
    with pytest.raises(
        AssertionError, match="stream 'a': expected version 2 next, got MoneyDeposited at position 3"
    ):
        assert_stream_versions(gap)
    assert_stream_versions(good[1:], from_start=False)
    with pytest.raises(AssertionError, match="expected version 1"):
        assert_stream_versions(good[1:])
    with pytest.raises(AssertionError, match="stream 'a' holds:"):
        assert_stream_contains(good, "a", [banking.MoneyDeposited(amount=1)])


# -- strategies ----------------------------------------------------------------------------------------------


@FAST
@given(stream_ids(), stream_ids("task-"))
def test_stream_ids_are_valid_and_unchanged(plain: str, prefixed: str) -> None:
    assert StreamId(plain) == plain and prefixed.startswith("task-") and StreamId(prefixed) == prefixed


@FAST
@given(invalid_stream_ids())
def test_invalid_stream_ids_are_refused(value: object) -> None:
    with pytest.raises(ValidationError):
        StreamId(value)  # type: ignore[arg-type]


@FAST
@given(metadata())
def test_metadata_round_trips(meta: Metadata) -> None:
    assert msgspec.json.decode(msgspec.json.encode(meta), type=Metadata) == meta


@FAST
@given(any_event(classes=[*banking.EVENTS, *tasks.EVENTS]))
def test_events_of_registered_classes_round_trip_through_a_store(event: object) -> None:
    store = MemoryStore()
    name = default_registry.type_name(event)
    assert default_registry.decode(name, default_registry.encode(event)) == event
    [stored] = store.append([EventToWrite("s", event)])
    assert stored.payload == event


def test_events_draw_defaulted_fields_and_take_overrides() -> None:
    seen: set[int] = set()

    @settings(max_examples=50, deadline=None)
    @given(events(banking.AccountOpened, owner=st.just("ann")))
    def collect(event: banking.AccountOpened) -> None:
        assert event.owner == "ann"
        seen.add(event.initial_balance)

    collect()
    assert len(seen) > 1  # the defaulted field varies too (plain from_type leaves it at 0)
    with pytest.raises(InvalidFormat, match="no field"):
        events(banking.AccountOpened, nope=st.just(1))


def test_command_sequences() -> None:
    deposits = st.builds(banking.Deposit, st.sampled_from(["account-1", "account-2"]), st.integers(1, 10))
    withdrawals = st.builds(banking.Withdraw, st.just("account-1"), st.integers(1, 10))
    kinds: set[str] = set()

    @settings(max_examples=40, deadline=None)
    @given(command_sequences({"deposit": deposits, "withdraw": withdrawals}, min_size=1, max_size=5))
    def collect(commands: list[object]) -> None:
        assert 1 <= len(commands) <= 5
        kinds.update(type(c).__name__ for c in commands)

    collect()
    assert kinds == {"Deposit", "Withdraw"}
    with pytest.raises(InvalidFormat, match="at least one"):
        command_sequences({})
