"""Where a PostgreSQL command's time goes: the append function on the server, the client call, the
client's own work, next to a bare one-row INSERT, and the append function of the previous schema
version (migration ``--before``) next to the current one.

Run as ``python -m benchmarks.pg_append [--calls N] [--repeats R] [--before V] [--json PATH]``. Every
repeat measures each variant back to back, so a pair shares the machine's load; the table shows medians.

- ``server loop``: a plpgsql procedure calls the append N times, committing each, with
  ``synchronous_commit = off``: the server's CPU per append (no network, no client, no WAL flush).
- ``client call``: the store's own append statement sent by psycopg (as the store sends it; commits
  flushed to disk as configured): p50 latency and the backend's CPU per call.
- ``command``: an executor creating a two-event stream through :class:`PostgresStore` (stream cache
  and guessing on, as in ``python -m benchmarks``): p50 latency, client CPU and server CPU per command.

CPU is read from ``/proc`` (the backend's and this process's user + system time), so the server must
run on this machine; otherwise the CPU columns stay empty. Times are in microseconds. CPU is counted
in clock ticks (10 ms), and a loaded machine moves it by tens of percent: compare migrations over
several repeats of 10,000 calls.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from .environment import find_postgres, load_average

_METADATA = (
    '{"correlation_id":"01a23379-a090-753c-98df-c6c3009a8060","causation_id":null,"user_id":null,"custom":{}}'
)
_CALL = (  # a two-event create, as the executor's Open sends it (see benchmarks/domain.py)
    "append_events_within({timeout}, ARRAY[s, s], ARRAY[gen_random_uuid(), gen_random_uuid()], "
    "'{{BenchOpened,BenchCredited}}', ARRAY['{{\"owner\":\"bench\"}}', '{{\"amount\":1}}'], ARRAY[md, md], "
    "ARRAY[s], '{{exact}}', '{{0}}', '{{1,1}}', NULL, NULL, '{{yBenchOpened,yBenchCredited,*}}', '{{f,f,f}}')"
)
_APP = "eventcore-pg-append-bench"


def _cpu(pid: int) -> float | None:
    """User + system CPU seconds of a local process, or None when it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _per_call(before: float | None, after: float | None, calls: int) -> float | None:
    return None if before is None or after is None else (after - before) / calls * 1e6


@contextmanager
def _schema(dsn: str, version: int | None) -> Iterator[str]:
    """A fresh schema migrated to ``version`` (None: the latest), with a bare one-row table."""
    from eventcore_lab.stores.postgres import PostgresStore

    name = f"bench_append_{uuid.uuid4().hex[:8]}"
    with PostgresStore(dsn, schema=name) as store:
        store.migrate(up_to=version)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE TABLE "{name}".floor (id bigserial PRIMARY KEY, stream text, data jsonb)')
        for proc, body in (
            ("bench_append", f'PERFORM * FROM "{name}".' + _CALL.format(timeout="'30000ms'")),
            ("bench_insert", f'INSERT INTO "{name}".floor (stream, data) VALUES (s, \'{{"amount": 1}}\')'),
        ):
            conn.execute(
                f'CREATE PROCEDURE "{name}".{proc}(p_tag text, n int) LANGUAGE plpgsql AS $$ '
                f"DECLARE s text; md text := '{_METADATA}'; "
                f"BEGIN FOR i IN 1..n LOOP s := p_tag || i; {body}; COMMIT; END LOOP; END $$"
            )
    try:
        yield name
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')


def _server_loop(dsn: str, schema: str, proc: str, calls: int) -> float | None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        conn.execute(f'CALL "{schema}".{proc}(%s, %s)', [f"w-{uuid.uuid4().hex[:6]}-", 100])
        before = _cpu(row[0])
        conn.execute(f'CALL "{schema}".{proc}(%s, %s)', [f"l-{uuid.uuid4().hex[:6]}-", calls])
        return _per_call(before, _cpu(row[0]), calls)


def _timed(op: Callable[[int], Any], calls: int, pids: Callable[[], list[int]]) -> dict[str, float | None]:
    """p50 latency of ``op``, and the CPU per call of this process and of the server ``pids``."""
    for i in range(min(200, calls)):
        op(-1 - i)
    watched = pids()
    server = [_cpu(pid) for pid in watched]
    client = time.process_time()
    latencies = []
    for i in range(calls):
        start = time.perf_counter()
        op(i)
        latencies.append(time.perf_counter() - start)
    client_cpu = (time.process_time() - client) / calls * 1e6
    after = [_cpu(pid) for pid in watched]
    server_cpu = (
        None
        if any(v is None for v in server + after)
        else sum(a - b for a, b in zip(after, server, strict=True) if a is not None and b is not None)
        / calls
        * 1e6
    )
    return {"p50": statistics.median(latencies) * 1e6, "client_cpu": client_cpu, "server_cpu": server_cpu}


def _client_call(dsn: str, schema: str, bare: bool, calls: int) -> dict[str, float | None]:
    from eventcore_lab.stores.postgres import PostgresStore

    with PostgresStore(dsn, schema=schema) as store:
        statement = store._sql_append  # the very statement the store sends (same signature since 4)
    tag = uuid.uuid4().hex[:6]
    payloads = '{"{\\"owner\\":\\"bench\\"}","{\\"amount\\":1}"}'
    metadata = "{" + ",".join(['"' + _METADATA.replace('"', '\\"') + '"'] * 2) + "}"

    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None

        def append(i: int) -> None:
            s = f"c-{tag}-{i}"
            conn.execute(
                statement,
                (
                    "30000ms",
                    f'{{"{s}","{s}"}}',
                    f"{{{uuid.uuid4()},{uuid.uuid4()}}}",
                    '{"BenchOpened","BenchCredited"}',
                    payloads,
                    metadata,
                    f'{{"{s}"}}',
                    "{exact}",
                    "{0}",
                    "{1,1}",
                    None,
                    None,
                    '{"yBenchOpened","yBenchCredited","*"}',
                    "{f,f,f}",
                ),
            ).fetchall()

        insert = f'INSERT INTO "{schema}".floor (stream, data) VALUES (%s, %s)'

        def floor(i: int) -> None:
            conn.execute(insert, (f"s-{tag}-{i}", '{"amount": 1}'))

        return _timed(floor if bare else append, calls, lambda: [row[0]])


def _command(dsn: str, schema: str, calls: int) -> dict[str, float | None]:
    from eventcore_lab import Executor
    from eventcore_lab.stores.postgres import PostgresStore

    from .domain import Open

    tag = uuid.uuid4().hex[:6]
    named = make_conninfo(dsn, application_name=_APP)  # to find this store's backends
    store = PostgresStore(named, schema=schema, pool_max=4, cache_events=100_000)
    with store:
        executor = Executor(store)

        def backends() -> list[int]:
            with store.connection() as conn:
                rows = conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = %s", [_APP]
                ).fetchall()
            return [pid for (pid,) in rows]

        return _timed(lambda i: executor.execute(Open(f"o-{tag}-{i}")), calls, backends)


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def measure(calls: int, repeats: int, before: int) -> dict[str, Any]:
    dsn, how = find_postgres(Path(__file__).resolve().parent.parent)
    if dsn is None:
        raise SystemExit("no PostgreSQL server found (set EVENTCORE_DATABASE_URL)")
    runs: dict[str, list[dict[str, float | None]]] = {}
    load = [load_average()]
    for _ in range(repeats):
        with _schema(dsn, before) as old, _schema(dsn, None) as new:
            for label, schema in ((f"migration {before}", old), ("latest", new)):
                runs.setdefault(f"server loop: append ({label})", []).append(
                    {"server_cpu": _server_loop(dsn, schema, "bench_append", calls)}
                )
            runs.setdefault("server loop: bare INSERT", []).append(
                {"server_cpu": _server_loop(dsn, new, "bench_insert", calls)}
            )
            for label, schema in ((f"migration {before}", old), ("latest", new)):
                runs.setdefault(f"client call: append ({label})", []).append(
                    _client_call(dsn, schema, False, calls)
                )
            runs.setdefault("client call: bare INSERT", []).append(_client_call(dsn, new, True, calls))
            runs.setdefault("command: create (latest)", []).append(_command(dsn, new, calls))
        load.append(load_average())
    fields = ("p50", "client_cpu", "server_cpu")
    medians = {key: {f: _median([r.get(f) for r in rows]) for f in fields} for key, rows in runs.items()}
    return {"postgres": how, "calls": calls, "repeats": repeats, "load_average": load, "results": medians}


def table(result: dict[str, Any]) -> str:
    def cell(value: float | None) -> str:
        return "" if value is None else f"{value:,.1f}"

    lines = ["| measured | p50 latency us | client CPU us | server CPU us |", "|---|---:|---:|---:|"]
    for key, row in result["results"].items():
        cells = " | ".join(cell(row[field]) for field in ("p50", "client_cpu", "server_cpu"))
        lines.append(f"| {key} | {cells} |")
    lines.append(f"\nload average (start, after each repeat): {result['load_average']}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3000, help="appends per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--before", type=int, default=5, help="the schema version to compare with")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    result = measure(args.calls, args.repeats, args.before)
    print(table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
