"""The sample histories: deterministic generation, well-formed logs, and the loader."""

from __future__ import annotations

import itertools
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from eventcore_lab import MemoryStore, StoredEvent
from eventcore_lab.errors import VersionConflict
from eventcore_lab.examples import banking
from eventcore_lab.samples import (
    SAMPLES,
    START,
    SampleFileMissing,
    UnknownSample,
    generate,
    load_sample,
    sample_path,
    write_sample,
)

SMALL = 3_000


@pytest.fixture(scope="module")
def small_banking() -> list[StoredEvent]:
    return generate("banking", SMALL, seed=11)


@pytest.fixture(scope="module")
def small_tasks() -> list[StoredEvent]:
    return generate("tasks", SMALL, seed=11)


def assert_well_formed(events: list[StoredEvent]) -> None:
    """Positions 1..n, versions gap-free per stream, ids and times in log order."""
    assert [e.position for e in events] == list(range(1, len(events) + 1))
    last_version: dict[str, int] = defaultdict(int)
    for event in events:
        assert event.version == last_version[event.stream_id] + 1, event
        last_version[event.stream_id] = event.version
    assert all(a.event_id < b.event_id for a, b in itertools.pairwise(events))
    assert all(a.recorded_at <= b.recorded_at for a, b in itertools.pairwise(events))
    assert events[0].recorded_at >= START


def balances_and_flows(events: list[StoredEvent]) -> tuple[dict[str, int], int]:
    """Final balances, and the money that entered minus the money that left the bank."""
    accounts: dict[str, banking.Account] = {}
    outside = 0
    for event in events:
        banking.apply_to_accounts(accounts, event)
        match event.payload:
            case banking.AccountOpened(initial_balance=amount) | banking.MoneyDeposited(amount=amount):
                outside += amount
            case banking.MoneyWithdrawn(amount=amount):
                outside -= amount
    return {sid: account.balance for sid, account in accounts.items()}, outside


def test_generation_is_deterministic(small_banking, small_tasks):
    assert generate("banking", SMALL, seed=11) == small_banking
    assert generate("tasks", SMALL, seed=11) == small_tasks
    assert generate("banking", SMALL, seed=12) != small_banking


def test_banking_has_exactly_the_requested_events_and_is_well_formed(small_banking):
    assert len(small_banking) == SMALL
    assert_well_formed(small_banking)
    kinds = {e.event_type for e in small_banking}
    assert kinds == {"AccountOpened", "MoneyDeposited", "MoneyWithdrawn", "MoneyTransferred"}


def test_banking_conserves_money(small_banking):
    balances, net_inflow = balances_and_flows(small_banking)
    assert sum(balances.values()) == net_inflow
    assert min(balances.values()) >= 0, "withdrawals and transfers never overdraw"
    transfers = [e for e in small_banking if e.event_type == "MoneyTransferred"]
    assert len(transfers) % 2 == 0, "each transfer is written to both accounts"


def test_tasks_history_is_well_formed_and_uses_every_command(small_tasks):
    assert SMALL <= len(small_tasks) < SMALL + 6  # the last command may write a few events past the target
    assert_well_formed(small_tasks)
    kinds = {e.event_type for e in small_tasks}
    assert {"TaskCreated", "TaskAssigned", "TaskUnassigned", "TaskStarted", "TaskCompleted"} <= kinds
    assert {"CommentAdded", "PriorityChanged", "UserTaskAssigned", "UserTaskCompleted"} <= kinds


def test_metadata_is_deterministic_and_readable(small_tasks):
    first = small_tasks[0]
    assert first.metadata.correlation_id == "tasks-0000001"
    assert first.payload.created_at == first.recorded_at  # ctx.now and recorded_at share the clock


def test_event_ids_are_v7_from_the_simulated_time_and_the_log_position(small_banking):
    """The store's RepeatableIds use the simulated clock: timestamp = recorded_at, counter = position."""
    unix_epoch = datetime(1970, 1, 1, tzinfo=UTC)
    for event in small_banking[:200]:
        assert (event.event_id.version, event.event_id.variant) == (7, uuid.RFC_4122)
        assert event.event_id.int >> 80 == (event.recorded_at - unix_epoch) // timedelta(milliseconds=1)
        assert event.event_id.int & ((1 << 62) - 1) == event.position
    assert small_banking[-1].recorded_at - small_banking[0].recorded_at > timedelta(hours=1)  # simulated


def test_write_then_load_round_trips(tmp_path, small_tasks):
    path = write_sample("tasks", tmp_path, events=SMALL, seed=11, progress=False)
    assert path == sample_path("tasks", tmp_path)
    store = load_sample("tasks", directory=tmp_path)
    assert store.read_all() == small_tasks
    limited = load_sample("tasks", MemoryStore(), limit=100, directory=tmp_path)
    assert limited.read_all() == small_tasks[:100]
    regenerated = tmp_path / "again"
    write_sample("tasks", regenerated, events=SMALL, seed=11, progress=False)
    assert (regenerated / path.name).read_bytes() == path.read_bytes(), "files are byte-identical"


def test_loading_into_a_store_with_the_same_streams_is_refused(tmp_path):
    write_sample("banking", tmp_path, events=200, seed=3, progress=False)
    store = load_sample("banking", directory=tmp_path)
    with pytest.raises(VersionConflict):
        load_sample("banking", store, directory=tmp_path)
    assert store.head() == 200, "the refused import wrote nothing"


def test_bad_names_and_missing_files_are_reported(tmp_path):
    with pytest.raises(UnknownSample, match="unknown sample 'shop'"):
        load_sample("shop")
    with pytest.raises(SampleFileMissing, match=r"make_samples\.py"):
        load_sample("banking", directory=tmp_path)
    with pytest.raises(ValueError, match="at least 1 event"):
        generate("banking", 0)


def test_shipped_files_load_and_hold_their_invariants():
    bank = load_sample("banking")
    events = bank.read_all()
    assert len(events) == SAMPLES["banking"][1]
    assert_well_formed(events)
    balances, net_inflow = balances_and_flows(events)
    assert sum(balances.values()) == net_inflow


def test_shipped_tasks_file_is_what_the_script_makes():
    assert load_sample("tasks").read_all() == generate("tasks")
