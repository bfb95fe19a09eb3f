"""Health and readiness of a store and its projection runners: healthy, degraded or unhealthy.

``check_health(store, runners)`` runs one check per part, from the store's own ``store.health()``
(it answers; its schema has no pending migrations; its connection pool is not exhausted, which only
degrades) and from each projection runner (alive and not too far behind). The overall
status is the worst check: any ``unhealthy`` makes the whole unhealthy (not ready); ``degraded``
(a projection lagging past the warning threshold, the manual's 5 minutes) still serves. Liveness is
separate and checks nothing: the process answers.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from .stores.health import health_of

if TYPE_CHECKING:
    from .stores.base import EventStore

HEALTHY, DEGRADED, UNHEALTHY = "healthy", "degraded", "unhealthy"
_RANK = {HEALTHY: 0, DEGRADED: 1, UNHEALTHY: 2}


@dataclass(frozen=True)
class Check:
    """One part's status, a detail a person can act on, and how long the check took."""

    name: str
    status: str
    details: str | None
    duration_ms: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "details": self.details,
            "duration_ms": round(self.duration_ms, 3),
        }


@dataclass(frozen=True)
class HealthReport:
    status: str
    checks: tuple[Check, ...]
    timestamp: datetime

    @property
    def ready(self) -> bool:
        """Whether to send traffic: nothing is unhealthy (degraded still serves)."""
        return self.status != UNHEALTHY

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "ready": self.ready,
            "checks": [c.to_dict() for c in self.checks],
            "timestamp": self.timestamp.isoformat(),
            "version": _version(),
        }


def _version() -> str:
    try:
        return version("eventcore-lab")
    except PackageNotFoundError:
        return "unknown"


def _timed(name: str, probe: Any) -> Check:
    started = time.perf_counter()
    try:
        status, details = probe()
    except Exception as exc:
        status, details = UNHEALTHY, f"{type(exc).__name__}: {exc}"
    return Check(name, status, details, (time.perf_counter() - started) * 1000)


def _store_checks(store: Any) -> list[Check]:
    """The store's own report (``store.health()``, see :mod:`.stores.health`) as checks: it answers;
    its schema is the one this release writes; its connection pool is not exhausted (only degrades)."""
    health = health_of(store)
    if not health.ok:
        return [Check("event_store", UNHEALTHY, health.error, health.latency_ms)]
    answers = f"answers; head position {health.head}"  # the time it took is the check's duration
    checks = [Check("event_store", HEALTHY, answers, health.latency_ms)]
    current, latest = health.schema_version, health.latest_schema_version
    if current is not None and latest is not None:
        schema = f"schema at version {current}, this release writes {latest}"
        if health.migrations_pending:
            pending = (
                f"{health.migrations_pending} migration(s) pending ({schema}): run `eventcore-lab migrate`"
            )
            checks.append(Check("migrations", UNHEALTHY, pending, 0.0))
        elif current > latest:
            checks.append(Check("migrations", UNHEALTHY, f"{schema}: upgrade eventcore-lab", 0.0))
        else:
            checks.append(Check("migrations", HEALTHY, f"schema up to date (version {current})", 0.0))
    pool = health.pool
    if pool is not None:
        state = f"{pool.size} of {pool.max_size} connections, {pool.idle} idle, {pool.waiting} waiting"
        state += f", {pool.errors} errors"
        if pool.exhausted:
            advice = "exhausted: raise database.max_connections or lower the concurrency"
            checks.append(Check("connection_pool", DEGRADED, f"{state}; {advice}", 0.0))
        else:
            checks.append(Check("connection_pool", HEALTHY, state, 0.0))
    return checks


def _runner_probe(runner: Any, lag_warning: float, lag_critical: float) -> Any:
    def probe() -> tuple[str, str]:
        if getattr(runner, "error", None) is not None:
            return UNHEALTHY, f"stopped by an error: {runner.error}; fix it, then restart or rebuild"
        lag = runner.lag()
        text = f"{lag.events} event(s), {lag.seconds:.1f} s behind (position {lag.position} of {lag.head})"
        if lag.seconds > lag_critical:
            return UNHEALTHY, f"{text}; over {lag_critical:.0f} s"
        if lag.seconds > lag_warning:
            return DEGRADED, f"{text}; over {lag_warning:.0f} s"
        return HEALTHY, text

    return probe


def check_health(
    store: Any,
    runners: Iterable[Any] = (),
    *,
    lag_warning: float = 300.0,
    lag_critical: float = 1800.0,
) -> HealthReport:
    """Check ``store`` and each projection runner; never raises for an unhealthy part."""
    checks = _store_checks(store)
    for runner in runners:
        checks.append(_timed(f"projection:{runner.name}", _runner_probe(runner, lag_warning, lag_critical)))
    worst = max((c.status for c in checks), key=_RANK.__getitem__)
    return HealthReport(worst, tuple(checks), datetime.now(UTC))


def check_store_url(url: str, *, schema: str | None = None, connect_timeout: float = 5.0) -> HealthReport:
    """Open the store at ``url`` and check it; a store that cannot be opened is ``unhealthy``.

    For PostgreSQL, ``connect_timeout`` bounds how long an unreachable server can hold the check up.
    """
    started = time.perf_counter()
    store: EventStore
    try:
        if url.startswith(("postgresql://", "postgres://")):
            from .stores.postgres import PostgresStore

            options: dict[str, Any] = {"schema": schema} if schema else {}
            store = PostgresStore(url, connect_timeout=connect_timeout, pool_min=0, **options)
        else:
            from .stores import open_store

            store = open_store(url)
    except Exception as exc:
        failed = Check(
            "event_store", UNHEALTHY, f"cannot open the store: {exc}", (time.perf_counter() - started) * 1000
        )
        return HealthReport(UNHEALTHY, (failed,), datetime.now(UTC))
    try:
        return check_health(store)
    finally:
        store.close()


def liveness() -> dict[str, str]:
    """The process answers; deliberately checks no dependency (a database outage must not restart it)."""
    return {"status": "alive", "timestamp": datetime.now(UTC).isoformat()}


__all__ = [
    "DEGRADED",
    "HEALTHY",
    "UNHEALTHY",
    "Check",
    "HealthReport",
    "check_health",
    "check_store_url",
    "liveness",
]
