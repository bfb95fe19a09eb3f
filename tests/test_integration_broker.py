"""The relay, inboxes and circuit breaker against the real NATS JetStream server of the machine.

Every test uses its own namespace (JetStream streams ``<namespace>_<target>``) and deletes what it
created. Outages go through a loopback TCP proxy the test controls; the machine's broker is never
stopped. Without a reachable NATS server these tests fail and say so: they never pass by skipping.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from urllib.parse import urlparse

import pytest

from eventcore_lab import MemoryStore
from eventcore_lab.core.events import EventToWrite
from eventcore_lab.core.executor import Executor
from eventcore_lab.core.retry import RetryConfig
from eventcore_lab.examples.banking import Deposit, MoneyDeposited, OpenAccount
from eventcore_lab.integration import (
    BrokerUnavailable,
    CircuitBreaker,
    CircuitState,
    EventInbox,
    InboxConsumer,
    IntegrationMessage,
    OutboxRelay,
    PublishFailed,
    Router,
    TcpProxy,
)
from eventcore_lab.integration.jetstream import JetStreamBroker
from eventcore_lab.projections.checkpoints import MemoryCheckpoints
from eventcore_lab.stores.postgres import PostgresStore

NATS_ENV = "EVENTCORE_NATS_URL"


@pytest.fixture(scope="session")
def nats_url() -> str:
    url = os.environ.get(NATS_ENV, "nats://127.0.0.1:4222")
    parsed = urlparse(url)
    try:
        socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 4222), timeout=2).close()
    except OSError as exc:
        pytest.fail(
            f"NATS is not reachable at {url} ({exc}): the broker tests need a real NATS server with "
            f"JetStream (nats-server -js), or set {NATS_ENV} to one"
        )
    return url


@pytest.fixture
def namespace() -> str:
    return f"ectest{uuid.uuid4().hex[:12]}"


@pytest.fixture
def broker(nats_url: str, namespace: str) -> Iterator[JetStreamBroker]:
    created: set[str] = set()
    with JetStreamBroker(nats_url, namespace=namespace, ack_timeout=2.0) as direct:
        original = direct.ensure_targets

        def remember(targets: object) -> None:
            names = list(targets)  # type: ignore[call-overload]
            created.update(names)
            original(names)

        direct.ensure_targets = remember  # type: ignore[method-assign]
        yield direct
        direct.delete_targets(sorted(created))


def copy_handler(message: IntegrationMessage) -> list[EventToWrite]:
    """The consuming service mirrors each deposit; ``amount`` holds the source version to check order."""
    return [
        EventToWrite(
            f"copy-{message.stream_id}", MoneyDeposited(amount=message.version, reference=message.message_id)
        )
    ]


def deposit_events(store: object, count: int, streams: int, start: int = 0) -> None:
    batch = [
        EventToWrite(f"acct-{i % streams}", MoneyDeposited(amount=i)) for i in range(start, start + count)
    ]
    for i in range(0, len(batch), 500):
        store.append(batch[i : i + 500])  # type: ignore[attr-defined]


def assert_mirrored_exactly_once_in_order(source: object, target: object, streams: int) -> None:
    for s in range(streams):
        originals = source.read_stream(f"acct-{s}")  # type: ignore[attr-defined]
        copies = target.read_stream(f"copy-acct-{s}")  # type: ignore[attr-defined]
        assert [c.payload.amount for c in copies] == [e.version for e in originals], f"acct-{s}"
        assert [c.payload.reference for c in copies] == [str(e.event_id) for e in originals]


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def test_each_event_is_published_with_its_id_in_stream_order_and_the_broker_drops_republished_copies(
    broker: JetStreamBroker,
) -> None:
    source = MemoryStore()
    deposit_events(source, 300, streams=3)
    relay = OutboxRelay(source, broker, Router.to("ledger"), service_id="bank", batch_size=64)
    assert relay.drain(timeout=30)
    assert relay.checkpoints.load(relay.name) == source.head() == 300
    reader = broker.open_source("ledger")
    seen = []
    while len(seen) < 300:
        got = reader.fetch(100, 2.0)
        assert got, "the broker stopped delivering before all 300 messages"
        seen.extend(got)
    reader.close()
    assert [d.sequence for d in seen] == list(range(1, 301))
    assert [d.message.message_id for d in seen] == [str(e.event_id) for e in source.read_all()]
    # A relay that lost its checkpoint publishes everything again: JetStream drops the copies by id.
    again = OutboxRelay(
        source, broker, Router.to("ledger"), service_id="bank", checkpoints=MemoryCheckpoints()
    )
    assert again.drain(timeout=30)
    assert broker.last_sequence("ledger") == 300


def test_the_checkpoint_moves_only_after_the_broker_confirmed(nats_url: str, namespace: str) -> None:
    upstream = urlparse(nats_url)
    source = MemoryStore()
    deposit_events(source, 50, streams=2)
    with (
        TcpProxy((upstream.hostname or "127.0.0.1", upstream.port or 4222)) as proxy,
        JetStreamBroker(
            f"nats://{proxy.url}", namespace=namespace, ack_timeout=0.5, connect_timeout=0.5
        ) as b,
    ):
        proxy.cut()  # before the first connection: the relay fails, counts it, and keeps position 0
        breaker = CircuitBreaker("never-connected", failure_threshold=2, retry_timeout=0.05)
        relay = OutboxRelay(source, b, Router.to("ledger"), service_id="bank", batch_size=20, breaker=breaker)
        for _ in range(2):
            assert isinstance(relay.step().error, BrokerUnavailable)
        assert breaker.state is CircuitState.OPEN
        assert relay.position == 0 and relay.checkpoints.load(relay.name) == 0
        proxy.restore()
        b.ensure_targets(["ledger"])
        assert relay.drain(timeout=30) and relay.position == 50
        deposit_events(source, 50, streams=2, start=50)
        proxy.cut()  # now with a live connection that drops: confirmations never come
        step = relay.step()
        assert isinstance(step.error, PublishFailed | BrokerUnavailable)
        assert relay.position == 50 and relay.checkpoints.load(relay.name) == 50
        proxy.restore()
        assert relay.drain(timeout=30)
        assert relay.checkpoints.load(relay.name) == 100
        assert b.last_sequence("ledger") == 100
        b.delete_targets(["ledger"])


def test_broker_outage_opens_the_circuit_the_relay_catches_up_and_commands_never_wait(
    nats_url: str, namespace: str, pg_url: str, pg_schema: str, broker: JetStreamBroker
) -> None:
    upstream = urlparse(nats_url)
    transitions: list[CircuitState] = []
    breaker = CircuitBreaker(
        "relay-broker",
        failure_threshold=2,
        retry_timeout=0.3,
        on_change=lambda _old, new: transitions.append(new),
    )
    target = MemoryStore()
    with (
        PostgresStore(pg_url, schema=pg_schema, pool_max=4) as source,
        TcpProxy((upstream.hostname or "127.0.0.1", upstream.port or 4222)) as proxy,
        JetStreamBroker(
            f"nats://{proxy.url}", namespace=namespace, ack_timeout=0.5, connect_timeout=0.5
        ) as via_proxy,
    ):
        broker.ensure_targets(["ledger"])
        executor = Executor(source, retry=RetryConfig(max_attempts=50, initial_delay=0.001, max_delay=0.01))
        for a in range(5):
            executor.execute(OpenAccount(f"acct-{a}", f"owner {a}"))
        relay = OutboxRelay(
            source, via_proxy, Router.to("ledger"), service_id="bank", breaker=breaker, batch_size=50
        )
        consumer = InboxConsumer(
            lambda after: broker.open_source("ledger", after=after), EventInbox(target, "bank", copy_handler)
        )
        relay_thread = relay.start(poll=0.05)
        consumer_thread = consumer.start(wait=0.1)
        done = {"commands": 0, "during_outage": 0}
        outage = threading.Event()
        stop_writing = threading.Event()

        def write() -> None:
            i = 0
            while not stop_writing.is_set():
                executor.execute(Deposit(f"acct-{i % 5}", 1 + i % 7))
                done["commands"] += 1
                if outage.is_set():
                    done["during_outage"] += 1
                i += 1
                time.sleep(0.002)

        writer = threading.Thread(target=write)
        writer.start()
        try:
            wait_until(lambda: relay.position > 20, 30, "the relay to publish before the outage")
            proxy.cut()
            outage.set()
            wait_until(lambda: breaker.state is CircuitState.OPEN, 30, "the circuit to open")
            opened_at, calls_before = time.monotonic(), breaker.snapshot().calls
            held = relay.position
            wait_until(lambda: done["during_outage"] >= 30, 30, "commands during the outage")
            wait_until(
                lambda: breaker.snapshot().times_opened >= 3, 30, "failed probes to reopen the circuit"
            )
            assert relay.position == held == relay.checkpoints.load(relay.name)  # kept its place
            assert source.head() > held  # ... while the service went on writing
            # Backing off: while open, the broker is tried once per retry_timeout at most.
            probes = breaker.snapshot().calls - calls_before
            assert probes <= (time.monotonic() - opened_at) / breaker.retry_timeout + 1
            outage.clear()
            proxy.restore()
            time.sleep(0.2)
        finally:
            stop_writing.set()
            writer.join(30)
        wait_until(lambda: relay.position == source.head(), 60, "the relay to catch up")
        wait_until(lambda: consumer.applied == source.head(), 60, "the consumer to apply everything")
        relay.stop()
        consumer.stop()
        relay_thread.join(10)
        consumer_thread.join(10)
        consumer.close()
        assert breaker.state is CircuitState.CLOSED
        assert CircuitState.OPEN in transitions and CircuitState.HALF_OPEN in transitions
        assert broker.last_sequence("ledger") == source.head()  # nothing published twice reached the stream
        for a in range(5):
            originals = source.read_stream(f"acct-{a}")
            copies = target.read_stream(f"copy-acct-{a}")
            assert [c.payload.reference for c in copies] == [str(e.event_id) for e in originals]


def test_a_message_that_is_not_an_envelope_is_passed_over_and_reported(
    broker: JetStreamBroker, nats_url: str
) -> None:
    import asyncio

    import nats

    broker.ensure_targets(["ledger"])

    async def publish_garbage() -> None:
        client = await nats.connect(nats_url)
        await client.jetstream().publish(broker.subject("ledger", "Junk"), b"not json")
        await client.close()

    asyncio.run(publish_garbage())
    source = MemoryStore()
    deposit_events(source, 2, streams=1)
    assert OutboxRelay(source, broker, Router.to("ledger"), service_id="bank").drain(timeout=30)
    reader = broker.open_source("ledger")
    got = reader.fetch(10, 2.0)
    reader.close()
    assert [d.sequence for d in got] == [2, 3]
    assert (
        reader.invalid == [(1, reader.invalid[0][1])] and "not an integration event" in reader.invalid[0][1]
    )
    assert reader.position == 3
