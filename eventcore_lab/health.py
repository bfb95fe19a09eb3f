"""Health and readiness of a store and its projection runners: healthy, degraded or unhealthy.

``check_health(store, runners)`` runs one check per part: the store answers (and, when it can say,
has no pending migrations), and each projection runner is alive and not too far behind. The overall
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


def _store_probe(store: Any) -> Any:
    def probe() -> tuple[str, str]:
        head = int(store.head())
        return HEALTHY, f"answers; head position {head}"

    return probe


def _migration_probe(store: Any) -> Any:
    def probe() -> tuple[str, str]:
        pending = store.migration_status().pending
        if pending:
            return UNHEALTHY, f"{len(pending)} migration(s) pending: run `eventcore-lab migrate`"
        return HEALTHY, "schema up to date"

    return probe


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
    checks = [_timed("event_store", _store_probe(store))]
    if callable(getattr(store, "migration_status", None)):
        checks.append(_timed("migrations", _migration_probe(store)))
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
