"""What a workbench user feels: simulator throughput, drawing a timeline, the stream explorer and the
timeline slider on a large DuckDB store, and ``events_frame`` from PostgreSQL.

Run as ``python -m benchmarks.workbench [--events N] [--draw-events N] [--simulated N] [--repeats R]
[--json PATH]`` (``--quick`` for tiny sizes). Every figure is a median over repeats; interactions are
timed as a user triggers them (a widget built, a stream picked, the slider moved), in process, without
a browser. PostgreSQL is found like the main runner finds it; without it that row is left out.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .domain import BenchCredited
from .ours import make_history
from .scaling import _import_by_streams


class Total:
    """The read model the slider shows: the sum of every credit so far."""

    def __init__(self) -> None:
        self.amount = 0

    def apply(self, event: Any) -> None:
        if isinstance(event.payload, BenchCredited):
            self.amount += event.payload.amount


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def timed(fn: Callable[[], Any], repeats: int) -> float:
    """Median seconds of ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def simulator(commands: int, repeats: int) -> dict[str, dict[str, float]]:
    """Simulated commands per second of the deterministic scheduler, in memory, plain and through the
    chaos store (its defaults: 10% failures, 20% injected conflicts, latency in virtual time); beside
    each, the same commands run directly (``Executor.execute``, client after client, no scheduler),
    which is what the simulator adds to."""
    from eventcore_lab import RetryConfig
    from eventcore_lab.simulation import banking_workload, simulate
    from eventcore_lab.stores.chaos import ChaosStore
    from eventcore_lab.stores.memory import MemoryStore

    simulated, direct = {}, {}
    for name, make in (
        ("memory", MemoryStore),
        ("memory + chaos", lambda: ChaosStore(MemoryStore(), seed=1, sleep=lambda _s: None)),
    ):
        retry = RetryConfig(max_attempts=10, initial_delay=0.001, max_delay=0.02)
        workload = banking_workload(accounts=1000, clients=50, commands=commands, seed=1)
        warm = banking_workload(accounts=20, clients=5, commands=50, seed=1)
        simulate(warm, make(), retry=retry)  # imports, warm-up
        seconds = timed(lambda w=workload, m=make, r=retry: simulate(w, m(), retry=r), repeats)
        simulated[name] = commands / seconds
        seconds = timed(lambda w=workload, m=make, r=retry: _run_directly(w, m(), r), repeats)
        direct[name] = commands / seconds
        log(
            f"simulator {name}: {simulated[name]:,.0f} commands/s; the same commands run directly "
            f"{direct[name]:,.0f}/s (simulated / direct {simulated[name] / direct[name]:.2f}x)"
        )
    return {"simulated": simulated, "direct": direct}


def _run_directly(workload: Any, store: Any, retry: Any) -> None:
    """The workload's setup and commands through ``Executor.execute``, one client's next command after
    another's: the executor's and the domain's share of a simulation, without its scheduler."""
    import random

    from eventcore_lab.core.errors import EventCoreError
    from eventcore_lab.core.events import Metadata
    from eventcore_lab.core.executor import Executor

    executor = Executor(store, retry=retry, timeout=None, rng=random.Random(1), sleep=lambda _s: None)
    for command in workload.setup:
        executor.execute(command, metadata=Metadata(correlation_id="setup"))
    streams = [workload.stream_for(c) for c in range(workload.clients)]
    for index in range(workload.commands):
        client = index % workload.clients
        _op, command, _think = next(streams[client])
        with contextlib.suppress(EventCoreError):  # refused or gave up: the simulator counts it too
            executor.execute(command, metadata=Metadata(correlation_id=f"c{client}-{index}"))


def drawing(events: int, repeats: int) -> dict[str, float]:
    """Seconds to lay out and render a timeline of ``events`` events (SVG text)."""
    from eventcore_lab.modeling.timeline import timeline

    history = make_history(events, max(1, events // 100))
    seconds = timed(lambda: timeline(history).svg(), repeats)
    log(f"timeline of {events:,} events: {seconds * 1000:,.0f} ms")
    return {"timeline_svg_s": seconds}


def widgets_on_duckdb(events: int, repeats: int, workdir: Path, parts: list[str]) -> dict[str, float]:
    """The stream explorer and the timeline slider (as ``parts`` asks) on a DuckDB store of ``events``
    events over ``events // 100`` streams."""
    from eventcore_lab.stores.duckdb import DuckDBStore
    from eventcore_lab.widgets.explorer import StreamExplorer

    path = workdir / f"workbench-{uuid.uuid4().hex[:8]}.duckdb"
    store = DuckDBStore(path, show_progress=False)
    out: dict[str, float] = {}
    try:
        history = make_history(events, max(1, events // 100))
        store.import_events(history, progress=False)
        streams = sorted({e.stream_id for e in history[:1000]})
        del history
        if "explorer" in parts:
            started = time.perf_counter()
            explorer = StreamExplorer(store)
            out["explorer_open_s"] = time.perf_counter() - started
            picks = iter(streams * repeats)
            out["explorer_pick_stream_s"] = timed(
                lambda: setattr(explorer.stream_picker, "value", next(picks)), repeats
            )
            typed = iter(streams[::-1] * repeats)  # a whole id typed into the filter: that stream shown
            out["explorer_filter_s"] = timed(
                lambda: setattr(explorer.stream_filter, "value", next(typed)), repeats
            )
        if "slider" in parts:
            out.update(slider_interactions(store, repeats))
    finally:
        store.close()
        path.unlink(missing_ok=True)
    for key, value in out.items():
        log(f"{key} ({events:,} events, DuckDB): {value * 1000:,.0f} ms")
    return out


def slider_interactions(store: Any, repeats: int, moves: int = 20) -> dict[str, float]:
    """The timeline slider on ``store``: opened (the picture, and in the pane the state at the head or
    how far the background fold got), moves while that fold runs (to positions at most a page past the
    states it kept, folded at once: the fold slows them down), the state at the head shown (every event
    read and folded; counted from the last opening), and moves once it is done, to ``moves`` positions
    drawn at random (seeded), each folded from the kept state before it. Moves are timed one by one
    (median and slowest)."""
    from eventcore_lab.widgets.slider import CHECKPOINT_EVENTS, TimelineSlider

    def move(slider: Any, position: int) -> float:
        started = time.perf_counter()
        slider.slider.value = position
        return time.perf_counter() - started

    opens = []
    for _ in range(repeats):
        started = time.perf_counter()
        slider = TimelineSlider(store, Total)
        opens.append(time.perf_counter() - started)
        if len(opens) < repeats:
            slider.close()
            slider.wait()  # the background fold stops at its next page
    head = slider.slider.max
    draw = random.Random(21)
    during = [
        move(slider, draw.randint(0, min(head, slider.folds.folded + CHECKPOINT_EVENTS)))
        for _ in range(moves // 2)
    ]
    slider.wait()
    at_head = time.perf_counter() - started
    slider.slider.value = head
    after = [move(slider, draw.randint(0, head)) for _ in range(moves)]
    slider.close()
    return {
        "slider_open_s": statistics.median(opens),
        "slider_state_at_head_s": at_head,
        "slider_move_while_folding_s": statistics.median(during),
        "slider_move_s": statistics.median(after),
        "slider_move_max_s": max(after),
    }


def frame_from_postgres(events: int, repeats: int) -> dict[str, float]:
    import psycopg

    from eventcore_lab.projections.frames import events_frame
    from eventcore_lab.stores.postgres import PostgresStore

    from .environment import find_postgres

    dsn, _how = find_postgres(Path(__file__).resolve().parent.parent)
    if dsn is None:
        log("no PostgreSQL: events_frame row left out")
        return {}
    schema = f"bench_wb_{uuid.uuid4().hex[:8]}"
    try:
        with PostgresStore(dsn, schema=schema) as store:
            _import_by_streams(store, make_history(events, max(1, events // 100)))  # lock limits
            seconds = timed(lambda: events_frame(store, progress=False), repeats)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    rate = events / seconds
    log(f"events_frame of {events:,} events from PostgreSQL: {seconds:.2f} s ({rate:,.0f} events/s)")
    return {"events_frame_pg_s": seconds, "events_frame_pg_events_per_s": events / seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.workbench", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--events", type=int, default=1_000_000, help="DuckDB store and events_frame size")
    parser.add_argument("--draw-events", type=int, default=100_000, help="timeline size")
    parser.add_argument("--simulated", type=int, default=20_000, help="simulated commands per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default="simulator,drawing,explorer,slider,frame")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.events, args.draw_events, args.simulated, args.repeats = 2000, 1000, 500, 1
    parts = args.only.split(",")
    result: dict[str, Any] = {"sizes": {k: v for k, v in vars(args).items() if k != "json"}}
    if "simulator" in parts:
        rates = simulator(args.simulated, args.repeats)
        result["simulator_commands_per_s"] = rates["simulated"]
        result["simulator_direct_commands_per_s"] = rates["direct"]
    if "drawing" in parts:
        result["drawing"] = drawing(args.draw_events, args.repeats)
    if "explorer" in parts or "slider" in parts:
        with tempfile.TemporaryDirectory(prefix="eventcore-workbench-") as workdir:
            result["widgets"] = widgets_on_duckdb(args.events, args.repeats, Path(workdir), parts)
    if "frame" in parts:
        result["frame"] = frame_from_postgres(args.events, args.repeats)
    text = json.dumps(result, indent=2, default=str)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
