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


def test_a_reachable_postgres_is_healthy(pg_url: str, pg_schema: str) -> None:
    report = check_store_url(pg_url, schema=pg_schema)
    assert report.status == "healthy", report.to_dict()
    from eventcore_lab.stores.postgres import PostgresStore

    store = PostgresStore(pg_url, schema=pg_schema)
    store.close()
    closed = check_health(store)
    assert closed.status == "unhealthy" and "closed" in (closed.checks[0].details or "")


def test_liveness_checks_nothing() -> None:
    assert liveness()["status"] == "alive"
