"""Scaling curves: commands/s against concurrent clients, and the cost of a command against the length
of its stream and the size of the whole log, drawn as PNG files for benchmarks/README.md.

Run as ``python -m benchmarks.scaling [--quick] [--clients 1,2,4,8,16,32] [--stream-lengths ...]
[--log-sizes ...] [--out DIR]``. Clients: ``n`` threads, each with its own executor and accounts (no
conflicts), ``update`` commands on DuckDB and two-stream ``transfer`` on PostgreSQL (the stores as the
main runner opens them: PostgreSQL with its stream cache). History: one stream of ``L`` events (a
``Credit`` folds all of them), or a log of ``N`` events over streams of 10 (a ``Credit`` on one of them);
PostgreSQL without the stream cache there, so every command reads its stream from the server.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import ours
from .cases import Backends
from .domain import Credit
from .environment import find_postgres
from .harness import time_loop

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


def history_curve(b: Backends, backend: str, sizes: list[int], *, per_stream: bool) -> dict[int, float]:
    """Commands/s of ``Credit`` on one stream of ``size`` events (``per_stream``), or on a 10-event
    stream in a log of ``size`` events."""
    out = {}
    for size in sizes:
        with _history_store(b, backend) as store:
            history = ours.make_history(size, 1 if per_stream else max(1, size // 10))
            target = history[0].stream_id
            _import_by_streams(store, history)
            del history
            executor = _executor(store)
            count = max(5, min(300, 3_000_000 // (size if per_stream else 10)))
            sample = time_loop(lambda i, x=executor, t=target: x.execute(Credit(t)), count, warmup=2)
        out[size] = sample.rate
        what = "stream" if per_stream else "log"
        log(f"{backend} {what} of {size:,} events: {sample.rate:,.1f} commands/s")
    return out


def _import_by_streams(store: Any, history: list[Any], streams_per_call: int = 5_000) -> None:
    """Import whole streams, at most ``streams_per_call`` per call: PostgreSQL's import takes a lock per
    stream in one transaction, and 100,000 of them exhaust ``max_locks_per_transaction``."""
    by_stream: dict[str, list[Any]] = {}
    for event in history:
        by_stream.setdefault(event.stream_id, []).append(event)
    groups = list(by_stream.values())
    for start in range(0, len(groups), streams_per_call):
        store.import_events([e for group in groups[start : start + streams_per_call] for e in group])


def _executor(store: Any) -> Any:
    from eventcore_lab import Executor

    return Executor(store)


def plot(curves: dict[str, dict[str, dict[int, float]]], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    titles = {
        "clients": ("commands/s against concurrent clients", "clients (threads)"),
        "stream": ("a command against the length of its stream", "events in the stream"),
        "log": ("a command against the size of the log", "events in the log"),
    }
    for name, (title, xlabel) in titles.items():
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
        ax.set_ylabel("commands/s")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = out / f"scaling-{name}.png"
        fig.savefig(path)
        plt.close(fig)
        files.append(path)
    return files


def _ints(text: str) -> list[int]:
    return [int(float(x)) for x in text.split(",") if x]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scaling", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--clients", default="1,2,4,8,16,32")
    parser.add_argument(
        "--client-total", type=int, default=800, help="commands per point, split among clients"
    )
    parser.add_argument("--stream-lengths", default="10,100,1000,10000,100000")
    parser.add_argument("--log-sizes", default="1e3,1e4,1e5,1e6")
    parser.add_argument("--backends", default="memory,duckdb,postgres")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    if args.quick:
        args.clients, args.client_total = "1,2", 20
        args.stream_lengths, args.log_sizes = "10,100", "1e3,2e3"
    dsn, how = find_postgres(HERE.parent)
    log(f"PostgreSQL: {how}")
    curves: dict[str, dict[str, dict[int, float]]] = {"clients": {}, "stream": {}, "log": {}}
    with tempfile.TemporaryDirectory(prefix="eventcore-scaling-") as workdir:
        b = Backends(dsn, Path(workdir))
        backends = [x for x in args.backends.split(",") if b.available.get(x) == "ok"]
        runs: list[tuple[str, str, Callable[[], dict[int, float]]]] = []
        for backend in backends:
            if backend != "memory":
                runs.append(
                    (
                        "clients",
                        backend,
                        lambda bk=backend: clients_curve(b, bk, _ints(args.clients), args.client_total),
                    )
                )
            runs.append(
                (
                    "stream",
                    backend,
                    lambda bk=backend: history_curve(b, bk, _ints(args.stream_lengths), per_stream=True),
                )
            )
            runs.append(
                (
                    "log",
                    backend,
                    lambda bk=backend: history_curve(b, bk, _ints(args.log_sizes), per_stream=False),
                )
            )
        args.out.mkdir(parents=True, exist_ok=True)
        for name, backend, run in runs:
            curves[name][backend] = run()
            (args.out / "scaling.json").write_text(
                json.dumps(curves, indent=2) + "\n"
            )  # kept if a later one fails
    for path in plot(curves, args.out):
        log(f"wrote {path}")
    print(json.dumps(curves, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
