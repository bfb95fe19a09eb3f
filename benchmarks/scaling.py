"""Scaling curves: commands/s against concurrent clients, and the cost of a command against the length
of its stream and the size of the whole log, drawn as PNG files for benchmarks/README.md.

Run as ``python -m benchmarks.scaling [--quick] [--only clients,stream,log] [--clients 1,2,4,8,16,32]
[--stream-lengths ...] [--log-sizes ...] [--out DIR]``; ``--quick`` (CI) keeps every size tiny, the
default is the full run (logs up to 10^7 events). Clients: ``n`` threads, each with its own executor
and accounts (no conflicts), ``update`` commands on DuckDB and two-stream ``transfer`` on PostgreSQL
(the stores as the main runner opens them: PostgreSQL with its stream cache). Stream length: a
``Credit`` on one stream of ``L`` events (it folds all of them). Log size: a ``Credit`` on 10-event
streams picked over a log of ``N`` events, built by DuckDB as Arrow blocks and loaded through each
store's bulk path. PostgreSQL without the stream cache for both, so every command reads its stream
from the server.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from eventcore_lab.stores import bulk

from . import ours
from .cases import Backends
from .domain import Credit
from .environment import find_postgres
from .harness import Sample, percentile

HERE = Path(__file__).resolve().parent


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def clients_curve(b: Backends, backend: str, counts: list[int], total: int) -> dict[int, float]:
    kind = "transfer" if backend == "postgres" else "update"
    out = {}
    for n in counts:
        with b.store(backend) as store:
            sample = ours.clients(store, f"s{n}", kind, n, max(1, total // n), accounts=20)
        out[n] = sample.rate
        log(f"{backend} {n} clients: {sample.rate:,.0f} commands/s")
    return out


@contextmanager
def _history_store(b: Backends, backend: str) -> Iterator[Any]:
    if backend == "postgres":
        from eventcore_lab.stores.postgres import PostgresStore

        with b.schema() as schema, PostgresStore(b.dsn, schema=schema, pool_max=4) as store:
            yield store
    else:
        with b.store(backend) as store:
            yield store


def stream_curve(b: Backends, backend: str, lengths: list[int]) -> dict[int, float]:
    """Commands/s of ``Credit`` on one stream of ``length`` events."""
    out = {}
    for length in lengths:
        with _history_store(b, backend) as store:
            history = ours.make_history(length, 1)
            target = history[0].stream_id
            store.import_events(history)
            del history
            sample = _credits(store, [target], max(5, min(300, 3_000_000 // length)))
        out[length] = sample.rate
        log(f"{backend} stream of {length:,} events: {sample.rate:,.1f} commands/s")
    return out


def log_curve(
    b: Backends, backend: str, sizes: list[int], commands: int = 300, budget_s: float = 30.0
) -> dict[str, dict[int, float]]:
    """Per log size: commands/s and median latency (ms) of ``Credit`` on 10-event streams spread over
    the log (each command on another stream, in random order, so the reads touch the whole log's
    indexes and pages, not one hot stream that grows as it is measured), the fill rate (events/s) and
    the bytes the log takes (process RSS growth in memory, the file for DuckDB, the table and its
    indexes for PostgreSQL). At most ``commands`` commands, fewer (at least 20) when they take longer
    than ``budget_s``. A memory-store size is left out when, at the bytes per event of the previous
    size, it would leave less than ``MEMORY_HEADROOM`` of the machine's available memory."""
    out: dict[str, dict[int, float]] = {"log": {}, "log_p50_ms": {}, "log_fill": {}, "log_bytes": {}}
    deque(log_blocks(10, "warmup"), maxlen=0)  # modules loaded before the first RSS reading
    for size in sizes:
        if backend == "memory" and out["log_bytes"]:
            last = max(out["log_bytes"])
            needed = out["log_bytes"][last] / last * size
            if needed > _available_bytes() - MEMORY_HEADROOM:
                log(
                    f"memory log of {size:,} events left out: needs ~{needed / 1e9:.1f} GB, "
                    f"{_available_bytes() / 1e9:.1f} GB available"
                )
                continue
        with _history_store(b, backend) as store:
            rss_before = _rss_bytes()
            started = time.perf_counter()
            tag = uuid.uuid4().hex[:8]
            fill_log(store, backend, size, tag, b.workdir)
            filled = time.perf_counter() - started
            footprint = _footprint(store, backend, b.dsn, rss_before)
            streams = size // min(STREAM_EVENTS, size)
            picked = [j * streams // commands for j in range(commands)]
            random.Random(size).shuffle(picked)
            sample = _credits(store, [log_stream(tag, k) for k in picked], commands, budget_s)
        out["log"][size], out["log_fill"][size], out["log_bytes"][size] = (
            sample.rate,
            size / filled,
            footprint,
        )
        out["log_p50_ms"][size] = percentile(sample.latencies, 50) * 1e3
        log(
            f"{backend} log of {size:,} events: {sample.rate:,.1f} commands/s "
            f"(p50 {percentile(sample.latencies, 50) * 1e3:.2f} ms); filled in {filled:,.1f} s "
            f"({size / filled:,.0f} events/s), {footprint / 1e6:,.0f} MB"
        )
    return out


def _credits(store: Any, targets: list[str], count: int, budget_s: float = float("inf")) -> Sample:
    """``count`` credits (after 2 unmeasured ones), taking the target streams in turn; fewer (at
    least 20) when they have taken ``budget_s`` seconds."""
    from eventcore_lab import Executor

    executor = Executor(store)
    for i in range(2):
        executor.execute(Credit(targets[(-1 - i) % len(targets)]))
    clock = time.perf_counter
    latencies: list[float] = []
    gc.collect()
    started = clock()
    while len(latencies) < count and (len(latencies) < 20 or clock() - started < budget_s):
        t0 = clock()
        executor.execute(Credit(targets[len(latencies) % len(targets)]))
        latencies.append(clock() - t0)
    return Sample(len(latencies), clock() - started, latencies)


#: Streams per imported block: PostgreSQL's import takes a lock per stream in one transaction, and
#: 100,000 of them exhaust ``max_locks_per_transaction``.
BLOCK_STREAMS = 5_000
#: Memory a memory-store log must leave available (other work shares the machine).
MEMORY_HEADROOM = 4_000_000_000
#: Events per stream of the log curve.
STREAM_EVENTS = 10


def log_stream(tag: str, k: int) -> str:
    """The id of the ``k``-th stream of the log tagged ``tag``."""
    return f"log-{tag}-{k}"


def log_blocks(size: int, tag: str) -> Iterator[pa.Table]:
    """A log of ``size`` events (streams of 10: an opening, then credits) as Arrow tables with the
    bulk event file schema, one block of ``BLOCK_STREAMS`` streams each, interleaved within a block
    as concurrent writers leave them. Generated by DuckDB in SQL: no Python object per event."""
    import duckdb

    per_stream = min(STREAM_EVENTS, size)
    streams = size // per_stream
    metadata = json.dumps({"correlation_id": str(uuid.uuid4())})
    recorded = datetime.now(UTC).isoformat()
    con = duckdb.connect()
    try:
        for first in range(0, streams, BLOCK_STREAMS):
            n = min(BLOCK_STREAMS, streams - first)
            query = f"""
                select {first * per_stream} + i + 1 as position, uuid()::varchar as event_id,
                       'log-{tag}-' || ({first} + i % {n}) as stream_id, i // {n} + 1 as version,
                       if(i < {n}, 'BenchOpened', 'BenchCredited') as event_type,
                       if(i < {n}, '{{"owner":"bench"}}', '{{"amount":' || (i % 100 + 1) || '}}') as payload,
                       '{metadata}' as metadata, '{recorded}'::timestamptz as recorded_at,
                       1 as schema_version, []::varchar[] as tags
                from range({n * per_stream}) t(i) order by i"""
            yield con.sql(query).to_arrow_table().cast(bulk.ARROW_SCHEMA)
    finally:
        con.close()


def fill_log(store: Any, backend: str, size: int, tag: str, workdir: Path) -> None:
    """Fill ``store`` with :func:`log_blocks` through its bulk path: DuckDB loads one Parquet file
    with ``import_file``; the others ``import_events`` a block at a time."""
    if backend == "duckdb":
        path = workdir / f"log-{tag}.parquet"
        try:
            with pq.ParquetWriter(path, bulk.ARROW_SCHEMA) as writer:
                for block in log_blocks(size, tag):
                    writer.write_table(block)
            store.import_file(path, progress=False)
        finally:
            path.unlink(missing_ok=True)
        return
    for block in log_blocks(size, tag):
        store.import_events(list(bulk.arrow_to_events(block, store.registry)))


def _import_by_streams(store: Any, history: list[Any], streams_per_call: int = BLOCK_STREAMS) -> None:
    """Import whole streams, at most ``streams_per_call`` per call (see ``BLOCK_STREAMS``)."""
    by_stream: dict[str, list[Any]] = {}
    for event in history:
        by_stream.setdefault(event.stream_id, []).append(event)
    groups = list(by_stream.values())
    for start in range(0, len(groups), streams_per_call):
        store.import_events([e for group in groups[start : start + streams_per_call] for e in group])


def _rss_bytes() -> int:
    return _kib_field("/proc/self/status", "VmRSS") * 1024


def _available_bytes() -> int:
    return _kib_field("/proc/meminfo", "MemAvailable") * 1024


def _kib_field(path: str, name: str) -> int:
    with open(path) as lines:
        for line in lines:
            if line.startswith(f"{name}:"):
                return int(line.split()[1])
    return 0


def _footprint(store: Any, backend: str, dsn: str | None, rss_before: int) -> float:
    if backend == "duckdb":  # the file and its write-ahead log
        files = [Path(store.path), Path(f"{store.path}.wal")]
        return float(sum(p.stat().st_size for p in files if p.exists()))
    if backend == "postgres":
        import psycopg

        with psycopg.connect(dsn) as conn:
            row = conn.execute(
                "select pg_total_relation_size((quote_ident(%s) || '.events')::regclass)", (store.schema,)
            ).fetchone()
        return float(row[0]) if row else 1.0
    gc.collect()
    return float(max(_rss_bytes() - rss_before, 1))


def plot(curves: dict[str, dict[str, dict[int, float]]], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    titles = {  # name: title, x label, y label
        "clients": ("commands/s against concurrent clients", "clients (threads)", "commands/s"),
        "stream": ("a command against the length of its stream", "events in the stream", "commands/s"),
        "log": ("a command against the size of the log", "events in the log", "commands/s"),
        "log_fill": ("filling the log through the bulk path", "events in the log", "events/s"),
        "log_bytes": ("the space the log takes", "events in the log", "bytes"),
    }
    for name, (title, xlabel, ylabel) in titles.items():
        series = curves.get(name, {})
        if not series:
            continue
        fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
        for backend, points in series.items():
            xs = sorted(points)
            ax.plot(xs, [points[x] for x in xs], marker="o", label=backend)
        ax.set_xscale("log", base=2 if name == "clients" else 10)
        if name != "clients":
            ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = out / f"scaling-{name}.png"
        fig.savefig(path)
        plt.close(fig)
        files.append(path)
    return files


def _load(path: Path) -> dict[str, dict[str, dict[int, float]]]:
    if not path.exists():
        return {}
    saved = json.loads(path.read_text())
    return {k: {b: {int(x): y for x, y in p.items()} for b, p in v.items()} for k, v in saved.items()}


def _ints(text: str) -> list[int]:
    return [int(float(x)) for x in text.split(",") if x]


#: The log sizes of a full run (``--log-sizes`` default); ``--quick`` (CI) stays at a few thousand.
FULL_LOG_SIZES = "1e3,1e4,1e5,1e6,1e7"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scaling", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds: tiny sizes (what CI runs)")
    parser.add_argument("--only", default="clients,stream,log", help="curves to measure")
    parser.add_argument("--clients", default="1,2,4,8,16,32")
    parser.add_argument(
        "--client-total", type=int, default=800, help="commands per point, split among clients"
    )
    parser.add_argument("--stream-lengths", default="10,100,1000,10000,100000")
    parser.add_argument("--log-sizes", default=FULL_LOG_SIZES)
    parser.add_argument("--backends", default="memory,duckdb,postgres")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    if args.quick:
        args.clients, args.client_total = "1,2", 20
        args.stream_lengths, args.log_sizes = "10,100", "1e3,2e3"
    only = set(args.only.split(","))
    dsn, how = find_postgres(HERE.parent)
    log(f"PostgreSQL: {how}")
    out = args.out / "scaling.json"
    # curves measured earlier and not asked for now are kept, so one curve can be re-run alone
    curves = _load(out)
    with tempfile.TemporaryDirectory(prefix="eventcore-scaling-") as workdir:
        b = Backends(dsn, Path(workdir))
        backends = [x for x in args.backends.split(",") if b.available.get(x) == "ok"]
        runs: list[tuple[str, str, Callable[[], dict[str, dict[int, float]]]]] = []
        counts, total = _ints(args.clients), args.client_total
        lengths, sizes = _ints(args.stream_lengths), _ints(args.log_sizes)
        for backend in backends:
            if "clients" in only and backend != "memory":
                runs.append(
                    ("clients", backend, lambda bk=backend: {"clients": clients_curve(b, bk, counts, total)})
                )
            if "stream" in only:
                runs.append(("stream", backend, lambda bk=backend: {"stream": stream_curve(b, bk, lengths)}))
            if "log" in only:
                runs.append(("log", backend, lambda bk=backend: log_curve(b, bk, sizes)))
        for name in {name for name, _, _ in runs}:
            for key in [k for k in curves if k == name or k.startswith(f"{name}_")]:
                curves[key] = {}
        args.out.mkdir(parents=True, exist_ok=True)
        for _, backend, run in runs:
            for key, points in run().items():
                curves.setdefault(key, {})[backend] = points
            out.write_text(json.dumps(curves, indent=2) + "\n")  # kept if a later one fails
    for path in plot(curves, args.out):
        log(f"wrote {path}")
    print(json.dumps(curves, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
