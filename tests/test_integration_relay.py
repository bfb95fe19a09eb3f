"""The relay's bookkeeping, through a publisher of our own (the Publisher protocol is the seam)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pytest

from eventcore_lab import MemoryStore
from eventcore_lab.core.errors import InvalidFormat
from eventcore_lab.core.events import EventToWrite
from eventcore_lab.examples.banking import MoneyDeposited, MoneyWithdrawn
from eventcore_lab.integration import (
    CircuitBreaker,
    CircuitOpen,
    ContractCatalog,
    OutboxRelay,
    Outgoing,
    Publisher,
    PublishFailed,
    Router,
    RoutingRule,
)
from eventcore_lab.projections.checkpoints import MemoryCheckpoints


class RecordingPublisher:
    """Confirms everything, or only the first ``confirm_only`` messages of the next call."""

    def __init__(self) -> None:
        self.stored: list[Outgoing] = []
        self.confirm_only: int | None = None

    def ensure_targets(self, targets: Iterable[str]) -> None:
        pass

    def publish(self, messages: Sequence[Outgoing]) -> None:
        limit, self.confirm_only = self.confirm_only, None
        if limit is not None and limit < len(messages):
            self.stored.extend(messages[:limit])
            raise PublishFailed(f"only {limit} confirmed", confirmed=limit)
        self.stored.extend(messages)

    def close(self) -> None:
        pass


def fill(store: MemoryStore) -> None:
    store.append([EventToWrite("acct-1", MoneyDeposited(amount=5))])
    store.append([EventToWrite("acct-2", MoneyWithdrawn(amount=2))])
    store.append([EventToWrite("acct-1", MoneyWithdrawn(amount=1))])
    store.append([EventToWrite("acct-3", MoneyDeposited(amount=9))])


def test_recording_publisher_is_a_publisher() -> None:
    assert isinstance(RecordingPublisher(), Publisher)


def test_fan_out_partial_confirmation_keeps_the_checkpoint_at_the_last_fully_confirmed_event() -> None:
    store = MemoryStore()
    fill(store)
    publisher = RecordingPublisher()
    router = Router([RoutingRule("bank", "*", ("ledger", "audit"))])  # two messages per event
    relay = OutboxRelay(store, publisher, router, service_id="bank", checkpoints=MemoryCheckpoints())
    publisher.confirm_only = 3  # both of event 1, the first of event 2
    step = relay.step()
    assert isinstance(step.error, PublishFailed) and step.published == 3
    assert relay.position == 1 and relay.checkpoints.load(relay.name) == 1
    relay.step()
    assert relay.position == 4
    ids = [o.message.message_id for o in publisher.stored]
    # Event 2's first message went out twice (the broker or the inbox drops the copy); nothing is missing.
    assert len(ids) == 3 + 6 and set(ids) == {str(e.event_id) for e in store.read_all()}


def test_filtered_events_are_passed_over_and_messages_carry_the_contract_version() -> None:
    store = MemoryStore()
    fill(store)
    catalog = ContractCatalog()
    catalog.publish(MoneyDeposited, service="bank", version=1)
    catalog.publish(MoneyDeposited, service="bank", version=2)
    publisher = RecordingPublisher()
    relay = OutboxRelay(
        store,
        publisher,
        Router.to("ledger", event_pattern="Money*"),
        service_id="bank",
        include=lambda e: e.stream_id != "acct-2",
        catalog=catalog,
        checkpoints=MemoryCheckpoints(),
    )
    assert relay.drain(timeout=5)
    assert relay.position == 4 and relay.lag() == 0
    sent = [(o.message.stream_id, o.message.event_type, o.message.schema_version) for o in publisher.stored]
    assert sent == [
        ("acct-1", "MoneyDeposited", 2),
        ("acct-1", "MoneyWithdrawn", 1),
        ("acct-3", "MoneyDeposited", 2),
    ]


def test_an_open_circuit_stops_publishing_and_the_relay_keeps_its_place() -> None:
    store = MemoryStore()
    fill(store)
    publisher = RecordingPublisher()
    clock = [0.0]
    breaker = CircuitBreaker("b", failure_threshold=1, retry_timeout=10, clock=lambda: clock[0])
    relay = OutboxRelay(
        store,
        publisher,
        Router.to("ledger"),
        service_id="bank",
        breaker=breaker,
        checkpoints=MemoryCheckpoints(),
    )
    publisher.confirm_only = 0
    assert isinstance(relay.step().error, PublishFailed)
    refused = relay.step()
    assert isinstance(refused.error, CircuitOpen) and refused.wait == pytest.approx(10)
    assert relay.position == 0 and len(publisher.stored) == 0
    clock[0] = 10.0
    assert relay.step().error is None and relay.position == 4


def test_bad_relay_settings_are_refused() -> None:
    with pytest.raises(InvalidFormat, match="batch_size"):
        OutboxRelay(MemoryStore(), RecordingPublisher(), Router.to("x"), service_id="s", batch_size=0)
    with pytest.raises(InvalidFormat, match="service_id"):
        OutboxRelay(MemoryStore(), RecordingPublisher(), Router.to("x"), service_id="")
