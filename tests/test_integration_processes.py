"""Must-show: PostgreSQL -> relay process -> NATS JetStream -> consumer process -> DuckDB, with SIGKILLs.

The relay and the consumer each run in their own process and are each killed with SIGKILL twice while
the source service keeps writing. At the end every source event was applied exactly once, in per-stream
order, in the consumer's DuckDB store.

Size: ``EVENTCORE_RELAY_EVENTS`` events (default 4,000 in the suite). The full-size run is
``EVENTCORE_RELAY_EVENTS=100000 pytest tests/test_integration_processes.py``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from eventcore_lab.core.events import EventToWrite
from eventcore_lab.examples.banking import MoneyDeposited
from eventcore_lab.integration import IntegrationMessage, inbox_stream
from eventcore_lab.integration.jetstream import JetStreamBroker
from eventcore_lab.stores.duckdb import DuckDBStore
from eventcore_lab.stores.postgres import PostgresStore

EVENTS = int(os.environ.get("EVENTCORE_RELAY_EVENTS", "4000"))
STREAMS = 40

RELAY = """
import sys, time
from eventcore_lab.integration import OutboxRelay, Router
from eventcore_lab.integration.jetstream import JetStreamBroker
from eventcore_lab.stores.postgres import PostgresStore
import eventcore_lab.examples.banking  # registers the event classes

dsn, schema, url, namespace = sys.argv[1:5]
store = PostgresStore(dsn, schema=schema, pool_max=2)
with JetStreamBroker(url, namespace=namespace) as broker:
    relay = OutboxRelay(store, broker, Router.to("ledger"), service_id="bank", batch_size=500)
    print("start", relay.position, flush=True)
    while True:
        step = relay.step(wait=0.2)
        if step.published:
            print("at", relay.position, flush=True)
        if step.error is not None:
            time.sleep(max(step.wait, 0.05))
"""

CONSUMER = """
import os, sys, time
from eventcore_lab.core.events import EventToWrite
from eventcore_lab.examples.banking import MoneyDeposited
from eventcore_lab.integration import EventInbox, InboxConsumer, InboxResult
from eventcore_lab.integration.jetstream import JetStreamBroker
from eventcore_lab.stores.duckdb import DuckDBStore

path, url, namespace, stop_file = sys.argv[1:5]

def mirror(message):
    copy = MoneyDeposited(amount=message.version, reference=message.message_id)
    return [EventToWrite("copy-" + message.stream_id, copy)]

store = DuckDBStore(path)
with JetStreamBroker(url, namespace=namespace) as broker:
    inbox = EventInbox(store, "bank", mirror, cursor_interval=0.25)  # a lagging cursor, on purpose
    consumer = InboxConsumer(lambda after: broker.open_source("ledger", after=after), inbox, batch_size=500)
    print("start", inbox.position, flush=True)
    while not os.path.exists(stop_file):
        outcome = consumer.step(wait=0.2)
        if isinstance(outcome, InboxResult) and (outcome.applied or outcome.duplicates):
            print("at", outcome.position, outcome.applied, outcome.duplicates, flush=True)
        elif not isinstance(outcome, InboxResult):
            time.sleep(0.05)
    consumer.close()
store.close()
print("stopped", flush=True)
"""


class Worker:
    """A child process whose ``at N`` lines tell its progress."""

    def __init__(self, code: str, *args: object) -> None:
        self.code, self.args = code, [str(a) for a in args]
        self.position = 0
        self.kills = 0
        self.killed_at: list[int] = []
        self.starts: list[int] = []
        self.duplicates = 0
        self.errors: list[str] = []
        self._proc: subprocess.Popen[str] | None = None
        self.start()

    def start(self) -> None:
        proc = subprocess.Popen(
            [sys.executable, "-c", self.code, *self.args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._proc = proc
        threading.Thread(target=self._read, args=(proc,), daemon=True).start()
        threading.Thread(target=self._collect_errors, args=(proc,), daemon=True).start()

    def _collect_errors(self, proc: subprocess.Popen[str]) -> None:
        self.errors.append(proc.stderr.read() if proc.stderr else "")

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            parts = line.split()
            if parts[:1] == ["start"]:
                self.starts.append(int(parts[1]))
            elif parts[:1] == ["at"]:
                self.position = max(self.position, int(parts[1]))
                if len(parts) > 3:
                    self.duplicates += int(parts[3])

    def kill(self) -> None:
        assert self._proc is not None and self._proc.poll() is None, f"worker died early: {self.errors}"
        os.kill(self._proc.pid, signal.SIGKILL)
        self._proc.wait(10)
        self.kills += 1
        self.killed_at.append(self.position)
        self.start()

    def wait(self, timeout: float) -> int:
        assert self._proc is not None
        return self._proc.wait(timeout)

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(10)

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None


@pytest.fixture
def namespace(nats_url: str) -> Iterator[str]:
    name = f"ectest{uuid.uuid4().hex[:12]}"
    yield name
    with JetStreamBroker(nats_url, namespace=name) as cleanup:
        cleanup.delete_targets(["ledger"])


@pytest.fixture(scope="module")
def nats_url() -> str:
    import socket

    url = os.environ.get("EVENTCORE_NATS_URL", "nats://127.0.0.1:4222")
    parsed = urlparse(url)
    try:
        socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 4222), timeout=2).close()
    except OSError as exc:
        pytest.fail(
            f"NATS is not reachable at {url} ({exc}): this test needs a real NATS server with JetStream"
        )
    return url


def write_deposits(store: PostgresStore, start: int, count: int, pause: float = 0.0, size: int = 500) -> None:
    for first in range(start, start + count, size):
        batch = [
            EventToWrite(f"acct-{i % STREAMS}", MoneyDeposited(amount=i))
            for i in range(first, min(first + size, start + count))
        ]
        store.append(batch)
        if pause:
            time.sleep(pause)


def until(condition: object, timeout: float, what: str, *workers: Worker) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        for worker in workers:
            assert worker.alive(), f"a worker exited: {worker.errors}"
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def test_relay_and_consumer_processes_killed_twice_each_apply_every_event_exactly_once_in_order(
    pg_url: str, pg_schema: str, nats_url: str, namespace: str, tmp_path: Path
) -> None:
    path = tmp_path / "consumer.duckdb"
    stop_file = tmp_path / "stop"
    budget = 120 + EVENTS / 100  # generous: the machine is shared
    with PostgresStore(pg_url, schema=pg_schema, pool_max=2) as source:
        write_deposits(source, 0, EVENTS // 2)
        relay = Worker(RELAY, pg_url, pg_schema, nats_url, namespace)
        consumer = Worker(CONSUMER, path, nats_url, namespace, stop_file)
        writer = threading.Thread(
            target=write_deposits, args=(source, EVENTS // 2, EVENTS - EVENTS // 2, 0.1, 100), daemon=True
        )
        writer.start()
        try:
            for share in (0.2, 0.5):
                until(
                    lambda share=share: relay.position >= EVENTS * share,
                    budget,
                    f"relay at {share:.0%}",
                    relay,
                    consumer,
                )
                relay.kill()
            for share in (0.3, 0.6):
                until(
                    lambda share=share: consumer.position >= EVENTS * share,
                    budget,
                    f"consumer at {share:.0%}",
                    relay,
                    consumer,
                )
                consumer.kill()
            writer.join(budget)
            until(
                lambda: source.checkpoint_load("relay_bank") == EVENTS,
                budget,
                "the relay to finish",
                relay,
                consumer,
            )
            until(lambda: consumer.position >= EVENTS, budget, "the consumer to finish", relay, consumer)
            stop_file.touch()
            assert consumer.wait(60) == 0, consumer.errors
        finally:
            relay.stop()
            consumer.stop()
        assert (relay.kills, consumer.kills) == (2, 2)
        print(
            f"kills at relay positions {relay.killed_at}, consumer sequences {consumer.killed_at}; "
            f"copies skipped by the inbox: {consumer.duplicates}"
        )
        assert max(relay.killed_at + consumer.killed_at) < EVENTS  # every kill interrupted unfinished work
        assert len(relay.starts) == len(consumer.starts) == 3
        assert relay.starts[1] > 0 and consumer.starts[1] > 0  # restarts resumed from their checkpoints
        assert source.head() == EVENTS
        originals = {s: source.read_stream(f"acct-{s}") for s in range(STREAMS)}
    with JetStreamBroker(nats_url, namespace=namespace) as check:
        assert check.last_sequence("ledger") == EVENTS  # republished copies were dropped by message id
    with DuckDBStore(path) as target:
        for s, events in originals.items():
            copies = target.read_stream(f"copy-acct-{s}")
            assert [c.payload.amount for c in copies] == [e.version for e in events], f"order of acct-{s}"
            assert [c.payload.reference for c in copies] == [str(e.event_id) for e in events]
            handled = target.read_stream(inbox_stream("bank", _message_of(f"acct-{s}")))
            assert [h.payload.version for h in handled] == [e.version for e in events]
        assert target.head() == 2 * EVENTS  # one copy and one inbox record per event, nothing else


def _message_of(stream_id: str) -> IntegrationMessage:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    return IntegrationMessage(
        message_id="-",
        event_type="-",
        service_id="bank",
        stream_id=stream_id,
        version=0,
        position=0,
        payload={},
        occurred_at=now,
        published_at=now,
    )
