"""The health check behind ``GET /health``.

By default the endpoint applies the library's rules (:mod:`eventcore_lab.health`) to the store and the
app's read model runners; another check plugs in as ``create_app(health=callable)``; the callable
returns ``{"status": "healthy" | "degraded" | "unhealthy", "checks": {...}}``. The endpoint answers 503
when the status is unhealthy (the manual always answers 200; a load balancer needs the status code) and
200 otherwise, degraded included (the service still answers).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..health import check_health

STATUSES = ("healthy", "degraded", "unhealthy")

HealthCheck = Callable[[], Mapping[str, Any]]


def library_health(store: Any, runners: Sequence[Any] = ()) -> HealthCheck:
    """The library's health rules (:func:`eventcore_lab.health.check_health`) in the endpoint's shape:
    the store, its migrations when it can say, and every read model runner's lag."""

    def check() -> Mapping[str, Any]:
        report = check_health(store, runners)
        return {
            "status": report.status,
            "checks": {
                c.name: {"status": c.status, "details": c.details, "duration_ms": round(c.duration_ms, 3)}
                for c in report.checks
            },
        }

    return check


def normalise(report: Any) -> dict[str, Any]:
    """A report with a known status; anything malformed counts as unhealthy."""
    if not isinstance(report, Mapping) or report.get("status") not in STATUSES:
        return {
            "status": "unhealthy",
            "checks": {"health_check": {"status": "unhealthy", "error": "malformed health report"}},
        }
    return {"status": report["status"], "checks": dict(report.get("checks") or {})}
