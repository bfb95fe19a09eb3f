"""Prometheus metrics with the manual's names and help texts, fed by observations.

Needs the ``metrics`` extra (``prometheus_client``). Labels are bounded on purpose: the manual labels
``eventcore_events_written_total`` and ``eventcore_stream_versions`` by ``stream_id``, but stream ids
are unbounded (one per account, order, ...), and every label value is a separate time series kept for
the life of the process. Here events written are labelled by command type, and there is no per-stream
version gauge; per-stream questions belong to SQL over the store (``eventcore-lab stats``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from .events import (
    CommandFailed,
    CommandRetried,
    CommandSucceeded,
    Observation,
    ProjectionProgress,
    StoreOperation,
)

#: The manual's default latency buckets (seconds).
DEFAULT_BUCKETS: tuple[float, ...] = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

#: Buckets for the retries-per-command histogram.
RETRY_BUCKETS: tuple[float, ...] = (0, 1, 2, 3, 5, 10)


class MetricsObserver:
    """An observer that keeps Prometheus metrics in its own registry (not the process-global one, so
    that several executors, tests or notebooks never collide).

    Serve them with :func:`serve_metrics` or read them with :meth:`text`. Pass ``pool_stats`` (a
    callable returning a dict with ``pool_size``, ``pool_max``, ``errors``) to export connection pool
    gauges; :func:`pool_stats_of` builds one for a PostgreSQL store.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
        pool_stats: Any = None,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        b = tuple(buckets)
        self.commands = Counter(
            "eventcore_commands_total", "Total number of commands executed", ["command_type"], registry=r
        )
        self.duration = Histogram(
            "eventcore_command_duration_seconds",
            "Command execution duration in seconds",
            ["command_type"],
            buckets=b,
            registry=r,
        )
        self.errors = Counter(
            "eventcore_command_errors_total",
            "Total number of command execution errors",
            ["command_type", "code"],
            registry=r,
        )
        self.conflicts = Counter(
            "eventcore_command_conflicts_total",
            "Concurrency conflicts met by commands, retried or not",
            ["command_type"],
            registry=r,
        )
        self.retries = Histogram(
            "eventcore_command_retries",
            "Number of retries per command",
            ["command_type"],
            buckets=RETRY_BUCKETS,
            registry=r,
        )
        self.events_written = Counter(
            "eventcore_events_written_total",
            "Total number of events written to the store",
            ["command_type"],
            registry=r,
        )
        self.store_latency = Histogram(
            "eventcore_event_store_latency_seconds",
            "Event store operation latency in seconds",
            ["operation"],
            buckets=b,
            registry=r,
        )
        self.store_errors = Counter(
            "eventcore_event_store_errors_total",
            "Event store operations that failed",
            ["operation"],
            registry=r,
        )
        self.active_streams = Gauge("eventcore_active_streams", "Number of active event streams", registry=r)
        self.projection_events = Counter(
            "eventcore_projection_events_processed_total",
            "Total events processed by projections",
            ["projection_name"],
            registry=r,
        )
        self.projection_lag = Gauge(
            "eventcore_projection_lag_seconds",
            "Projection lag behind latest events in seconds",
            ["projection_name"],
            registry=r,
        )
        self.projection_lag_events = Gauge(
            "eventcore_projection_lag_events",
            "Positions between a projection's checkpoint and the head of the log",
            ["projection_name"],
            registry=r,
        )
        if pool_stats is not None:
            r.register(_PoolCollector(pool_stats))
        self._per_command: dict[str, tuple[Any, Any, Any, Any, Any]] = {}
        self._per_operation: dict[str, Any] = {}

    #: Metrics need command ends and store calls only: the executor skips phase observations for it.
    wants_phases = False

    def _for_command(self, command_type: str) -> tuple[Any, Any, Any, Any, Any]:
        """The labelled children of one command type, looked up once (``labels()`` is not free)."""
        children = self._per_command.get(command_type)
        if children is None:
            children = self._per_command[command_type] = (
                self.commands.labels(command_type),
                self.duration.labels(command_type),
                self.retries.labels(command_type),
                self.events_written.labels(command_type),
                self.conflicts.labels(command_type),
            )
        return children

    def observe(self, observation: Observation) -> None:
        kind = type(observation)
        o: Any = observation
        if kind is StoreOperation:
            latency = self._per_operation.get(o.operation)
            if latency is None:
                latency = self._per_operation[o.operation] = self.store_latency.labels(o.operation)
            latency.observe(o.duration)
            if not o.ok:
                self.store_errors.labels(o.operation).inc()
            if o.new_streams:
                self.active_streams.inc(o.new_streams)
        elif kind is CommandSucceeded:
            commands, duration, retries, written, _ = self._for_command(o.command_type)
            commands.inc()
            duration.observe(o.duration)
            retries.observe(o.attempts - 1)
            if o.events_written:
                written.inc(o.events_written)
        elif kind is CommandFailed:
            commands, duration, retries, _, conflicts = self._for_command(o.command_type)
            commands.inc()
            duration.observe(o.duration)
            retries.observe(max(o.attempts - 1, 0))
            self.errors.labels(o.command_type, o.error_code).inc()
            if o.conflict:
                conflicts.inc()
        elif kind is CommandRetried:
            if o.conflict:
                self._for_command(o.command_type)[4].inc()
        elif kind is ProjectionProgress:
            if o.events:
                self.projection_events.labels(o.projection).inc(o.events)
            self.projection_lag.labels(o.projection).set(o.lag_seconds)
            self.projection_lag_events.labels(o.projection).set(o.lag_events)

    def set_active_streams(self, count: int) -> None:
        """Start the active-streams gauge from a known count (new streams are added as they appear)."""
        self.active_streams.set(count)

    def text(self) -> str:
        """The metrics in the Prometheus text exposition format."""
        return generate_latest(self.registry).decode("utf-8")


class _PoolCollector:
    """Reads pool statistics at scrape time, so nothing polls the pool in between."""

    def __init__(self, stats: Any) -> None:
        self._stats = stats

    def collect(self) -> Any:
        stats = self._stats()
        size = GaugeMetricFamily("eventcore_connection_pool_size", "Database connection pool size")
        size.add_metric([], stats.get("pool_size", 0))
        yield size
        limit = GaugeMetricFamily("eventcore_connection_pool_max_size", "Largest allowed pool size")
        limit.add_metric([], stats.get("pool_max", 0))
        yield limit
        errors = CounterMetricFamily(
            "eventcore_connection_pool_errors", "Connection errors and timeouts seen by the pool"
        )
        errors.add_metric([], stats.get("errors", 0))
        yield errors


def pool_stats_of(store: Any) -> Any:
    """A pool-statistics callable for a store with a psycopg pool (PostgreSQL), else None."""
    pool = getattr(store, "_pool", None) or getattr(getattr(store, "inner", None), "_pool", None)
    if pool is None or not hasattr(pool, "get_stats"):
        return None

    def stats() -> dict[str, int]:
        raw = pool.get_stats()
        return {
            "pool_size": int(raw.get("pool_size", 0)),
            "pool_max": int(raw.get("pool_max", 0)),
            "errors": int(raw.get("connections_errors", 0)) + int(raw.get("requests_errors", 0)),
        }

    return stats


def serve_metrics(observer: MetricsObserver, port: int = 0, addr: str = "127.0.0.1") -> tuple[Any, int]:
    """Serve ``/metrics`` over HTTP on ``addr:port`` in a daemon thread (port 0: any free port).

    Returns ``(server, port)``; call ``server.shutdown()`` to stop.
    """
    from prometheus_client import start_http_server

    server, _thread = start_http_server(port, addr=addr, registry=observer.registry)
    return server, int(server.server_address[1])
