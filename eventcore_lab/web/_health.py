"""The default health check behind ``GET /health``: one store ping.

Richer checks (per-projection lag, thresholds) plug in as ``create_app(health=callable)``; the callable
returns ``{"status": "healthy" | "degraded" | "unhealthy", "checks": {...}}``. The endpoint answers 503
when the status is unhealthy (the manual always answers 200; a load balancer needs the status code) and
200 otherwise, degraded included (the service still answers).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

STATUSES = ("healthy", "degraded", "unhealthy")

HealthCheck = Callable[[], Mapping[str, Any]]


def store_ping(store: Any) -> HealthCheck:
    """Healthy when ``store.head()`` answers, unhealthy (with the error's type) when it raises."""

    def check() -> Mapping[str, Any]:
        started = time.perf_counter()
        try:
            head = store.head()
        except Exception as exc:  # any failure of the store makes the service unhealthy
            return {
                "status": "unhealthy",
                "checks": {"event_store": {"status": "unhealthy", "error": type(exc).__name__}},
            }
        elapsed = round((time.perf_counter() - started) * 1000, 3)
        return {
            "status": "healthy",
            "checks": {"event_store": {"status": "healthy", "head": head, "latency_ms": elapsed}},
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
