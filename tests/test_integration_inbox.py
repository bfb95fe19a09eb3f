"""Inboxes without a broker: exactly-once effects, per-stream order, rejections, racing consumers."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from eventcore_lab import MemoryStore
from eventcore_lab.core.errors import ValidationFailed
from eventcore_lab.core.events import EventToWrite
from eventcore_lab.core.executor import Executor
from eventcore_lab.examples.banking import AccountOpened, Deposit, MoneyDeposited, OpenAccount
from eventcore_lab.integration import (
    CommandInbox,
    Delivery,
    EventInbox,
    IntegrationMessage,
    MessageHandled,
    inbox_stream,
)
from eventcore_lab.projections.checkpoints import MemoryCheckpoints

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def msg(stream: str, version: int, amount: int = 1, event_type: str = "Paid") -> IntegrationMessage:
    return IntegrationMessage(
        message_id=str(uuid.uuid4()),
        event_type=event_type,
        service_id="payments",
        stream_id=stream,
        version=version,
        position=version,
        payload={"amount": amount},
        correlation_id="corr-1",
        occurred_at=NOW,
        published_at=NOW,
    )


def deliveries(messages: Sequence[IntegrationMessage], first: int = 1) -> list[Delivery]:
    return [Delivery(first + i, m) for i, m in enumerate(messages)]


def mirror(message: IntegrationMessage) -> list[EventToWrite]:
    if message.payload["amount"] < 0:
        raise ValidationFailed(f"negative amount in {message.message_id}")
    if message.payload["amount"] == 999:
        return [EventToWrite("  ", MoneyDeposited(amount=999))]  # an invalid stream id: the store refuses it
    return [EventToWrite(f"copy-{message.stream_id}", MoneyDeposited(amount=message.version))]


def copies(store: MemoryStore, stream: str) -> list[int]:
    return [e.payload.amount for e in store.read_stream(f"copy-{stream}")]


def test_a_batch_is_applied_once_with_its_inbox_records_and_copies_are_skipped() -> None:
    store = MemoryStore()
    inbox = EventInbox(store, "billing", mirror)
    batch = [msg("a", 1), msg("b", 1), msg("a", 2), msg("a", 3)]
    result = inbox.handle(deliveries(batch))
    assert (result.applied, result.duplicates, result.position) == (4, 0, 4)
    assert copies(store, "a") == [1, 2, 3] and copies(store, "b") == [1]
    records = store.read_stream(inbox_stream("billing", batch[0]))
    assert [r.payload.message_id for r in records] == [m.message_id for m in batch if m.stream_id == "a"]
    copy = store.read_stream("copy-a")[0]
    assert (copy.metadata.correlation_id, copy.metadata.causation_id) == ("corr-1", batch[0].message_id)
    # The relay republished a and b after a crash: new broker sequences, same source versions.
    again = inbox.handle(deliveries([msg("a", 2), msg("a", 3), msg("b", 1), msg("a", 4)], first=5))
    assert (again.applied, again.duplicates) == (1, 3)
    assert copies(store, "a") == [1, 2, 3, 4]


def test_deliveries_at_or_before_the_cursor_are_not_even_looked_at() -> None:
    store = MemoryStore()
    checkpoints = MemoryCheckpoints()
    EventInbox(store, "billing", mirror, checkpoints=checkpoints).handle(
        deliveries([msg("a", 1), msg("a", 2)])
    )
    restarted = EventInbox(store, "billing", mirror, checkpoints=checkpoints)
    assert restarted.position == 2
    result = restarted.handle(deliveries([msg("a", 1), msg("a", 2), msg("a", 3)]))
    assert (result.applied, result.duplicates) == (1, 0)
    assert copies(store, "a") == [1, 2, 3]


def test_a_refused_message_is_recorded_as_rejected_and_the_rest_of_the_batch_applies() -> None:
    store = MemoryStore()
    inbox = EventInbox(store, "billing", mirror)
    batch = [msg("a", 1), msg("a", 2, amount=-5), msg("b", 1, amount=999), msg("b", 2)]
    result = inbox.handle(deliveries(batch))
    assert (result.applied, result.rejected, result.position) == (2, 2, 4)
    assert copies(store, "a") == [1] and copies(store, "b") == [2]
    outcomes = [
        (r.payload.version, r.payload.outcome)
        for s in ("a", "b")
        for r in store.read_stream(inbox_stream("billing", msg(s, 1)))
    ]
    assert outcomes == [(1, "applied"), (2, "rejected"), (1, "rejected"), (2, "applied")]
    reasons = [r.payload.reason for r in store.read_stream(inbox_stream("billing", msg("a", 1)))]
    assert reasons[1] is not None and "negative amount" in reasons[1]
    assert store.head() == 2 + 4  # two copies and four inbox records: nothing of the refused write


def test_two_consumers_racing_on_one_inbox_apply_each_message_once() -> None:
    store = MemoryStore()
    left = EventInbox(store, "billing", mirror, checkpoints=MemoryCheckpoints())
    right = EventInbox(store, "billing", mirror, checkpoints=MemoryCheckpoints())
    first, second = msg("a", 1), msg("a", 2)
    left.handle(deliveries([first]))
    right.handle(deliveries([first]))  # right now caches version 1 of the inbox stream
    left.handle(deliveries([second], first=2))
    result = right.handle(deliveries([second], first=2))  # stale cache -> conflict -> re-read -> a copy
    assert (result.applied, result.duplicates) == (0, 1)
    assert copies(store, "a") == [1, 2]


def test_inbox_names_are_checked_and_long_stream_ids_are_shortened() -> None:
    with pytest.raises(ValueError, match="inbox name"):
        EventInbox(MemoryStore(), "has space", mirror)
    long = msg("s" * 250, 1)
    sid = inbox_stream("billing", long)
    assert len(sid) <= 255 and sid != inbox_stream("billing", msg("s" * 251, 1))


def deposit_for(message: IntegrationMessage) -> Deposit | None:
    if message.event_type == "Ignored":
        return None
    return Deposit("acct-1", message.payload["amount"], reference=message.message_id)


def test_command_inbox_runs_each_message_as_a_command_exactly_once() -> None:
    store = MemoryStore()
    executor = Executor(store)
    executor.execute(OpenAccount("acct-1", "Ann"))
    inbox = CommandInbox(executor, "ledger", deposit_for)
    batch = [msg("p-1", 1, 10), msg("p-1", 2, -3), msg("p-1", 3, 5, "Ignored"), msg("p-2", 1, 7)]
    result = inbox.handle(deliveries(batch))
    assert (result.applied, result.rejected, result.duplicates) == (3, 1, 0)
    assert [e.payload.amount for e in store.read_stream("acct-1")[1:]] == [10, 7]
    again = CommandInbox(executor, "ledger", deposit_for, checkpoints=MemoryCheckpoints())
    redelivered = again.handle(deliveries(batch))
    assert (redelivered.applied, redelivered.rejected, redelivered.duplicates) == (0, 0, 4)
    assert len(store.read_stream("acct-1")) == 3
    records = store.read_stream(inbox_stream("ledger", batch[0]))
    assert [r.payload.outcome for r in records] == ["applied", "rejected", "applied"]
    assert all(isinstance(r.payload, MessageHandled) for r in records)
    assert isinstance(store.read_stream("acct-1")[0].payload, AccountOpened)


def test_a_lagging_cursor_only_makes_a_restarted_inbox_skip_copies() -> None:
    store = MemoryStore()
    checkpoints = MemoryCheckpoints()
    inbox = EventInbox(store, "billing", mirror, checkpoints=checkpoints, cursor_interval=3600)
    inbox.handle(deliveries([msg("a", 1)]))  # the first advance saves
    inbox.handle(deliveries([msg("a", 2), msg("a", 3)], first=2))  # within the interval: not saved yet
    assert (inbox.position, checkpoints.load("inbox_billing")) == (3, 1)
    crashed_and_restarted = EventInbox(store, "billing", mirror, checkpoints=checkpoints)
    result = crashed_and_restarted.handle(deliveries([msg("a", 2), msg("a", 3), msg("a", 4)], first=2))
    assert (result.applied, result.duplicates) == (1, 2)
    assert copies(store, "a") == [1, 2, 3, 4]
    inbox.flush()
    assert checkpoints.load("inbox_billing") == 3
