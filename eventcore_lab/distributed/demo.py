"""A read model that counts its own applications, and the worker and writer processes that drive it.

It exists to check the claims of this package from the outside: every event adds one row keyed by its
position (applying an event twice shows up as ``n = 2``), and every stream remembers its last version
(applying a stream out of order shows up in ``out_of_order``). Tests and the tutorial start these as
real processes::

    python -m eventcore_lab.distributed.demo work --store-schema S --partitions 8
    python -m eventcore_lab.distributed.demo write --store-schema S --events 10000 --streams 200
    python -m eventcore_lab.distributed.demo duckdb --path events.duckdb --batch-size 20

The first two read the PostgreSQL DSN from ``EVENTCORE_DATABASE_URL``; the last applies a DuckDB store's
log to a :class:`~eventcore_lab.distributed.DuckDBReadModel` in the same file, then exits.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import threading
from typing import Any, ClassVar

from ..core.events import EventToWrite, StoredEvent
from ..core.registry import Event
from ..projections.base import handles
from ._tables import Sql, TableProjection, sql


class ScaleOutTick(Event):
    """One unit of work in a stream; ``poison`` makes :class:`ApplicationCounts` refuse it."""

    registration = "on_first_use"
    amount: int
    poison: bool = False


class ApplicationCounts(TableProjection):
    """Counts applications per position and sums amounts per stream, noticing order violations."""

    name = "application_counts"
    version = 1
    tables: ClassVar[dict[str, str]] = {
        "applications": "position BIGINT PRIMARY KEY, stream_id TEXT NOT NULL, n INT NOT NULL",
        "streams": (
            "stream_id TEXT PRIMARY KEY, events INT NOT NULL, total BIGINT NOT NULL, "
            "last_version BIGINT NOT NULL, out_of_order INT NOT NULL"
        ),
    }
    refuse_poison = True

    @handles(ScaleOutTick)
    def tick(self, event: StoredEvent) -> list[Sql]:
        if event.payload.poison and self.refuse_poison:
            raise ValueError(f"poisoned tick at position {event.position}")
        return [
            sql(
                "INSERT INTO {applications} AS a VALUES (?, ?, 1) "
                "ON CONFLICT (position) DO UPDATE SET n = a.n + 1",
                event.position,
                event.stream_id,
            ),
            sql(
                "INSERT INTO {streams} AS s VALUES (?, 1, ?, ?, CASE WHEN ? = 1 THEN 0 ELSE 1 END) "
                "ON CONFLICT (stream_id) DO UPDATE SET events = s.events + 1, "
                "total = s.total + excluded.total, "
                "out_of_order = s.out_of_order + CASE WHEN excluded.last_version = s.last_version + 1 "
                "THEN 0 ELSE 1 END, last_version = excluded.last_version",
                event.stream_id,
                event.payload.amount,
                event.version,
                event.version,
            ),
        ]


class FixedApplicationCounts(ApplicationCounts):
    """The same fold after the fix: poisoned ticks are counted like the others."""

    name = "application_counts"
    refuse_poison = False


def write(
    store: Any, *, events: int, streams: int, batch: int = 50, seed: int = 0, poison_every: int = 0
) -> int:
    """Append ``events`` ticks over ``streams`` streams in batches; return how many were written."""
    rng = random.Random(seed)
    written = 0
    while written < events:
        size = min(batch, events - written)
        writes = []
        for i in range(size):
            number = written + i + 1
            poison = bool(poison_every) and number % poison_every == 0
            amount = rng.randint(1, 100)
            writes.append(
                EventToWrite(f"tick-{rng.randrange(streams)}", ScaleOutTick(amount=amount, poison=poison))
            )
        store.append(writes)
        written += size
    return written


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eventcore_lab.distributed.demo")
    parser.add_argument("role", choices=["work", "write", "duckdb"])
    parser.add_argument("--store-schema")
    parser.add_argument("--path", help="the DuckDB file (role duckdb)")
    parser.add_argument("--schema", help="schema of the read model (default: the store's)")
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--lease-seconds", type=float, default=2.0)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--leader", action="store_true")
    parser.add_argument("--owner")
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.role == "duckdb":
        from ..stores.duckdb import DuckDBStore
        from ._duckdb import DuckDBReadModel

        with DuckDBStore(args.path) as duck:
            local = DuckDBReadModel(duck, ApplicationCounts())
            print("ready", flush=True)
            head = duck.head()
            for until in range(args.batch_size, head + args.batch_size, args.batch_size):
                local.run_until_caught_up(batch_size=args.batch_size, until=until)
                print(local.position(), flush=True)  # progress, for whoever watches (or kills) this process
        return 0
    if not args.store_schema:
        parser.error("--store-schema is needed for work and write")

    from ..stores.postgres import PostgresStore
    from ._model import DurableReadModel
    from ._worker import PartitionWorker

    store = PostgresStore(schema=args.store_schema, pool_max=2)
    try:
        if args.role == "write":
            write(store, events=args.events, streams=args.streams, seed=args.seed)
            return 0
        dsn = os.environ["EVENTCORE_DATABASE_URL"]
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with DurableReadModel(
            dsn, ApplicationCounts(), schema=args.schema or args.store_schema, partitions=args.partitions
        ) as model:
            worker = PartitionWorker(
                store,
                model,
                owner=args.owner,
                leader=args.leader,
                lease_seconds=args.lease_seconds,
                batch_size=args.batch_size,
            )
            print(f"ready {worker.owner}", flush=True)
            try:
                worker.run(stop=stop)
            finally:
                worker.close()
        return 0
    finally:
        store.close()


if __name__ == "__main__":
    sys.exit(_main())
