"""Observability without lock-in: observers on the executor, stores and projection runners.

>>> from eventcore_lab.observability import Recorder, ObservedStore
>>> recorder = Recorder()
>>> executor = Executor(ObservedStore(store, [recorder]), observers=[recorder])  # doctest: +SKIP

Prometheus (``MetricsObserver``, extra ``metrics``) and OpenTelemetry (``TracingObserver``, extra
``tracing``) live in their own modules and are imported only when asked for, so the core never needs them.
"""

from __future__ import annotations

from typing import Any

from .context import TRACE_KEYS, caused_by
from .events import (
    CommandFailed,
    CommandRetried,
    CommandStarted,
    CommandSucceeded,
    Observation,
    Observer,
    PhaseCompleted,
    ProjectionProgress,
    StoreOperation,
)
from .logs import JsonFormatter, LoggingObserver, configure_logging
from .recorder import Recorder
from .store import ObservedStore

__all__ = [
    "TRACE_KEYS",
    "CommandFailed",
    "CommandRetried",
    "CommandStarted",
    "CommandSucceeded",
    "Dashboard",
    "JsonFormatter",
    "LoggingObserver",
    "MetricsObserver",
    "Observation",
    "ObservedStore",
    "Observer",
    "PhaseCompleted",
    "ProjectionProgress",
    "Recorder",
    "StoreOperation",
    "TracingObserver",
    "caused_by",
    "configure_logging",
    "serve_metrics",
]


def __getattr__(name: str) -> Any:
    if name in ("MetricsObserver", "serve_metrics"):
        from . import metrics

        return getattr(metrics, name)
    if name == "Dashboard":
        from .dashboard import Dashboard

        return Dashboard
    if name == "TracingObserver":
        from .tracing import TracingObserver

        return TracingObserver
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
