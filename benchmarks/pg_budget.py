"""What bounding PostgreSQL store calls by a command's deadline costs, measured side by side.

Run as ``python -m benchmarks.pg_budget [ROUNDS] [PER_ROUND]``; prints one JSON object. One store, one
process: rounds alternate between read+append pairs made without a deadline (plain statements) and
under one (the ``*_within`` functions that set ``lock_timeout`` first), so both halves share the
machine's load; the figures are medians over rounds of wall and client CPU time per pair, and their
ratio. The stream cache is off, so every pair makes both calls.
"""

from __future__ import annotations

import json
import statistics
import sys
import time


def measure(rounds: int, per_round: int) -> dict[str, float]:
    from eventcore_lab import EventToWrite, ExpectedVersion
    from eventcore_lab.core._deadline import reset_deadline, set_deadline

    from .domain import BenchCredited
    from .environment import scratch_postgres_store

    samples: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    with scratch_postgres_store("bench_budget") as store:

        def run(bounded: bool) -> tuple[float, float]:
            wall, cpu = time.perf_counter(), time.process_time()
            for n in range(per_round):
                token = set_deadline(time.monotonic() + 30) if bounded else None
                try:
                    sid = f"account-{n % 50}"
                    version = store.read_streams([sid]).versions[sid]
                    store.append([EventToWrite(sid, BenchCredited(1))], {sid: ExpectedVersion.exact(version)})
                finally:
                    if token is not None:
                        reset_deadline(token)
            return (time.perf_counter() - wall) / per_round * 1e6, (
                time.process_time() - cpu
            ) / per_round * 1e6

        run(False)  # warm up connections and plans
        run(True)
        for _ in range(rounds):
            for bounded in (False, True):
                samples[bounded].append(run(bounded))
    plain_wall = statistics.median(s[0] for s in samples[False])
    bounded_wall = statistics.median(s[0] for s in samples[True])
    plain_cpu = statistics.median(s[1] for s in samples[False])
    bounded_cpu = statistics.median(s[1] for s in samples[True])
    return {
        "plain_wall_us": round(plain_wall),
        "bounded_wall_us": round(bounded_wall),
        "wall_ratio": round(bounded_wall / plain_wall, 3),
        "plain_client_cpu_us": round(plain_cpu),
        "bounded_client_cpu_us": round(bounded_cpu),
        "client_cpu_ratio": round(bounded_cpu / plain_cpu, 3),
    }


if __name__ == "__main__":
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    per_round = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    print(json.dumps(measure(rounds, per_round)))
