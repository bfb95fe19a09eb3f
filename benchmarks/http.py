"""Commands over HTTP vs the same commands in process: ``python -m benchmarks.http``.

The workload is ``Credit`` (read one account stream, fold, write one event) on accounts opened
beforehand, each client on its own accounts so that no conflict muddles the figures. In process, each
client thread has its own Executor on one shared store. Over HTTP, the same app that ``create_app`` makes
runs in a separate process under uvicorn with one worker, over the same database, and each client
thread has its own ``httpx.Client`` (keep-alive). Both sides run back to back per repeat, and the table
reports medians of commands/s and of the per-command p50/p95/p99 latency, plus the HTTP/in-process ratio.

    python -m benchmarks.http                       # PostgreSQL, 400 commands per client, 3 repeats
    python -m benchmarks.http --store memory --commands 50 --repeats 1   # quick look, no database

The server process and the clients share the machine: on 2 cores the HTTP figures include the
client's own cost of building and parsing requests.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .domain import Credit, Open
from .environment import find_postgres
from .harness import Sample, summarize, time_threads

REPO = Path(__file__).resolve().parent.parent
ROUTE_PATH = "/accounts/{account}/credit"


def make_app(store: Any) -> Any:
    from eventcore_lab import Executor
    from eventcore_lab.web import CommandRoute, create_app

    return create_app(Executor(store), [CommandRoute(Credit, path=ROUTE_PATH), Open])


def open_store(kind: str, dsn: str | None, schema: str) -> Any:
    if kind == "memory":
        from eventcore_lab import MemoryStore

        return MemoryStore()
    from eventcore_lab.stores.postgres import PostgresStore

    return PostgresStore(dsn, schema=schema, pool_max=20)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_forever(kind: str, dsn: str | None, schema: str, port: int) -> None:
    """The server side (run in its own process): the app over the store, uvicorn, one worker."""
    import uvicorn

    store = open_store(kind, dsn, schema)
    uvicorn.run(make_app(store), host="127.0.0.1", port=port, log_level="warning", access_log=False)


class Server:
    """A uvicorn server in a subprocess; for the memory store it serves its own (empty) store."""

    def __init__(self, kind: str, dsn: str | None, schema: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [sys.executable, "-m", "benchmarks.http", "--serve", kind, dsn or "-", schema, str(self.port)]
        self.process = subprocess.Popen(args, cwd=REPO)
        import httpx

        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the benchmark server did not start")
            time.sleep(0.1)

    def stop(self) -> None:
        self.process.terminate()  # SIGTERM: uvicorn shuts down gracefully
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def accounts_for(prefix: str, clients: int, per_client: int) -> list[list[str]]:
    return [[f"{prefix}-c{c}-a{i}" for i in range(per_client)] for c in range(clients)]


def open_accounts(execute: Callable[[Any], Any], accounts: list[list[str]]) -> None:
    for mine in accounts:
        for account in mine:
            execute(Open(account))


def in_process(store: Any, clients: int, commands: int, tag: str) -> Sample:
    from eventcore_lab import Executor

    accounts = accounts_for(f"ip-{tag}", clients, 10)
    open_accounts(Executor(store).execute, accounts)

    def make_op(client: int) -> Callable[[int], Any]:
        executor, mine = Executor(store), accounts[client]
        return lambda i: executor.execute(Credit(mine[i % len(mine)]))

    return time_threads(make_op, clients, commands)


def _http_loop(server: Server, accounts: list[list[str]], clients: int, commands: int) -> Sample:
    import httpx

    http_clients = [httpx.Client(base_url=server.url, timeout=60) for _ in range(clients)]

    def make_op(client: int) -> Callable[[int], Any]:
        http, mine = http_clients[client], accounts[client]

        def op(i: int) -> None:
            answer = http.post(f"/api/v1/accounts/{mine[i % len(mine)]}/credit", json={"amount": 1})
            if answer.status_code != 200:
                raise RuntimeError(f"HTTP {answer.status_code}: {answer.text[:200]}")

        return op

    try:
        return time_threads(make_op, clients, commands)
    finally:
        for http in http_clients:
            http.close()


def run(kind: str, commands: int, repeats: int, client_counts: tuple[int, ...]) -> list[dict[str, Any]]:
    from eventcore_lab import Executor

    dsn = None
    if kind == "postgres":
        dsn, how = find_postgres(REPO)
        if dsn is None:
            raise SystemExit(f"no PostgreSQL server: {how}")
    schema = f"bench_http_{uuid.uuid4().hex[:10]}"
    store = open_store(kind, dsn, schema)
    server = Server(kind, dsn, schema)
    samples: dict[tuple[str, int], list[Sample]] = {}
    try:
        for repeat in range(repeats):
            for clients in client_counts:
                tag = f"r{repeat}n{clients}"
                samples.setdefault(("in-process", clients), []).append(
                    in_process(store, clients, commands, tag)
                )
                accounts = accounts_for(f"http-{tag}", clients, 10)
                if kind == "postgres":
                    open_accounts(Executor(store).execute, accounts)
                else:  # the server has its own memory store: open the accounts through a second route
                    _open_over_http(server, accounts)
                samples.setdefault(("http", clients), []).append(
                    _http_loop(server, accounts, clients, commands)
                )
    finally:
        server.stop()
        store.close()
        if kind == "postgres":
            _drop_schema(dsn, schema)
    rows = []
    for (mode, clients), got in samples.items():
        rows.append({"mode": mode, "clients": clients, **summarize(got)})
    for row in rows:
        base = next(r for r in rows if r["mode"] == "in-process" and r["clients"] == row["clients"])
        row["ratio"] = row["rate"] / base["rate"] if base["rate"] else 0.0
    return rows


def _open_over_http(server: Server, accounts: list[list[str]]) -> None:
    import httpx

    with httpx.Client(base_url=server.url) as http:
        for mine in accounts:
            answer = http.post(
                "/api/v1/batch",
                json={"operations": [{"command": "Open", "body": {"account": a}} for a in mine]},
            )
            answer.raise_for_status()


def _drop_schema(dsn: str | None, schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def markdown(rows: list[dict[str, Any]], kind: str, commands: int, repeats: int) -> str:
    lines = [
        f"Store: {kind}; {commands} commands per client; {repeats} repeats (medians).",
        "",
        "| path | clients | commands/s | p50 ms | p95 ms | p99 ms | vs in-process |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in sorted(rows, key=lambda r: (r["clients"], r["mode"] != "in-process")):
        lines.append(
            f"| {row['mode']} | {row['clients']} | {row['rate']:,.0f} | {row['p50_ms']:.2f} | "
            f"{row['p95_ms']:.2f} | {row['p99_ms']:.2f} | {row['ratio']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--store", choices=["postgres", "memory"], default="postgres")
    parser.add_argument("--commands", type=int, default=400, help="commands per client per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clients", default="1,16", help="comma-separated client counts")
    parser.add_argument("--serve", nargs=4, metavar=("KIND", "DSN", "SCHEMA", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        kind, dsn, schema, port = args.serve
        serve_forever(kind, None if dsn == "-" else dsn, schema, int(port))
        return
    counts = tuple(int(c) for c in args.clients.split(","))
    rows = run(args.store, args.commands, args.repeats, counts)
    print(markdown(rows, args.store, args.commands, args.repeats))


if __name__ == "__main__":
    main()
