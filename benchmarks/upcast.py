"""Replay cost of upcasting: a log where half the events need one upcast step, against the same log
needing none, per event and vectorised, on the DuckDB store.

    python -m benchmarks.upcast                     # 1,000,000 events, the must-show size (a few minutes)
    python -m benchmarks.upcast --events 100000     # any size
    python -m benchmarks.upcast --quick             # 3,000 events, seconds (what the test suite runs)

The logs are written as Parquet files and imported with ``DuckDBStore.import_file`` (no Python objects
on the way in). Every event is a ``Credited`` of one of 1,000 accounts; in the "half" log every other
event is stored at schema version 1 (``{"amt": n}``), the rest at version 2 (``{"amount": n}``), and one
upcaster renames the field: ``Upcasters.rename_field``, which the DuckDB columnar path runs in SQL, or
the same rename as a plain Python function, which it runs in Python for the old rows only. Three paths:
per event (``iter_events`` + a dict fold), vectorised to pandas (``events_frame`` + ``groupby``) and
vectorised in Arrow (``DuckDBStore.events_table`` + Arrow ``group_by``). Every path must give the same
balances, or the run fails.
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
_COLUMNS = [
    "position",
    "event_id",
    "stream_id",
    "version",
    "event_type",
    "payload",
    "metadata",
    "recorded_at",
    "schema_version",
]


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
        # the columns written here; later optional columns of the event file format stay out (read as
        # their defaults), so the benchmark keeps working as the format grows
        schema=pa.schema([bulk.ARROW_SCHEMA.field(name) for name in _COLUMNS]),
    )
    pq.write_table(table, path, compression="zstd")


def code(upcasters: str) -> EventRegistry:
    """The deployed code: no upcasters (``"none"``), the rename as ``rename_field`` (``"sql"``: it has
    an SQL form) or as a Python function (``"python"``)."""
    registry = EventRegistry()
    registry.register(Credited)
    chains = Upcasters(registry)
    if upcasters == "sql":
        chains.rename_field("Credited", 1, "amt", "amount")
    elif upcasters == "python":
        chains.add("Credited", 1, _rename_amt)
    if upcasters != "none":
        chains.install()
    return registry


def _rename_amt(data: dict[str, Any]) -> dict[str, Any]:
    data["amount"] = data.pop("amt")
    return data


def per_event(store: DuckDBStore) -> dict[str, int]:
    balances: dict[str, int] = {}
    for batch in iter_events(store, batch_size=50_000, progress=False):
        for event in batch:
            balances[event.stream_id] = balances.get(event.stream_id, 0) + event.payload.amount
    return balances


def vectorised(store: DuckDBStore) -> dict[str, int]:
    frame = events_frame(store, types=["Credited"], progress=False)
    return {str(k): int(v) for k, v in frame.groupby("stream_id")["amount"].sum().items()}


def arrow(store: DuckDBStore) -> dict[str, int]:
    table = store.events_table(event_types=["Credited"], fields=lambda types: {"amount": "HUGEINT"})
    if table is None:
        raise SystemExit("the columnar path declined the log")
    amounts = table.column("amount").cast(pa.int64())
    sums = pa.table({"stream_id": table.column("stream_id"), "amount": amounts}).group_by("stream_id")
    totals = sums.aggregate([("amount", "sum")])
    return dict(
        zip(totals.column("stream_id").to_pylist(), totals.column("amount_sum").to_pylist(), strict=True)
    )


PATHS: list[tuple[str, Callable[[DuckDBStore], dict[str, int]]]] = [
    ("per event", per_event),
    ("vectorised (pandas)", vectorised),
    ("vectorised (Arrow)", arrow),
]


def timed(
    fn: Callable[[DuckDBStore], dict[str, int]], store: DuckDBStore, events: int
) -> tuple[float, float, dict]:
    """Events per wall-clock second and per CPU second of this process (all its threads): on a loaded
    machine the second moves less, and a CPU-bound replay is at least that fast on an idle one."""
    start, cpu = time.perf_counter(), time.process_time()
    result = fn(store)
    return events / (time.perf_counter() - start), events / (time.process_time() - cpu), result


def run(events: int, repeats: int, workdir: Path, paths: list[str] | None = None) -> dict[str, Any]:
    """Every case on every path in ``paths`` (names from :data:`PATHS`; all by default)."""
    chosen = [(name, fn) for name, fn in PATHS if paths is None or name in paths]
    files = {"none": workdir / "none.parquet", "half": workdir / "half.parquet"}
    write_log(files["none"], events, half_old=False)
    write_log(files["half"], events, half_old=True)
    databases = {}
    for name, file in files.items():
        databases[name] = workdir / f"{name}.duckdb"
        with DuckDBStore(databases[name], registry=EventRegistry(), show_progress=False) as store:
            store.import_file(file)
    cases = [
        ("none, no upcasters installed", "none", "none"),
        ("none, upcasters installed", "none", "sql"),
        ("half need one upcast (rename_field: SQL)", "half", "sql"),
        ("half need one upcast (Python function)", "half", "python"),
    ]
    rates: dict[tuple[str, str], list[float]] = {}
    cpu_rates: dict[tuple[str, str], list[float]] = {}
    expected: dict[str, int] | None = None
    started = time.perf_counter()
    for _ in range(repeats):  # each repeat runs every case, so that a load change hits all of them
        for label, log, upcasters in cases:
            for path_name, fn in chosen:
                with DuckDBStore(databases[log], registry=code(upcasters), show_progress=False) as store:
                    rate, cpu_rate, balances = timed(fn, store, events)
                if expected is None:
                    expected = balances
                elif balances != expected:
                    raise SystemExit(f"{label} / {path_name} computed different balances")
                rates.setdefault((label, path_name), []).append(rate)
                cpu_rates.setdefault((label, path_name), []).append(cpu_rate)
    rows = [
        {
            "log": label,
            "path": path,
            "events_per_s": sorted(found)[len(found) // 2],
            "events_per_cpu_s": sorted(cpu_rates[(label, path)])[len(found) // 2],
        }
        for (label, path), found in rates.items()
    ]
    base = {r["path"]: r["events_per_s"] for r in rows if r["log"] == cases[0][0]}
    for row in rows:
        row["vs_none"] = row["events_per_s"] / base[row["path"]]
    seconds = time.perf_counter() - started
    return {"events": events, "repeats": repeats, "rows": rows, "replay_seconds": seconds}


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"Replay of {result['events']:,} events on DuckDB (median of {result['repeats']}; every replay "
        f"took {result['replay_seconds']:.0f} s in all):",
        "",
        "| log | path | events/s | vs no upcasts | events per CPU-s |",
        "|---|---|---:|---:|---:|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['log']} | {row['path']} | {row['events_per_s']:,.0f} | {row['vs_none']:.2f}x "
            f"| {row['events_per_cpu_s']:,.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.upcast", description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="3,000 events (a smoke run)")
    parser.add_argument(
        "--paths",
        default=",".join(name for name, _ in PATHS),
        help="comma-separated paths to run (default: all): " + ", ".join(name for name, _ in PATHS),
    )
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as workdir:
        paths = [p.strip() for p in args.paths.split(",")]
        unknown = set(paths) - {name for name, _ in PATHS}
        if unknown:
            parser.error(f"unknown paths: {', '.join(sorted(unknown))}")
        result = run(3_000 if args.quick else args.events, args.repeats, Path(workdir), paths)
    print(markdown(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
