"""What an append condition costs on PostgreSQL, measured side by side (issue 14).

Run as ``python -m benchmarks.pg_condition [ROUNDS] [PER_ROUND]``; prints one JSON object. One store,
one thread, the stream cache off: rounds alternate between three kinds of append of one event to a
fresh stream, so all share the machine's load: untagged, tagged (``course:N``) without a condition, and
tagged with ``AppendCondition(Query.of(QueryItem(types, tags=("course:N",))), after=head)`` (the lock on
the tag key and one index probe). Figures are medians over rounds of wall time per append, and ratios.
Then what every append pays for conditions existing at all: the append function of migration 3 against
that of migration 4, on two schemas, called with the same untagged event in alternating rounds.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import uuid


def measure(rounds: int, per_round: int) -> dict[str, float]:
    from eventcore_lab import EventToWrite
    from eventcore_lab.core.query import AppendCondition, Query, QueryItem

    from .domain import BenchCredited
    from .environment import scratch_postgres_store

    kinds = ("untagged", "tagged", "conditional")
    samples: dict[str, list[float]] = {kind: [] for kind in kinds}
    counter = iter(range(10**9))
    with scratch_postgres_store("bench_condition") as store:
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
    medians = {kind: statistics.median(samples[kind]) for kind in kinds}
    return {
        **{f"{kind}_us": round(value) for kind, value in medians.items()},
        "tagged_vs_untagged": round(medians["tagged"] / medians["untagged"], 3),
        "conditional_vs_tagged": round(medians["conditional"] / medians["tagged"], 3),
    }


def plain_append_overhead(rounds: int, per_round: int) -> dict[str, float]:
    """An untagged append without a condition, by the append function of migration 3 and of migration 4
    (which also takes the shared type and '*' keys), called alike in rounds that alternate."""
    from .environment import scratch_postgres_store

    samples: dict[int, list[float]] = {3: [], 4: []}
    with scratch_postgres_store("bench_v3", up_to=3) as v3, scratch_postgres_store("bench_v4") as v4:
        schemas = {3: v3.schema, 4: v4.schema}
        with v3._connection() as conn:  # one connection reaches both schemas

            def run(version: int) -> float:
                statement = (
                    f'SELECT * FROM "{schemas[version]}".append_events(%s::text[], %s::uuid[], %s::text[], '
                    "%s::text[], %s::text[], '{}', '{}', '{}'"
                    # the lock names PostgresStore passes for this append (see lock_names)
                    + (
                        ", p_lock_names => '{yBenchCredited,*}', p_lock_exclusive => '{f,f}')"
                        if version == 4
                        else ")"
                    )
                )
                started = time.perf_counter()
                for _ in range(per_round):
                    conn.execute(
                        statement,
                        [
                            [f"s-{uuid.uuid4().hex}"],
                            [uuid.uuid4()],
                            ["BenchCredited"],
                            ['{"amount": 1}'],
                            ['{"correlation_id": "c"}'],
                        ],
                    )
                return (time.perf_counter() - started) / per_round * 1e6

            for version in (3, 4):
                run(version)
            for _ in range(rounds):
                for version in (3, 4):
                    samples[version].append(run(version))
    medians = {version: statistics.median(values) for version, values in samples.items()}
    return {
        "migration_3_append_us": round(medians[3]),
        "migration_4_append_us": round(medians[4]),
        "plain_append_v4_vs_v3": round(medians[4] / medians[3], 3),
    }


if __name__ == "__main__":
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    per_round = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    print(json.dumps({**measure(rounds, per_round), **plain_append_overhead(rounds, per_round)}))
