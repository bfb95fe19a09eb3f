"""Commands/s with encrypted personal data vs the same commands without, memory and PostgreSQL.

``python -m benchmarks.security [--commands N] [--pg-commands N] [--repeats R] [--stores memory,postgres]``.
Three variants run back to back per repeat, on fresh stores, so they share the machine's load; the table
shows medians and ratios:

- ``plain``: ``Executor(store)`` with an event that has no personal-data fields (the baseline);
- ``wrapped``: the same plain event through ``ProtectedStore`` (the wrapper's cost when nothing is
  encrypted);
- ``encrypted``: the customers example (name and email encrypted per customer, AES-256-GCM).

Two workloads: ``register`` (a new customer per command: the encrypted variant also creates a key for
each) and ``change`` (commands on existing customers, whose keys are cached after the first use).
PostgreSQL keeps the keys in the same database (``PostgresKeyStore(store)``, on the store's pooled
connections); it is left out without a reachable server. A second table compares PostgreSQL appends
with and without the insert guard of ``integrity_sql``; a third times a new subject's first key with
its commit waiting for the WAL flush (a key store on its own connection) and not (on the store's).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eventcore_lab import Command, Event, Executor, MemoryStore, emit, require, stream
from eventcore_lab.core.command import CommandContext
from eventcore_lab.core.events import StoredEvent
from eventcore_lab.examples.customers import ChangeEmail, RegisterCustomer
from eventcore_lab.security import MemoryKeyStore, PostgresKeyStore, ProtectedStore

from .environment import find_postgres


class PlainRegistered(Event, frozen=True):
    event_type = "bench.PlainRegistered"
    customer_id: str
    name: str
    email: str
    email_index: str
    tier: str = "standard"


class PlainEmailChanged(Event, frozen=True):
    event_type = "bench.PlainEmailChanged"
    customer_id: str
    email: str
    email_index: str


class RegisterPlain(Command):
    customer: str = stream()
    customer_id: str
    name: str
    email: str

    def initial_state(self) -> bool:
        return False

    def apply(self, state: bool, event: StoredEvent) -> bool:
        return True

    def handle(self, state: bool, ctx: CommandContext) -> list[Any]:
        require(not state, "already registered")
        return [
            emit(
                self.customer,
                PlainRegistered(
                    customer_id=self.customer_id, name=self.name, email=self.email, email_index="i"
                ),
            )
        ]


class ChangePlain(Command):
    customer: str = stream()
    customer_id: str
    email: str

    def initial_state(self) -> str | None:
        return None

    def apply(self, state: str | None, event: StoredEvent) -> str | None:
        return event.payload.email

    def handle(self, state: str | None, ctx: CommandContext) -> list[Any]:
        require(state is not None and state != self.email, "unchanged")
        return [
            emit(
                self.customer,
                PlainEmailChanged(customer_id=self.customer_id, email=self.email, email_index="i"),
            )
        ]


def commands(variant: str, workload: str, n: int, tag: str) -> tuple[list[Command[Any]], list[Command[Any]]]:
    """(setup commands, timed commands)."""
    ids = [f"{tag}-{i}" for i in range(n)]
    register: list[Command[Any]]
    change: list[Command[Any]]
    if variant == "encrypted":
        register = [RegisterCustomer.new(c, f"Name {c}", f"{c}@example.com", "i") for c in ids]
        change = [ChangeEmail.new(c, f"{c}@new.example", "i") for c in ids]
    else:
        register = [RegisterPlain(f"customer-{c}", c, f"Name {c}", f"{c}@example.com") for c in ids]
        change = [ChangePlain(f"customer-{c}", c, f"{c}@new.example") for c in ids]
    return ([], register) if workload == "register" else (register, change)


def run_once(
    make_store: Callable[[], tuple[Any, Callable[[], None]]],
    variant: str,
    workload: str,
    n: int,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    inner, cleanup = make_store()
    try:
        keys = make_keys(inner)  # always taken, so that no key store outlives its run
        store = inner if variant == "plain" else ProtectedStore(inner, keys)
        executor = Executor(store)
        setup, timed = commands(variant, workload, n, uuid.uuid4().hex[:8])
        for command in setup:
            executor.execute(command)
        # a full collection falls due every few runs and traverses the whole heap (about 70 ms with the
        # libraries imported, as long as 3000 plain commands): run it here, so that it lands in no
        # variant's timed loop (it made `wrapped` look half as fast as `plain`, whichever ran second)
        gc.collect()
        started = clock()
        for command in timed:
            executor.execute(command)
        return n / (clock() - started)
    finally:
        cleanup()


_keys_for: dict[int, Any] = {}


def make_keys(inner: Any) -> Any:
    return _keys_for.pop(id(inner), None) or MemoryKeyStore()


def memory_store() -> tuple[Any, Callable[[], None]]:
    return MemoryStore(), lambda: None


def postgres_store(dsn: str) -> Callable[[], tuple[Any, Callable[[], None]]]:
    import psycopg

    from eventcore_lab.stores.postgres import PostgresStore

    def make() -> tuple[Any, Callable[[], None]]:
        schema = f"bench_sec_{uuid.uuid4().hex[:12]}"
        store = PostgresStore(dsn, schema=schema, pool_max=2)
        store.migrate()
        keys = PostgresKeyStore(store)  # the store's own database, through its pooled connections
        _keys_for[id(store)] = keys

        def cleanup() -> None:
            store.close()
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(f'drop schema if exists "{schema}" cascade')

        return store, cleanup

    return make


def first_key_rate(dsn: str, on_store: bool, n: int) -> float:
    """New subjects' first keys per second. ``PostgresKeyStore(store)`` commits a first key without
    waiting for its WAL flush (the event that uses it flushes it); a key store on a connection of its
    own (``on_store=False``) cannot know the events share its server, so its commit waits."""
    import psycopg

    from eventcore_lab.stores.postgres import PostgresStore

    schema = f"bench_keys_{uuid.uuid4().hex[:12]}"
    store = PostgresStore(dsn, schema=schema, pool_max=1)
    keys = None
    try:
        store.migrate()
        keys = PostgresKeyStore(store) if on_store else PostgresKeyStore(lambda: psycopg.connect(dsn), schema)
        started = time.perf_counter()
        for i in range(n):
            keys.ensure_key(f"subject-{i}")
        return n / (time.perf_counter() - started)
    finally:
        if keys is not None:
            keys.close()
        store.close()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'drop schema if exists "{schema}" cascade')


def guard_rate(dsn: str, guarded: bool, n: int) -> float:
    """Appends/s (one event, exact expected version) on a fresh schema, with or without the insert guard."""
    import psycopg

    from eventcore_lab import EventToWrite, ExpectedVersion
    from eventcore_lab.security import integrity_sql
    from eventcore_lab.stores.postgres import PostgresStore

    schema = f"bench_guard_{uuid.uuid4().hex[:12]}"
    store = PostgresStore(dsn, schema=schema, pool_max=1)
    try:
        store.migrate()
        if guarded:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(integrity_sql(schema))
        event = PlainEmailChanged(customer_id="c", email="e", email_index="i")
        started = time.perf_counter()
        for i in range(n):
            stream_id = f"s-{i % 50}"
            store.append([EventToWrite(stream_id, event)], {stream_id: ExpectedVersion.exact(i // 50)})
        return n / (time.perf_counter() - started)
    finally:
        store.close()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'drop schema if exists "{schema}" cascade')


def warm_up() -> None:
    """One encrypted command before any timing: the AES-GCM library is imported on first use, and that
    import (tens of milliseconds) must not land in the first timed run."""
    store = ProtectedStore(MemoryStore(), MemoryKeyStore())
    Executor(store).execute(RegisterCustomer.new("warm-up", "Name", "warm-up@example.com", "i"))


def interleaved_register(dsn: str, batch: int, rounds: int) -> dict[str, float]:
    """Milliseconds per PostgreSQL ``register`` command, median over ``rounds``, the variants taking turns
    in batches of ``batch`` commands on stores made once, so that they share the server's load:
    ``plain``, ``encrypted`` (keys on the store's connections: a first key's commit does not wait for
    the WAL flush) and ``encrypted-waits`` (keys on a connection of their own: it waits)."""
    import psycopg

    from eventcore_lab.stores.postgres import PostgresStore

    made: list[tuple[Any, str]] = []
    executors: dict[str, Executor] = {}
    try:
        for variant in ("plain", "encrypted", "encrypted-waits"):
            schema = f"bench_sec_{uuid.uuid4().hex[:12]}"
            store = PostgresStore(dsn, schema=schema, pool_max=2)
            made.append((store, schema))
            store.migrate()
            if variant == "plain":
                executors[variant] = Executor(store)
                continue
            keys = (
                PostgresKeyStore(store)
                if variant == "encrypted"
                else PostgresKeyStore(lambda: psycopg.connect(dsn), schema)
            )
            executors[variant] = Executor(ProtectedStore(store, keys))
        times: dict[str, list[float]] = {v: [] for v in executors}
        for r in range(rounds):
            for variant, executor in executors.items():
                kind = "plain" if variant == "plain" else "encrypted"
                _, timed = commands(kind, "register", batch, f"{variant}-{r}")
                started = time.perf_counter()
                for command in timed:
                    executor.execute(command)
                times[variant].append((time.perf_counter() - started) / batch * 1000)
        return {v: statistics.median(t) for v, t in times.items()}
    finally:
        for store, schema in made:
            store.close()
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(f'drop schema if exists "{schema}" cascade')


def count_run(variant: str, workload: str, n: int) -> None:
    """Run the first ``n`` (at most 1000) timed commands of a memory-store case after its setup, and
    nothing else. Under ``valgrind --tool=callgrind`` a run with ``n`` commands minus a run with 0 counts
    the instructions of those commands alone, a measure that other processes' load does not disturb."""
    if n > 1000:
        raise SystemExit("--count runs at most 1000 commands")
    inner = MemoryStore()
    store = inner if variant == "plain" else ProtectedStore(inner, MemoryKeyStore())
    executor = Executor(store)
    setup, timed = commands(variant, workload, 1000, "count")
    for command in setup:
        executor.execute(command)
    for command in timed[:n]:
        executor.execute(command)


def off_and_on(rate: Callable[[bool], float], repeats: int) -> tuple[float, float]:
    """Median rates with a setting off and on, the two taking turns ``repeats`` times."""
    rates: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(repeats):
        for on in (False, True):
            rates[on].append(rate(on))
    return statistics.median(rates[False]), statistics.median(rates[True])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=2000, help="timed commands per run (memory)")
    parser.add_argument("--pg-commands", type=int, default=300, help="timed commands per run (PostgreSQL)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--stores", default="memory,postgres", help="which stores to run, comma-separated (memory,postgres)"
    )
    parser.add_argument(
        "--count",
        nargs=3,
        metavar=("VARIANT", "WORKLOAD", "N"),
        help="only run N commands of one memory case (plain|wrapped|encrypted, register|change), untimed, "
        "for an instruction count under valgrind",
    )
    parser.add_argument(
        "--interleaved",
        action="store_true",
        help="only PostgreSQL register, the variants taking turns in batches of 20 (--repeats rounds)",
    )
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="time in CPU seconds of this process (time.process_time), which other processes disturb less",
    )
    args = parser.parse_args(argv)
    clock = time.process_time if args.cpu else time.perf_counter
    if args.interleaved:
        dsn, how = find_postgres(Path(__file__).resolve().parents[1])
        if not dsn:
            raise SystemExit(f"PostgreSQL needed: {how}")
        warm_up()
        ms = interleaved_register(dsn, 20, args.repeats)
        print("| PostgreSQL register, ms/command | plain | encrypted | encrypted, key commit waits |")
        print("|---|---|---|---|")
        cells = [f"{ms['plain']:.2f}"] + [
            f"{ms[v]:.2f} ({ms['plain'] / ms[v]:.2f} of plain)" for v in ("encrypted", "encrypted-waits")
        ]
        print(f"| median of {args.repeats} rounds | {' | '.join(cells)} |")
        return 0
    if args.count:
        warm_up()
        count_run(args.count[0], args.count[1], int(args.count[2]))
        return 0
    stores = set(args.stores.split(","))
    backends: list[tuple[str, Callable[[], tuple[Any, Callable[[], None]]], int]] = []
    if "memory" in stores:
        backends.append(("memory", memory_store, args.commands))
    warm_up()
    dsn, how = find_postgres(Path(__file__).resolve().parents[1]) if "postgres" in stores else (None, "")
    if dsn:
        backends.append(("postgres", postgres_store(dsn), args.pg_commands))
    elif "postgres" in stores:
        print(f"PostgreSQL left out: {how}", file=sys.stderr)
    print("| store | workload | plain cmd/s | wrapped cmd/s | encrypted cmd/s | encrypted / plain |")
    print("|---|---|---|---|---|---|")
    for name, make, n in backends:
        for workload in ("register", "change"):
            rates: dict[str, list[float]] = {"plain": [], "wrapped": [], "encrypted": []}
            for _ in range(args.repeats):
                for variant in rates:
                    rates[variant].append(run_once(make, variant, workload, n, clock))
            med = {v: statistics.median(r) for v, r in rates.items()}
            cells = [f"{med[v]:,.0f}" for v in ("plain", "wrapped", "encrypted")]
            ratio = f"{med['encrypted'] / med['plain']:.0%}"
            print(f"| {name} | {workload} | {' | '.join(cells)} | {ratio} |", flush=True)
    if dsn:
        plain, guarded_rate = off_and_on(lambda on: guard_rate(dsn, on, args.pg_commands), args.repeats)
        print()
        print("| PostgreSQL appends/s | without insert guard | with insert guard | guarded / plain |")
        print("|---|---|---|---|")
        print(f"| one event per append | {plain:,.0f} | {guarded_rate:,.0f} | {guarded_rate / plain:.0%} |")
        waits, no_wait = off_and_on(lambda on: first_key_rate(dsn, on, args.pg_commands), args.repeats)
        print()
        print("| PostgreSQL first keys/s | commit waits for WAL flush | commit does not wait | ratio |")
        print("|---|---|---|---|")
        print(f"| one new subject per call | {waits:,.0f} | {no_wait:,.0f} | {no_wait / waits:.2f}x |")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
