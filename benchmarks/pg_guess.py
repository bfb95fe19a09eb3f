"""PostgreSQL commands with the stream cache guessing unseen streams empty, against the same store
without guessing, eventsourcing's PostgreSQL application and a bare one-row INSERT, side by side.

Run as ``python -m benchmarks.pg_guess [--commands N] [--repeats R] [--json PATH]``. Each repeat runs
every workload's variants back to back on fresh schemas, so a pair shares the machine's load; the
table shows medians. ``cold_update`` is the case guessing can lose: 1,000 accounts opened by one store,
then updated round robin by a *fresh* store (another process, a restart), whose first command on each
account guesses wrong; its ``confirmed`` column counts those reruns.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from . import baselines, ours, peer
from .environment import find_postgres, pg_settings
from .harness import Sample, time_loop

ACCOUNTS = 1000


@contextmanager
def _schema(dsn: str) -> Iterator[str]:
    name = f"bench_guess_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')


def _ours(dsn: str, workload: str, guess: bool, count: int, warmup: int) -> tuple[Sample, dict[str, int]]:
    from eventcore_lab import Executor
    from eventcore_lab.stores.postgres import PostgresStore

    from .domain import Credit

    reads: list[list[str]] = []

    def store(schema: str, hook: Callable[[list[str]], None] | None = None) -> PostgresStore:
        return PostgresStore(
            dsn, schema=schema, pool_max=4, cache_events=100_000, guess_unseen=guess, read_hook=hook
        )

    with _schema(dsn) as schema:
        if workload == "cold_update":
            with store(schema) as opener:
                names = ours.open_accounts(Executor(opener), "cold", ACCOUNTS)
            with store(schema, reads.append) as fresh:
                executor = Executor(fresh)
                sample = time_loop(lambda i: executor.execute(Credit(names[i % ACCOUNTS])), count, warmup=0)
                return sample, {**fresh.guess_stats, "reads": len(reads)}
        with store(schema, reads.append) as s:
            fn: Callable[..., Sample] = {
                "create": ours.single_stream_create,
                "update": ours.single_stream_update,
                "transfer": ours.two_stream_transfer,
            }[workload]
            extra = () if workload == "create" else (ACCOUNTS,)
            sample = fn(s, "g", count, warmup, *extra)
            setup = 0 if workload == "create" else ACCOUNTS  # the accounts opened first
            return sample, {**s.guess_stats, "reads": len(reads), "commands": count + warmup + setup}


def _peer(dsn: str, workload: str, count: int, warmup: int) -> Sample:
    with _schema(dsn) as schema, peer.application("postgres", pg_settings(dsn), schema) as app:
        if workload == "create":
            return peer.create(app, count, warmup)
        if workload == "transfer":
            return peer.transfer(app, count, warmup, ACCOUNTS)
        return peer.update(app, count, warmup, ACCOUNTS)


def measure(commands: int, repeats: int, warmup: int = 50) -> dict[str, Any]:
    dsn, how = find_postgres(Path(__file__).resolve().parent.parent)
    if dsn is None:
        raise SystemExit("no PostgreSQL server found (set EVENTCORE_DATABASE_URL)")
    rates: dict[str, list[float]] = {}
    stats: dict[str, dict[str, int]] = {}
    for repeat in range(repeats):
        for workload in ("create", "update", "transfer", "cold_update"):
            for guess in (True, False):
                key = f"{workload}/{'guess' if guess else 'no guess'}"
                sample, counts = _ours(
                    dsn, workload, guess, commands if workload != "cold_update" else ACCOUNTS, warmup
                )
                rates.setdefault(key, []).append(sample.rate)
                total = stats.setdefault(key, {"guessed": 0, "confirmed": 0, "reads": 0, "commands": 0})
                for field in ("guessed", "confirmed", "reads"):
                    total[field] += counts[field]
                total["commands"] += counts.get("commands", sample.ops)
                print(f"[{repeat + 1}/{repeats}] {key}: {sample.rate:,.0f}/s {counts}", file=sys.stderr)
            if workload != "cold_update":
                key = f"{workload}/eventsourcing"
                rates.setdefault(key, []).append(_peer(dsn, workload, commands // 2, warmup).rate)
                print(f"[{repeat + 1}/{repeats}] {key}: {rates[key][-1]:,.0f}/s", file=sys.stderr)
        with _schema(dsn) as schema:
            rates.setdefault("bare INSERT", []).append(
                baselines.pg_insert(dsn, schema, commands, warmup).rate
            )
    medians = {key: statistics.median(values) for key, values in rates.items()}
    return {"postgres": how, "commands": commands, "repeats": repeats, "rates": medians, "guesses": stats}


def table(result: dict[str, Any]) -> str:
    rates, stats = result["rates"], result["guesses"]
    bare = rates["bare INSERT"]
    lines = [
        "| workload | guess | no guess | guess / no guess | eventsourcing | guess / eventsourcing "
        "| guess / bare INSERT | confirmed per command (guess) | reads per command: guess / no guess |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for workload in ("create", "update", "transfer", "cold_update"):
        g, n = rates[f"{workload}/guess"], rates[f"{workload}/no guess"]
        es = rates.get(f"{workload}/eventsourcing")
        s, o = stats[f"{workload}/guess"], stats[f"{workload}/no guess"]
        lines.append(
            f"| {workload} | {g:,.0f} | {n:,.0f} | {g / n:.2f}x | {'' if es is None else f'{es:,.0f}'} | "
            f"{'' if es is None else f'{g / es:.2f}x'} | {g / bare:.2f}x | "
            f"{s['confirmed'] / max(1, s['commands']):.3f} | "
            f"{s['reads'] / max(1, s['commands']):.3f} / {o['reads'] / max(1, o['commands']):.3f} |"
        )
    lines.append(f"\nbare one-row INSERT: {bare:,.0f} transactions/s")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.pg_guess", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--commands", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    result = measure(args.commands, args.repeats)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
