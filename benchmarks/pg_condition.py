"""What an append condition costs on PostgreSQL, measured side by side (issue 14).

Run as ``python -m benchmarks.pg_condition [ROUNDS] [PER_ROUND]``; prints one JSON object. One store,
one thread, the stream cache off: rounds alternate between three kinds of append of one event to a
fresh stream, so all share the machine's load: untagged, tagged (``course:N``) without a condition, and
tagged with ``AppendCondition(Query.of(QueryItem(types, tags=("course:N",))), after=head)`` (the lock on
the tag key and one index probe). Figures are medians over rounds of wall time per append, and ratios.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import uuid
from pathlib import Path

import psycopg


def measure(rounds: int, per_round: int) -> dict[str, float]:
    from eventcore_lab import EventToWrite
    from eventcore_lab.core.query import AppendCondition, Query, QueryItem
    from eventcore_lab.stores.postgres import PostgresStore

    from .domain import BenchCredited
    from .environment import find_postgres

    dsn, _how = find_postgres(Path(__file__).resolve().parent.parent)
    if dsn is None:
        raise SystemExit("no PostgreSQL server found (set EVENTCORE_DATABASE_URL)")
    schema = f"bench_condition_{uuid.uuid4().hex[:8]}"
    store = PostgresStore(dsn, schema=schema)
    kinds = ("untagged", "tagged", "conditional")
    samples: dict[str, list[float]] = {kind: [] for kind in kinds}
    counter = iter(range(10**9))
    try:
        store.migrate()
        head = store.head()

        def run(kind: str) -> float:
            nonlocal head
            started = time.perf_counter()
            for _ in range(per_round):
                n = next(counter)
                tags = () if kind == "untagged" else (f"course:{n % 1000}",)
                write = EventToWrite(f"{kind}-{n}", BenchCredited(1), tags=tags)
                if kind == "conditional":
                    query = Query.of(QueryItem(types=("BenchCredited",), tags=tags))
                    [stored] = store.append([write], condition=AppendCondition(query, head))
                else:
                    [stored] = store.append([write])
                head = stored.position
            return (time.perf_counter() - started) / per_round * 1e6

        for kind in kinds:  # warm up connections and plans
            run(kind)
        for _ in range(rounds):
            for kind in kinds:
                samples[kind].append(run(kind))
    finally:
        store.close()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    medians = {kind: statistics.median(samples[kind]) for kind in kinds}
    return {
        **{f"{kind}_us": round(value) for kind, value in medians.items()},
        "tagged_vs_untagged": round(medians["tagged"] / medians["untagged"], 3),
        "conditional_vs_tagged": round(medians["conditional"] / medians["tagged"], 3),
    }


if __name__ == "__main__":
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    per_round = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    print(json.dumps(measure(rounds, per_round)))
