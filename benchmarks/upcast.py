"""Replay cost of upcasting: a log where half the events need one upcast step, against the same log
needing none, per event and vectorised, on the DuckDB store.

    python -m benchmarks.upcast                     # 1,000,000 events (a few minutes)
    python -m benchmarks.upcast --events 100000     # smaller

The logs are written as Parquet files and imported with ``DuckDBStore.import_file`` (no Python objects
on the way in). Every event is a ``Credited`` of one of 1,000 accounts; in the "half" log every other
event is stored at schema version 1 (``{"amt": n}``), the rest at version 2 (``{"amount": n}``), and one
upcaster renames the field. Every path must give the same balances, or the run fails.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq

from eventcore_lab.core.registry import EventRegistry
from eventcore_lab.evolution import Upcasters
from eventcore_lab.projections import events_frame, iter_events
from eventcore_lab.stores import bulk
from eventcore_lab.stores.duckdb import DuckDBStore

ACCOUNTS = 1_000


class Credited(msgspec.Struct, frozen=True):
    schema_version: ClassVar[int] = 2
    amount: int


def write_log(path: Path, events: int, *, half_old: bool) -> None:
    """A Parquet event file of ``events`` credits; every other one at schema version 1 if ``half_old``."""
    numbers = range(events)
    old = [half_old and n % 2 == 0 for n in numbers]
    payloads = [
        ('{"amt":%d}' if o else '{"amount":%d}') % (n % 97) for n, o in zip(numbers, old, strict=True)
    ]
    table = pa.Table.from_arrays(
        [
            pa.array(range(1, events + 1), pa.int64()),
            pa.array([str(uuid.UUID(int=n + 1)) for n in numbers], pa.string()),
            pa.array([f"account-{n % ACCOUNTS}" for n in numbers], pa.string()),
            pa.array([n // ACCOUNTS + 1 for n in numbers], pa.int64()),
            pa.array(["Credited"] * events, pa.string()),
            pa.array(payloads, pa.string()),
            pa.array(['{"correlation_id":"bench"}'] * events, pa.string()),
            pa.array([datetime(2026, 1, 1, tzinfo=UTC)] * events, pa.timestamp("us", tz="UTC")),
            pa.array([1 if o else 2 for o in old], pa.int32()),
        ],
        schema=bulk.ARROW_SCHEMA,
    )
    pq.write_table(table, path, compression="zstd")


def code(*, upcasters: bool) -> EventRegistry:
    registry = EventRegistry()
    registry.register(Credited)
    if upcasters:
        chains = Upcasters(registry)
        chains.rename_field("Credited", 1, "amt", "amount")
        chains.install()
    return registry


def per_event(store: DuckDBStore) -> dict[str, int]:
    balances: dict[str, int] = {}
    for batch in iter_events(store, batch_size=50_000, progress=False):
        for event in batch:
            balances[event.stream_id] = balances.get(event.stream_id, 0) + event.payload.amount
    return balances


def vectorised(store: DuckDBStore) -> dict[str, int]:
    frame = events_frame(store, types=["Credited"], progress=False)
    return {str(k): int(v) for k, v in frame.groupby("stream_id")["amount"].sum().items()}


def timed(fn: Callable[[DuckDBStore], dict[str, int]], store: DuckDBStore, events: int) -> tuple[float, dict]:
    start = time.perf_counter()
    result = fn(store)
    return events / (time.perf_counter() - start), result


def run(events: int, repeats: int, workdir: Path) -> dict[str, Any]:
    files = {"none": workdir / "none.parquet", "half": workdir / "half.parquet"}
    write_log(files["none"], events, half_old=False)
    write_log(files["half"], events, half_old=True)
    databases = {}
    for name, file in files.items():
        databases[name] = workdir / f"{name}.duckdb"
        with DuckDBStore(databases[name], registry=EventRegistry(), show_progress=False) as store:
            store.import_file(file)
    cases = [
        ("none, no upcasters installed", "none", False),
        ("none, upcasters installed", "none", True),
        ("half need one upcast", "half", True),
    ]
    rows: list[dict[str, Any]] = []
    expected: dict[str, int] | None = None
    for label, log, installed in cases:
        for path_name, fn in (("per event", per_event), ("vectorised", vectorised)):
            rates = []
            for _ in range(repeats):
                with DuckDBStore(
                    databases[log], registry=code(upcasters=installed), show_progress=False
                ) as store:
                    rate, balances = timed(fn, store, events)
                if expected is None:
                    expected = balances
                elif balances != expected:
                    raise SystemExit(f"{label} / {path_name} computed different balances")
                rates.append(rate)
            rows.append({"log": label, "path": path_name, "events_per_s": sorted(rates)[len(rates) // 2]})
    base = {r["path"]: r["events_per_s"] for r in rows if r["log"] == cases[0][0]}
    for row in rows:
        row["vs_none"] = row["events_per_s"] / base[row["path"]]
    return {"events": events, "repeats": repeats, "rows": rows}


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"Replay of {result['events']:,} events on DuckDB (median of {result['repeats']}):",
        "",
        "| log | path | events/s | vs no upcasts |",
        "|---|---|---:|---:|",
    ]
    for row in result["rows"]:
        lines.append(f"| {row['log']} | {row['path']} | {row['events_per_s']:,.0f} | {row['vs_none']:.2f}x |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.upcast", description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as workdir:
        result = run(args.events, args.repeats, Path(workdir))
    print(markdown(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
