"""The ``event_id`` column of ``events_frame``: text made by array operations against a ``uuid.UUID``
object per id (what the column held before), then whole frames on memory, DuckDB and PostgreSQL.

Run as ``python -m benchmarks.frame_ids [--events N] [--repeats R]``; prints one JSON object. The log is
the scaling benchmark's (:func:`benchmarks.scaling.log_blocks`: streams of 10), loaded through each
store's bulk path; the GC is paused around each conversion, as ``events_frame`` pauses it. Wall and
CPU seconds of each repeat.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Callable
from itertools import repeat
from pathlib import Path
from typing import Any

from eventcore_lab._gc import gc_paused
from eventcore_lab.projections import events_frame
from eventcore_lab.projections._columns import id_strings, uuid_strings

from .cases import Backends
from .environment import find_postgres
from .scaling import _history_store, fill_log

HERE = Path(__file__).resolve().parent


def uuid_objects(column: Any) -> list[uuid.UUID]:
    """The baseline: a ``uuid.UUID`` per 16-byte id, built as fast as Python allows (C-level maps,
    no ``UUID.__init__`` checks), as the frame's id column was built before."""
    count = len(column)
    numbers = list(map(int.from_bytes, column.to_pylist(), repeat("big", count)))
    made = list(map(object.__new__, repeat(uuid.UUID, count)))
    deque(map(uuid.UUID.__dict__["int"].__set__, made, numbers), maxlen=0)
    deque(map(uuid.UUID.__dict__["is_safe"].__set__, made, repeat(uuid.SafeUUID.unknown, count)), maxlen=0)
    return made


def timed(fn: Callable[[], Any], repeats: int) -> dict[str, list[float]]:
    """Wall and CPU seconds per call: on a shared machine the CPU time of this process moves less than
    the wall time, which includes waiting for a core."""
    wall, cpu = [], []
    for _ in range(repeats):
        with gc_paused():
            started, used = time.perf_counter(), time.process_time()
            fn()
            wall.append(round(time.perf_counter() - started, 3))
            cpu.append(round(time.process_time() - used, 3))
    return {"wall_s": wall, "cpu_s": cpu}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.frame_ids", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backends", default="memory,duckdb,postgres")
    args = parser.parse_args(argv)
    dsn, _ = find_postgres(HERE.parent)
    result: dict[str, Any] = {"events": args.events}
    with tempfile.TemporaryDirectory(prefix="eventcore-frame-ids-") as workdir:
        b = Backends(dsn, Path(workdir))
        for backend in [x for x in args.backends.split(",") if b.available.get(x) == "ok"]:
            with _history_store(b, backend) as store:
                fill_log(store, backend, args.events, uuid.uuid4().hex[:8], b.workdir)
                if backend == "duckdb":
                    column = store.events_table().column("event_id").combine_chunks()
                    result["ids from Arrow: uuid.UUID objects (before)"] = timed(
                        lambda c=column: uuid_objects(c), args.repeats
                    )
                    result["ids from Arrow: text (id_strings)"] = timed(
                        lambda c=column: id_strings(c), args.repeats
                    )
                if backend == "memory":
                    ids = [e.event_id for e in store.read_all()]
                    result["ids from uuid.UUIDs: text (uuid_strings)"] = timed(
                        lambda i=ids: uuid_strings(i), args.repeats
                    )
                result[f"events_frame {backend}"] = timed(
                    lambda s=store: events_frame(s, progress=False), args.repeats
                )
            print(backend, json.dumps(result), file=sys.stderr, flush=True)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
