"""Health and readiness: healthy, degraded and unhealthy per the manual's lag thresholds and store state."""

from __future__ import annotations

import json
import socket
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from _ops_helpers import bank_history

from eventcore_lab.core.executor import Executor
from eventcore_lab.health import check_health, check_store_url, liveness
from eventcore_lab.projections import ProjectionRunner
from eventcore_lab.stores import MemoryStore


class Nothing:
    name = "nothing"

    def apply(self, event: Any) -> None:
        pass


class Failing:
    name = "failing"

    def apply(self, event: Any) -> None:
        raise RuntimeError("projection bug")


class Clock:
    """A store clock set by the test, so that events can be made to look old."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_caught_up_store_is_healthy_and_ready() -> None:
    store = MemoryStore()
    bank_history(Executor(store), accounts=2, rounds=1)
    runner = ProjectionRunner(store, Nothing())
    runner.run_until_caught_up()
    report = check_health(store, [runner])
    assert report.status == "healthy" and report.ready
    data = report.to_dict()
    assert [c["name"] for c in data["checks"]] == ["event_store", "projection:nothing"]
    assert all(c["status"] == "healthy" for c in data["checks"])
    json.dumps(data)  # serialisable as the web layer will send it


def test_projection_lag_degrades_then_makes_unhealthy() -> None:
    clock = Clock()
    store = MemoryStore(clock=clock)
    clock.now -= timedelta(minutes=10)
    bank_history(Executor(store), accounts=2, rounds=1)
    runner = ProjectionRunner(store, Nothing())
    report = check_health(store, [runner])  # 10 minutes behind: over 5, under 30
    assert report.status == "degraded" and report.ready
    assert "over 300 s" in (report.checks[1].details or "")
    report = check_health(store, [runner], lag_warning=60, lag_critical=120)
    assert report.status == "unhealthy" and not report.ready
    runner.run_until_caught_up()
    assert check_health(store, [runner]).status == "healthy"


def test_a_runner_stopped_by_an_error_is_unhealthy() -> None:
    store = MemoryStore()
    bank_history(Executor(store), accounts=2, rounds=1)
    runner = ProjectionRunner(store, Failing(), poll_interval=0.01)
    runner.start()
    deadline = time.monotonic() + 10
    while runner.error is None and time.monotonic() < deadline:
        time.sleep(0.01)
    report = check_health(store, [runner])
    assert report.status == "unhealthy" and "projection bug" in (report.checks[1].details or "")


def test_an_unreachable_postgres_is_unhealthy() -> None:
    report = check_store_url(f"postgresql://postgres@127.0.0.1:{closed_port()}/postgres", connect_timeout=2)
    assert report.status == "unhealthy"
    assert "cannot open the store" in (report.checks[0].details or "")


def test_a_reachable_postgres_is_healthy_once_migrated(pg_url: str, pg_schema: str) -> None:
    from eventcore_lab.stores.postgres import PostgresStore

    fresh = check_store_url(pg_url, schema=pg_schema)  # health never migrates: it reports
    assert fresh.status == "unhealthy" and not fresh.ready
    migrations = {c.name: c for c in fresh.checks}["migrations"]
    assert "pending" in (migrations.details or "") and "eventcore-lab migrate" in (migrations.details or "")
    store = PostgresStore(pg_url, schema=pg_schema)
    store.migrate()
    store.close()
    report = check_store_url(pg_url, schema=pg_schema)
    assert report.status == "healthy", report.to_dict()
    assert [c.name for c in report.checks] == ["event_store", "migrations", "connection_pool"]
    closed = check_health(store)
    assert closed.status == "unhealthy" and "closed" in (closed.checks[0].details or "")


def test_postgres_health_reports_schema_and_pool_and_never_migrates(pg_url: str, pg_schema: str) -> None:
    from eventcore_lab.stores.base import HealthCheck, PoolStatistics
    from eventcore_lab.stores.postgres import MIGRATIONS, PostgresStore

    latest = MIGRATIONS[-1][0]
    with PostgresStore(pg_url, schema=pg_schema, pool_max=3) as store:
        assert isinstance(store, HealthCheck) and isinstance(store, PoolStatistics)
        fresh = store.health()
        assert fresh.ok and fresh.head == 0 and fresh.latency_ms > 0
        assert (fresh.schema_version, fresh.latest_schema_version) == (0, latest)
        assert fresh.migrations_pending == latest
        assert fresh.pool is not None and fresh.pool.max_size == 3 and fresh.pool.waiting == 0
        assert store.health().schema_version == 0  # asking twice still changed nothing
        store.migrate(up_to=2)
        assert store.health().migrations_pending == latest - 2
        report = check_health(store)
        assert report.status == "unhealthy"
        assert f"schema at version 2, this release writes {latest}" in (report.checks[1].details or "")
        bank_history(Executor(store), accounts=2, rounds=1)  # first use migrates the rest
        used = store.health()
        assert used.schema_version == latest and used.migrations_pending == 0 and used.head == store.head()
        assert json.loads(json.dumps(used.to_dict()))["pool"]["max_size"] == 3
        assert check_health(store).status == "healthy"


def test_an_exhausted_pool_is_named_by_health_and_pool_stats(pg_url: str, pg_schema: str) -> None:
    from eventcore_lab.stores.postgres import PostgresStore

    with PostgresStore(pg_url, schema=pg_schema, pool_max=1, pool_timeout=0.3) as store:
        store.migrate()
        with store.connection():  # the only connection, lent through the public seam
            held = store.pool_stats()
            report = check_health(store)
        assert held.size == 1 and held.idle == 0 and held.exhausted
        assert report.status == "unhealthy"
        assert "ConnectionPoolExhausted" in (report.checks[0].details or "")
        after = store.pool_stats()
        assert after.idle == 1 and not after.exhausted and after.errors >= 1  # the timed-out request


def test_get_health_and_the_cli_use_the_stores_own_report(pg_url: str, pg_schema: str) -> None:
    from test_ops_cli import cli

    from eventcore_lab.stores.postgres import PostgresStore
    from eventcore_lab.web import create_app, serve

    with PostgresStore(pg_url, schema=pg_schema, pool_max=1, pool_timeout=0.3) as store:
        with serve(create_app(Executor(store))) as running, running.client() as http:
            up = http.get("/health")
            with store.connection():  # hold the only pooled connection
                starved = http.get("/health")
        assert up.status_code == 200
        assert set(up.json()["checks"]) == {"event_store", "migrations", "connection_pool"}
        assert "1 of 1 connections" in up.json()["checks"]["connection_pool"]["details"]
        assert starved.status_code == 503
        assert "ConnectionPoolExhausted" in starved.json()["checks"]["event_store"]["details"]
    fresh_schema = pg_schema + "_cli"
    try:
        unmigrated = cli("health", "--store", pg_url, "--schema", fresh_schema, "--json")
        assert unmigrated.returncode == 3, unmigrated.stderr
        checks = {c["name"]: c for c in json.loads(unmigrated.stdout)["checks"]}
        assert "eventcore-lab migrate" in checks["migrations"]["details"]
        assert cli("migrate", "--store", pg_url, "--schema", fresh_schema).returncode == 0
        assert cli("health", "--store", pg_url, "--schema", fresh_schema).returncode == 0
    finally:
        import psycopg

        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{fresh_schema}" CASCADE')


def test_wrappers_forward_health_to_the_store_they_wrap() -> None:
    from eventcore_lab.observability import ObservedStore
    from eventcore_lab.security import LimitedStore, MemoryKeyStore, ProtectedStore
    from eventcore_lab.stores import ChaosStore

    inner = MemoryStore()
    bank_history(Executor(inner), accounts=2, rounds=1)
    wrappers = [
        ObservedStore(inner, []),
        ChaosStore(inner, failure_probability=1.0, latency=None),  # faults are for commands, not health
        LimitedStore(inner),
        ProtectedStore(inner, MemoryKeyStore()),
    ]
    for wrapper in wrappers:
        health = wrapper.health()
        assert health.ok and health.store == "MemoryStore" and health.head == inner.head(), wrapper
    inner.close()
    assert not any(wrapper.health().ok for wrapper in wrappers)


def test_liveness_checks_nothing() -> None:
    assert liveness()["status"] == "alive"
