"""Peak memory of an in-memory store holding N events, measured in a fresh process.

Run as ``python -m benchmarks.rss N``; prints one JSON object. The events go in through the normal
append path, two per append with one Metadata per append (what the executor does for a command).
"""

from __future__ import annotations

import gc
import json
import resource
import sys
import time


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    return 0


def _rss_now_kib() -> int:
    return _status_kib("VmRSS")


def _peak_kib() -> int:
    """The high-water RSS of this process image. Not ``getrusage``: its ``ru_maxrss`` survives fork and exec,
    so a child of a big benchmark process would report its parent's size."""
    return _status_kib("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure(count: int) -> dict[str, float]:
    from eventcore_lab import EventToWrite, MemoryStore, Metadata

    from .domain import BenchCredited, BenchOpened

    gc.collect()
    before = _rss_now_kib()
    store = MemoryStore()
    streams = max(1, count // 100)
    started = time.perf_counter()
    for i in range(0, count, 2):
        metadata = Metadata()
        stream = f"account-{(i // 2) % streams}"
        first = BenchOpened(owner="bench") if i < 2 * streams else BenchCredited(amount=i % 100 + 1)
        store.append(
            [EventToWrite(stream, first, metadata), EventToWrite(stream, BenchCredited(1), metadata)]
        )
    seconds = time.perf_counter() - started
    gc.collect()
    held = store.head()
    peak = _peak_kib()
    return {
        "events": held,
        "rss_before_mib": before / 1024,
        "rss_now_mib": _rss_now_kib() / 1024,
        "peak_rss_mib": peak / 1024,
        "bytes_per_event": (_rss_now_kib() - before) * 1024 / held if held else 0.0,
        "append_events_per_s": held / seconds if seconds else 0.0,
    }


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]))))
