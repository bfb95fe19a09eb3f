"""Each operator command in a subprocess against a file-backed memory store, DuckDB and PostgreSQL,
with the exit codes scripts rely on (0 ok, 1 error, 2 usage, 3 problem found)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from _ops_helpers import bank_history

from eventcore_lab.core.executor import Executor
from eventcore_lab.stores import MemoryStore
from eventcore_lab.stores.bulk import write_events
from eventcore_lab.stores.duckdb import DuckDBStore

ROOT = Path(__file__).resolve().parents[1]
DOMAIN = "eventcore_lab.examples.banking"


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eventcore_lab.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )


class Target:
    """How to name one kind of store on the command line, and how to make an empty one."""

    def __init__(self, kind: str, tmp: Path, pg_url: str | None = None, schema: str | None = None) -> None:
        self.kind, self.tmp, self.pg_url, self.schema = kind, tmp, pg_url, schema
        self.extra_schemas: list[str] = []

    def seeded(self) -> list[str]:
        store: Any
        if self.kind == "memory":
            store = MemoryStore()
            bank_history(Executor(store), accounts=4, rounds=2)
            plain = [msgspec.structs.replace(e, stream_id=str(e.stream_id)) for e in store.read_all()]
            write_events(plain, self.tmp / "events.jsonl", progress=False)
            return ["--store", f"memory:{self.tmp / 'events.jsonl'}"]
        if self.kind == "duckdb":
            store = DuckDBStore(self.tmp / "seed.duckdb")
            bank_history(Executor(store), accounts=4, rounds=2)
            store.close()
            return ["--store", str(self.tmp / "seed.duckdb")]
        from eventcore_lab.stores.postgres import PostgresStore

        store = PostgresStore(self.pg_url, schema=self.schema)
        bank_history(Executor(store), accounts=4, rounds=2)
        store.close()
        return ["--store", str(self.pg_url), "--schema", str(self.schema)]

    def empty(self, name: str) -> list[str]:
        if self.kind == "memory":
            return ["--store", f"memory:{self.tmp / (name + '.jsonl')}"]
        if self.kind == "duckdb":
            return ["--store", str(self.tmp / (name + ".duckdb"))]
        schema = f"{self.schema}_{name}"
        self.extra_schemas.append(schema)
        return ["--store", str(self.pg_url), "--schema", schema]


@pytest.fixture(params=["memory", "duckdb", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    if request.param == "postgres":
        made = Target(
            "postgres", tmp_path, request.getfixturevalue("pg_url"), request.getfixturevalue("pg_schema")
        )
    else:
        made = Target(request.param, tmp_path)
    yield made
    if made.extra_schemas:
        import psycopg

        with psycopg.connect(made.pg_url, autocommit=True) as conn:
            for schema in made.extra_schemas:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_every_command_with_its_exit_code(target: Target, tmp_path: Path) -> None:
    store = target.seeded()
    events = 4 + 2 * 4 * 3  # opened, then per round and account a deposit and a two-event transfer
    run = lambda *a: cli(*a, *store, "--import", DOMAIN)  # noqa: E731

    done = run("migrate")
    assert done.returncode == 0, done.stderr
    assert run("health").returncode == 0
    shown = json.loads(run("config", "--json").stdout)
    assert {o["key"]: o["source"] for o in shown["options"]}["store.url"] == "override"

    streams = json.loads(run("streams", "list", "--json").stdout)
    assert sorted(s["stream_id"] for s in streams) == [f"account-{i}" for i in range(4)]
    shown_stream = run("streams", "show", "account-1", "--json")
    assert (
        shown_stream.returncode == 0 and json.loads(shown_stream.stdout)[0]["event_type"] == "AccountOpened"
    )
    missing = run("streams", "show", "account-99")
    assert missing.returncode == 1 and "streams list" in missing.stderr

    tail = run("events", "tail", "--after", "0", "--limit", "3", "--json", "--type", "MoneyDeposited")
    assert tail.returncode == 0
    assert [json.loads(line)["event_type"] for line in tail.stdout.splitlines()] == ["MoneyDeposited"] * 3

    stats = json.loads(run("stats", "--json").stdout)
    assert stats["events"] == events and stats["by_category"] == {"account": events}
    assert run("check").returncode == 0

    exported = run("events", "export", str(tmp_path / "out.jsonl"))
    assert exported.returncode == 0 and f"exported {events} events" in exported.stdout
    imported = cli(
        "events", "import", str(tmp_path / "out.jsonl"), *target.empty("imported"), "--import", DOMAIN
    )
    assert imported.returncode == 0, imported.stderr

    assert run("backup", str(tmp_path / "full")).returncode == 0
    assert cli("verify", str(tmp_path / "full"), "--import", DOMAIN).returncode == 0
    restored = cli("restore", str(tmp_path / "full"), *target.empty("restored"), "--import", DOMAIN, "--json")
    assert restored.returncode == 0, restored.stderr
    assert json.loads(restored.stdout)["events"] == events
    again = run("restore", str(tmp_path / "full"))
    assert again.returncode == 1 and "not empty" in again.stderr

    data = tmp_path / "full" / "events-000001.jsonl"
    data.write_bytes(data.read_bytes().replace(b'"amount":', b'"amount":1', 1))
    broken = cli("verify", str(tmp_path / "full"), "--import", DOMAIN)
    assert broken.returncode == 3 and "events-000001.jsonl" in broken.stdout

    status = run("projections", "status", "balances", "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)[0]["behind"] == events  # never run: the whole log is ahead of it
    view = tmp_path / "views.py"
    view.write_text(VIEW)
    rebuilt = run("projections", "rebuild", "deposits", "--factory", f"{view}:DepositTotals", "--json")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert json.loads(rebuilt.stdout)["applied"] == events
    doctor = run("doctor", "--hot-share", "0.9", "--slow-ms", "60000", "--json")
    assert doctor.returncode == 0, doctor.stdout
    found = {f["check"]: f for f in json.loads(doctor.stdout)}
    integrity = found["integrity"]
    assert integrity["status"] == "ok" and integrity["detail"].startswith(f"{events} events")
    # the pool figures come from PostgresStore.pool_stats(); the other stores have no pool
    assert ("connection pool" in found) == (target.kind == "postgres")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_health_of_an_unreachable_server_fails_within_the_connect_timeout() -> None:
    started = time.monotonic()
    result = cli(
        "health",
        "--store",
        f"postgresql://postgres@127.0.0.1:{closed_port()}/postgres",
        "--timeout",
        "3",
        "--json",
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 3
    assert json.loads(result.stdout)["status"] == "unhealthy"
    assert elapsed < 3 + 30  # the connect timeout, plus interpreter start-up on a busy machine


def test_usage_and_configuration_errors_have_their_own_exit_codes() -> None:
    assert cli("backup").returncode == 2  # argparse: missing directory
    bad = cli("config", env={"EVENTCORE_COMMAND_MAX_RETRIES": "lots"})
    assert bad.returncode == 1 and "EVENTCORE_COMMAND_MAX_RETRIES" in bad.stderr
    missing = cli("stats", "--store", "memory", "--import", "no_such_module_here")
    assert missing.returncode == 1 and "cannot import" in missing.stderr


def test_config_redacts_the_password_and_warns_of_unread_variables() -> None:
    result = cli(
        "config",
        env={"EVENTCORE_DATABASE_URL": "postgresql://me:s3cret@db/x", "EVENTCORE_LOG_LEVL": "debug"},
    )
    assert result.returncode == 0
    assert "s3cret" not in result.stdout and "me:***@db" in result.stdout
    assert "EVENTCORE_LOG_LEVL is set but is not an eventcore-lab option" in result.stdout


def test_doctor_and_projection_status_report_with_exit_codes(tmp_path: Path) -> None:
    import duckdb

    path = tmp_path / "doc.duckdb"
    store = DuckDBStore(path)
    bank_history(Executor(store), accounts=4, rounds=3)
    store.checkpoint_save("balances", 10)
    store.close()
    where = ["--store", str(path), "--import", DOMAIN]

    status = cli("projections", "status", "balances", *where, "--json")
    assert status.returncode == 0, status.stderr
    (row,) = json.loads(status.stdout)
    assert row["checkpoint"] == 10 and row["behind"] == 40 - 10

    calm = cli("doctor", *where, "--projection", "balances", "--hot-share", "0.5", "--json")
    assert calm.returncode == 0, calm.stdout
    checks = {f["check"]: f["status"] for f in json.loads(calm.stdout)}
    assert checks == {
        "slow store": "ok",
        "conflict hot spot": "ok",
        "projection balances": "ok",
        "integrity": "ok",
    }

    hot = cli("doctor", *where, "--hot-share", "0.1")
    assert hot.returncode == 4 and "split the stream" in hot.stdout

    con = duckdb.connect(str(path))
    con.execute("UPDATE events SET version = 42 WHERE position = 7")
    con.close()
    broken = cli("doctor", *where)
    assert broken.returncode == 3 and "[PROBLEM] integrity" in broken.stdout


VIEW = '''
import json
from pathlib import Path

TARGET = Path(__file__).with_name("deposits.json")


class DepositTotals:
    """A read model kept in a file: what a rebuild must recreate from the log."""

    def __init__(self):
        self.totals = {}
        TARGET.write_text("{}")

    def apply(self, event):
        if event.event_type == "MoneyDeposited":
            self.totals[event.stream_id] = self.totals.get(event.stream_id, 0) + event.payload.amount
            TARGET.write_text(json.dumps(self.totals))
'''


def test_projections_rebuild_replays_into_a_fresh_read_model(tmp_path: Path) -> None:
    path = tmp_path / "rebuild.duckdb"
    store = DuckDBStore(path)
    bank_history(Executor(store), accounts=2, rounds=3)
    expected: dict[str, int] = {}
    for event in store.read_all():
        if event.event_type == "MoneyDeposited":
            expected[event.stream_id] = expected.get(event.stream_id, 0) + event.payload.amount
    head = store.head()
    store.close()
    view = tmp_path / "views.py"
    view.write_text(VIEW)
    where = ["--store", str(path), "--import", DOMAIN]
    rebuilt = cli(
        "projections", "rebuild", "deposits", "--factory", f"{view}:DepositTotals", *where, "--json"
    )
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert json.loads(rebuilt.stdout) == {"projection": "deposits", "applied": head, "checkpoint": head}
    assert json.loads((tmp_path / "deposits.json").read_text()) == expected
    status = cli("projections", "status", "deposits", *where, "--json")
    assert json.loads(status.stdout)[0]["behind"] == 0
    bad = cli("projections", "rebuild", "deposits", "--factory", "no_colon_here", *where)
    assert bad.returncode == 1 and "MODULE:CALLABLE" in bad.stderr
