"""The outbox relay: publish a store's events to a broker, never losing its place.

The event log *is* the outbox: a command appends its events as usual (one atomic write, no broker in the
way), and the relay tails the log from its checkpoint, routes each event, publishes the batch and only
then saves the checkpoint. A crash or a broker outage means some messages are published again; the
message id (the event id) lets the broker and the consumers' inboxes drop those copies, so the effect is
exactly once. Publishing goes through a circuit breaker: while the broker is down the relay waits for
the circuit to let a probe through instead of hammering it, and resumes from the first unconfirmed event.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..core.errors import InvalidFormat
from ..core.events import StoredEvent
from ..projections.checkpoints import CheckpointStore, checkpoints_for
from .breaker import CircuitBreaker
from .broker import Outgoing, Publisher
from .contracts import ContractCatalog
from .errors import CircuitOpen, IntegrationError, PublishFailed
from .messages import message_from_event
from .routing import Router


@dataclass(frozen=True, slots=True)
class RelayStep:
    """What one :meth:`OutboxRelay.step` did."""

    read: int
    published: int
    position: int
    error: IntegrationError | None = None
    wait: float = 0.0


class OutboxRelay:
    """Tails ``store`` from its checkpoint and publishes routed events through ``publisher``.

    ``include`` filters source events (default: all); ``router`` picks targets and transformations;
    ``catalog`` stamps each message with its contract's schema version. The checkpoint ``name`` lives in
    ``checkpoints`` (default: the store's own checkpoint table).
    """

    def __init__(
        self,
        store: Any,
        publisher: Publisher,
        router: Router,
        *,
        service_id: str,
        name: str | None = None,
        include: Callable[[StoredEvent], bool] | None = None,
        catalog: ContractCatalog | None = None,
        checkpoints: CheckpointStore | None = None,
        breaker: CircuitBreaker | None = None,
        batch_size: int = 500,
    ) -> None:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidFormat(f"batch_size must be an int >= 1, got {batch_size!r}")
        if not service_id or not isinstance(service_id, str):
            raise InvalidFormat(f"service_id must be a non-empty string, got {service_id!r}")
        self.store = store
        self.publisher = publisher
        self.router = router
        self.service_id = service_id
        self.name = name or f"relay_{service_id}"
        self.include = include
        self.catalog = catalog
        self.checkpoints = checkpoints if checkpoints is not None else checkpoints_for(store)
        self.breaker = breaker or CircuitBreaker(
            f"{self.name}-broker", failure_threshold=3, retry_timeout=1.0
        )
        self.batch_size = batch_size
        self.position = self.checkpoints.load(self.name)
        self.published = 0
        self._stop = threading.Event()

    def _outgoing(self, events: list[StoredEvent]) -> tuple[list[Outgoing], list[int]]:
        """The messages of ``events`` and, per message, the index of its event."""
        outgoing: list[Outgoing] = []
        owners: list[int] = []
        for index, event in enumerate(events):
            if self.include is not None and not self.include(event):
                continue
            version = self.catalog.version_of(event.event_type) if self.catalog is not None else 1
            message = message_from_event(
                event, self.service_id, registry=self.store.registry, schema_version=version
            )
            for target, routed in self.router.route(message):
                outgoing.append(Outgoing(target, routed))
                owners.append(index)
        return outgoing, owners

    def step(self, *, wait: float = 0.0) -> RelayStep:
        """Publish the next batch (waiting at most ``wait`` s for events); save the checkpoint after."""
        events = self.store.read_all(after=self.position, limit=self.batch_size)
        if not events and wait > 0 and self.store.wait_for_events(self.position, wait):
            events = self.store.read_all(after=self.position, limit=self.batch_size)
        if not events:
            return RelayStep(0, 0, self.position)
        outgoing, owners = self._outgoing(events)
        try:
            self.breaker.call(self.publisher.publish, outgoing)
        except CircuitOpen as exc:
            return RelayStep(len(events), 0, self.position, exc, exc.retry_in)
        except PublishFailed as exc:
            # Keep the events whose every message was confirmed: the first unconfirmed one bounds them.
            first_unconfirmed = owners[exc.confirmed] if exc.confirmed < len(owners) else len(events)
            self._advance(events[:first_unconfirmed], exc.confirmed)
            return RelayStep(len(events), exc.confirmed, self.position, exc, self.breaker.retry_in())
        except IntegrationError as exc:
            return RelayStep(len(events), 0, self.position, exc, self.breaker.retry_in())
        self._advance(events, len(outgoing))
        return RelayStep(len(events), len(outgoing), self.position)

    def _advance(self, done: list[StoredEvent], published: int) -> None:
        self.published += published
        if done:
            self.position = done[-1].position
            self.checkpoints.save(self.name, self.position)

    def run(self, *, poll: float = 0.5, until: Callable[[], bool] | None = None) -> None:
        """Relay until :meth:`stop` (or ``until()``), backing off while the circuit is open."""
        self._stop.clear()
        while not self._stop.is_set() and not (until is not None and until()):
            result = self.step(wait=poll)
            if result.error is not None:
                self._stop.wait(max(result.wait, 0.05))

    def start(self, *, poll: float = 0.5) -> threading.Thread:
        """Run in a daemon thread (for notebooks and services); stop with :meth:`stop`."""
        thread = threading.Thread(target=self.run, kwargs={"poll": poll}, name=self.name, daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()

    def lag(self) -> int:
        """Events committed but not yet relayed."""
        return int(self.store.head()) - self.position

    def drain(self, *, timeout: float = 30.0) -> bool:
        """Relay until caught up with the store's head or ``timeout`` passes; True when caught up."""
        deadline = time.monotonic() + timeout
        while self.position < self.store.head():
            if time.monotonic() > deadline:
                return False
            result = self.step()
            if result.error is not None:
                time.sleep(min(max(result.wait, 0.05), max(0.0, deadline - time.monotonic())))
        return True
