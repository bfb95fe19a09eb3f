"""Events between services through NATS JetStream: relay throughput and end-to-end latency.

``python -m benchmarks.broker [--events N] [--rate R] [--seconds S]`` (needs PostgreSQL, found as the
other benchmarks find it, and NATS at ``$EVENTCORE_NATS_URL`` or 127.0.0.1:4222). Two measurements,
each beside a bare baseline run back to back on the same server:

- **relay throughput**: ``OutboxRelay`` publishing ``N`` stored PostgreSQL events (read in batches of
  500, enveloped, routed, published with their ids, every ack awaited, checkpoint saved), against bare
  ``publish_async`` of ``N`` pre-encoded messages of the same size with the same message-id header.
- **end-to-end latency** at ``R`` events/s offered load for ``S`` seconds: 20 writer threads append one
  event per append to PostgreSQL, paced to ``R`` in total; a relay thread publishes; an ``EventInbox``
  thread applies each message to a DuckDB store (copy + inbox record, one append per fetched batch).
  Latency = time after the consumer's append minus the event's ``recorded_at``. Baseline: a bare
  JetStream publish -> pull-consumer fetch at the same rate, timed from before the publish to after the
  fetch.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eventcore_lab.core.events import EventToWrite
from eventcore_lab.examples.banking import MoneyDeposited
from eventcore_lab.integration import EventInbox, IntegrationMessage, OutboxRelay, Router
from eventcore_lab.integration.jetstream import JetStreamBroker
from eventcore_lab.stores.duckdb import DuckDBStore
from eventcore_lab.stores.postgres import PostgresStore

from .environment import describe_machine, find_postgres

NATS_URL = os.environ.get("EVENTCORE_NATS_URL", "nats://127.0.0.1:4222")
WRITERS = 20


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"p50": pick(0.50), "p95": pick(0.95), "p99": pick(0.99), "max": ordered[-1]}


def mirror(message: IntegrationMessage) -> list[EventToWrite]:
    return [EventToWrite(f"copy-{message.stream_id}", MoneyDeposited(amount=message.version))]


def drop_schema(dsn: str, schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def relay_throughput(dsn: str, events: int) -> dict[str, Any]:
    schema = f"ecbench_{uuid.uuid4().hex[:10]}"
    namespace = f"ecbench{uuid.uuid4().hex[:10]}"
    try:
        with (
            PostgresStore(dsn, schema=schema, pool_max=2) as store,
            JetStreamBroker(NATS_URL, namespace=namespace) as broker,
        ):
            for first in range(0, events, 1000):
                store.append(
                    [
                        EventToWrite(f"acct-{i % 100}", MoneyDeposited(amount=i))
                        for i in range(first, min(first + 1000, events))
                    ]
                )
            broker.ensure_targets(["ours", "bare"])
            relay = OutboxRelay(store, broker, Router.to("ours"), service_id="bank", batch_size=500)
            started = time.perf_counter()
            assert relay.drain(timeout=600)
            ours = time.perf_counter() - started
            sample = broker._loop.run(_bare_publish(broker, events), timeout=600)
            broker.delete_targets(["ours", "bare"])
    finally:
        drop_schema(dsn, schema)
    return {
        "events": events,
        "relay_events_per_s": events / ours,
        "bare_publish_per_s": events / sample,
        "ratio": (events / ours) / (events / sample),
    }


async def _bare_publish(broker: JetStreamBroker, events: int) -> float:
    js = await broker._connection()
    body = b"x" * 420  # about the size of one enveloped MoneyDeposited message
    started = time.perf_counter()
    for first in range(0, events, 500):
        futures = [
            await js.publish_async(
                f"{broker.namespace}.bare.x", body, headers={"Nats-Msg-Id": uuid.uuid4().hex}
            )
            for _ in range(first, min(first + 500, events))
        ]
        await asyncio.gather(*futures)
    return time.perf_counter() - started


def end_to_end(dsn: str, rate: float, seconds: float) -> dict[str, Any]:
    schema = f"ecbench_{uuid.uuid4().hex[:10]}"
    namespace = f"ecbench{uuid.uuid4().hex[:10]}"
    latencies: list[float] = []
    total = int(rate * seconds)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            with (
                PostgresStore(dsn, schema=schema, pool_max=WRITERS + 2) as source,
                JetStreamBroker(NATS_URL, namespace=namespace) as broker,
                DuckDBStore(Path(tmp) / "consumer.duckdb") as target,
            ):
                broker.ensure_targets(["ledger"])
                relay = OutboxRelay(source, broker, Router.to("ledger"), service_id="bank", batch_size=500)
                relay_thread = relay.start(poll=0.5)
                inbox = EventInbox(target, "bank", mirror, cursor_interval=0.25)
                reader = broker.open_source("ledger")
                done = threading.Event()

                def consume() -> None:
                    while len(latencies) < total and not done.is_set():
                        deliveries = reader.fetch(500, 0.5)
                        if deliveries:
                            inbox.handle(deliveries)
                            now = datetime.now(UTC)
                            latencies.extend(
                                (now - d.message.occurred_at).total_seconds() for d in deliveries
                            )

                consumer = threading.Thread(target=consume)
                consumer.start()
                # Several writers, like several clients of the service: one append per event each.
                started = time.perf_counter()

                def write(offset: int) -> None:
                    for i in range(offset, total, WRITERS):
                        delay = started + i / rate - time.perf_counter()
                        if delay > 0:
                            time.sleep(delay)
                        source.append([EventToWrite(f"acct-{i % 100}", MoneyDeposited(amount=i))])

                writers = [threading.Thread(target=write, args=(w,)) for w in range(WRITERS)]
                for writer in writers:
                    writer.start()
                for writer in writers:
                    writer.join()
                offered = total / (time.perf_counter() - started)
                consumer.join(60)
                done.set()
                relay.stop()
                relay_thread.join(10)
                reader.close()
                bare = broker._loop.run(_bare_round_trip(broker, rate, total), timeout=600)
                broker.delete_targets(["ledger", "rtt"])
        finally:
            drop_schema(dsn, schema)
    ours = percentiles(latencies)
    base = percentiles(bare)
    return {
        "offered_per_s": offered,
        "events": len(latencies),
        "ours_ms": {k: v * 1000 for k, v in ours.items()},
        "bare_ms": {k: v * 1000 for k, v in base.items()},
        "p50_ratio": ours["p50"] / base["p50"],
        "p99_ratio": ours["p99"] / base["p99"],
    }


async def _bare_round_trip(broker: JetStreamBroker, rate: float, total: int) -> list[float]:
    from nats.js.api import AckPolicy, ConsumerConfig

    js = await broker._connection()
    await broker._ensure(["rtt"])
    sub = await js.pull_subscribe(
        f"{broker.namespace}.rtt.>",
        durable=None,
        stream=broker.stream_name("rtt"),
        config=ConsumerConfig(ack_policy=AckPolicy.NONE),
    )
    sent: dict[bytes, float] = {}
    out: list[float] = []

    async def receive() -> None:
        while len(out) < total:
            try:
                for msg in await sub.fetch(500, timeout=0.5):
                    out.append(time.perf_counter() - sent[msg.data])
            except Exception:  # nats' fetch timeout when nothing came
                continue

    receiver = asyncio.create_task(receive())
    started = time.perf_counter()
    for i in range(total):
        delay = started + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        key = b"%d" % i
        sent[key] = time.perf_counter()
        await js.publish(f"{broker.namespace}.rtt.x", key, headers={"Nats-Msg-Id": uuid.uuid4().hex})
    await asyncio.wait_for(receiver, 60)
    await sub.unsubscribe()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="events for the throughput run")
    parser.add_argument("--rate", type=float, default=1000.0, help="offered load, events/s")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the latency run")
    args = parser.parse_args()
    dsn, _how = find_postgres(Path(__file__).resolve().parent.parent)
    if dsn is None:
        raise SystemExit("PostgreSQL is needed (see benchmarks/README.md)")
    machine = describe_machine()
    throughput = relay_throughput(dsn, args.events)
    latency = end_to_end(dsn, args.rate, args.seconds)
    print(
        json.dumps({"machine": machine, "throughput": throughput, "latency": latency}, indent=2, default=str)
    )
    print()
    print(
        f"relay: {throughput['relay_events_per_s']:,.0f} events/s; "
        f"bare publish {throughput['bare_publish_per_s']:,.0f}/s; ratio {throughput['ratio']:.2f}"
    )
    o, b = latency["ours_ms"], latency["bare_ms"]
    print(
        f"end to end at {latency['offered_per_s']:,.0f}/s offered ({latency['events']} events): "
        f"p50 {o['p50']:.1f} ms, p95 {o['p95']:.1f} ms, p99 {o['p99']:.1f} ms (bare JetStream "
        f"p50 {b['p50']:.2f}, p95 {b['p95']:.2f}, p99 {b['p99']:.2f} ms)"
    )


if __name__ == "__main__":
    main()
