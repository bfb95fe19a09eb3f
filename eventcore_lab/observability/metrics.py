"""Prometheus metrics with the manual's names and help texts, fed by observations.

Needs the ``metrics`` extra (``prometheus_client``). Labels are bounded on purpose: the manual labels
``eventcore_events_written_total`` and ``eventcore_stream_versions`` by ``stream_id``, but stream ids
are unbounded (one per account, order, ...), and every label value is a separate time series kept for
the life of the process. Here events written are labelled by command type, and there is no per-stream
version gauge; per-stream questions belong to SQL over the store (``eventcore-lab stats``).
"""

from __future__ import annotations

import math
import threading
import time
from bisect import bisect_left
from collections.abc import Sequence
from threading import get_ident
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from ..core.errors import EventCoreError, InvalidArgument
from ..stores.base import PoolStatistics
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
    gauges; :func:`pool_stats_of` builds one for a store with a pool (PostgreSQL).

    Why counts are kept here and not in ``prometheus_client`` metric objects: each of their updates
    takes a lock, and a command made six of them, which cost a third of an in-memory command. The
    per-command and per-store-call series are counted instead in per-thread shards (see
    :class:`_Shard`: only the owning thread writes one, so the hot path is a few list additions with no
    lock) and summed into metric families when scraped. Projection progress (once per batch) and the
    active-streams gauge (once per new stream) stay ordinary ``prometheus_client`` metrics.
    """

    #: Metrics need command ends, retries and store calls only: the executor spares it command starts
    #: and phases.
    wants_phases = False

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
        pool_stats: Any = None,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.buckets = _check_buckets(buckets)
        self._shards: dict[int, _Shard] = {}
        self._shards_lock = threading.Lock()
        self._created: dict[Any, float] = {}  # series key -> when first seen (the `_created` samples)
        r.register(_ShardCollector(self))
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

    def _shard(self) -> _Shard:
        """This thread's shard. Thread ids are unique among live threads; a new thread that reuses a
        finished one's id continues its shard, which is still exact (the old one writes no more)."""
        ident = threading.get_ident()
        with self._shards_lock:
            shard = self._shards.get(ident)
            if shard is None:
                shard = self._shards[ident] = _Shard(len(self.buckets) + 1)
            return shard

    def _row(self, table: dict[str, list[float]], key: str, size: int, kind: str) -> list[float]:
        """A new series in one shard (slow path: the first time a thread sees a command type)."""
        row = table[key] = [0] * size
        with self._shards_lock:
            self._created.setdefault((kind, key), time.time())
        return row

    def observe(self, observation: Observation) -> None:
        kind = type(observation)
        o: Any = observation
        shard = self._shards.get(get_ident()) or self._shard()
        if kind is StoreOperation:
            row = shard.operations.get(o.operation) or self._row(
                shard.operations, o.operation, shard.operation_size, "operation"
            )
            duration = o.duration
            row[_SUM] += duration
            row[_BUCKETS + bisect_left(self.buckets, duration)] += 1
            if not o.ok:
                row[_ERRORS] += 1
            if o.new_streams:
                self.active_streams.inc(o.new_streams)
        elif kind is CommandSucceeded:
            row = shard.commands.get(o.command_type) or self._row(
                shard.commands, o.command_type, shard.command_size, "command"
            )
            duration = o.duration
            retries = o.attempts - 1
            row[_COUNT] += 1
            row[_SUM] += duration
            row[_BUCKETS + bisect_left(self.buckets, duration)] += 1
            row[_RETRIES] += retries
            row[shard.retry_offset + bisect_left(RETRY_BUCKETS, retries)] += 1
            row[_WRITTEN] += o.events_written
        elif kind is CommandFailed:
            row = shard.commands.get(o.command_type) or self._row(
                shard.commands, o.command_type, shard.command_size, "command"
            )
            retries = max(o.attempts - 1, 0)
            row[_COUNT] += 1
            row[_SUM] += o.duration
            row[_BUCKETS + bisect_left(self.buckets, o.duration)] += 1
            row[_RETRIES] += retries
            row[shard.retry_offset + bisect_left(RETRY_BUCKETS, retries)] += 1
            if o.conflict:
                row[_CONFLICTS] += 1
            key = (o.command_type, o.error_code)
            errors = shard.errors
            if key not in errors:
                with self._shards_lock:
                    self._created.setdefault(("error", key), time.time())
            errors[key] = errors.get(key, 0) + 1
        elif kind is CommandRetried:
            if o.conflict:
                row = shard.commands.get(o.command_type) or self._row(
                    shard.commands, o.command_type, shard.command_size, "command"
                )
                row[_CONFLICTS] += 1
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

    def _totals(self) -> tuple[dict[str, list[float]], dict[str, list[float]], dict[tuple[str, str], int]]:
        """Every shard summed: per command type, per store operation, per (command type, error code).

        Rows are laid out as in :class:`_Shard`; a scrape reads this. Shards are read while their
        threads may be writing: each value read is one the thread wrote (ints and floats are replaced
        whole), so a scrape may miss an observation being made, never count one twice or lose one.
        """
        with self._shards_lock:
            shards = list(self._shards.values())
        commands: dict[str, list[float]] = {}
        operations: dict[str, list[float]] = {}
        errors: dict[tuple[str, str], int] = {}
        for shard in shards:
            _add_rows(commands, shard.commands)
            _add_rows(operations, shard.operations)
            for key, count in shard.errors.copy().items():
                errors[key] = errors.get(key, 0) + count
        return commands, operations, errors


# Row layout of a shard's series. Commands: count, duration sum, retries sum, events written,
# conflicts, then the duration buckets, then the retry buckets. Store operations: errors, duration sum,
# the duration buckets (count is their total). Buckets are per bucket, not cumulative (cumulated when
# scraped), so an observation is one addition; the last one of each histogram is +Inf.
_COUNT, _ERRORS, _SUM, _RETRIES, _WRITTEN, _CONFLICTS = 0, 0, 1, 2, 3, 4
_BUCKETS = 5


class _Shard:
    """One thread's counts. Only the owning thread writes them, so updates need no lock."""

    __slots__ = ("command_size", "commands", "errors", "operation_size", "operations", "retry_offset")

    def __init__(self, duration_buckets: int) -> None:
        self.commands: dict[str, list[float]] = {}
        self.operations: dict[str, list[float]] = {}
        self.errors: dict[tuple[str, str], int] = {}
        self.retry_offset = _BUCKETS + duration_buckets
        self.command_size = self.retry_offset + len(RETRY_BUCKETS) + 1
        self.operation_size = _BUCKETS + duration_buckets


def _add_rows(into: dict[str, list[float]], rows: dict[str, list[float]]) -> None:
    for key, row in rows.copy().items():  # copies are single C calls: the owner may add a key meanwhile
        total = into.get(key)
        if total is None:
            into[key] = row[:]
        else:
            for i, value in enumerate(row[:]):
                total[i] += value


def _check_buckets(buckets: Sequence[float]) -> tuple[float, ...]:
    """Finite upper bounds in increasing order; +Inf is implied (a trailing one is dropped)."""
    bounds = [float(b) for b in buckets]
    if bounds and bounds[-1] == math.inf:
        bounds.pop()
    if not bounds or bounds != sorted(set(bounds)):
        raise InvalidArgument(
            f"histogram buckets must be increasing numbers, at least one; got {list(buckets)!r}"
        )
    return tuple(bounds)


def _histogram(
    family: HistogramMetricFamily,
    label: tuple[str, str],
    bounds: Sequence[float],
    counts: Sequence[float],
    total: float,
    created: float | None,
) -> None:
    """Add the histogram of one label value from per-bucket counts (cumulated here, as Prometheus wants)."""
    cumulative: list[tuple[str, float]] = []
    running = 0.0
    for bound, count in zip((*bounds, math.inf), counts, strict=True):
        running += count
        cumulative.append((floatToGoString(bound), running))
    family.add_metric([label[1]], cumulative, total)
    if created is not None:
        family.samples.append(Sample(family.name + "_created", dict([label]), created))


#: The families counted in shards: key -> (family class, name, the manual's help text, label names).
_SHARDED: dict[str, tuple[Any, str, str, tuple[str, ...]]] = {
    "total": (
        CounterMetricFamily,
        "eventcore_commands_total",
        "Total number of commands executed",
        ("command_type",),
    ),
    "duration": (
        HistogramMetricFamily,
        "eventcore_command_duration_seconds",
        "Command execution duration in seconds",
        ("command_type",),
    ),
    "failed": (
        CounterMetricFamily,
        "eventcore_command_errors_total",
        "Total number of command execution errors",
        ("command_type", "code"),
    ),
    "conflicts": (
        CounterMetricFamily,
        "eventcore_command_conflicts_total",
        "Concurrency conflicts met by commands, retried or not",
        ("command_type",),
    ),
    "retries": (
        HistogramMetricFamily,
        "eventcore_command_retries",
        "Number of retries per command",
        ("command_type",),
    ),
    "written": (
        CounterMetricFamily,
        "eventcore_events_written_total",
        "Total number of events written to the store",
        ("command_type",),
    ),
    "latency": (
        HistogramMetricFamily,
        "eventcore_event_store_latency_seconds",
        "Event store operation latency in seconds",
        ("operation",),
    ),
    "store_errors": (
        CounterMetricFamily,
        "eventcore_event_store_errors_total",
        "Event store operations that failed",
        ("operation",),
    ),
}


class _ShardCollector:
    """Turns the observer's shards into the manual's metric families when Prometheus scrapes."""

    def __init__(self, observer: MetricsObserver) -> None:
        self._observer = observer

    def describe(self) -> list[Any]:
        """The families without samples: the registry checks their names against its others (a second
        observer on the same registry is refused, as metric objects would be)."""
        return [kind(name, text, labels=list(labels)) for kind, name, text, labels in _SHARDED.values()]

    def collect(self) -> Any:
        o = self._observer
        commands, operations, errors = o._totals()
        created = dict(o._created) if _created_samples() else {}
        bounds = o.buckets
        retry_offset = _BUCKETS + len(bounds) + 1
        f = {
            key: kind(name, text, labels=list(labels)) for key, (kind, name, text, labels) in _SHARDED.items()
        }
        for name, row in sorted(commands.items()):
            when, label = created.get(("command", name)), ("command_type", name)
            f["total"].add_metric([name], row[_COUNT], created=when)
            _histogram(f["duration"], label, bounds, row[_BUCKETS:retry_offset], row[_SUM], when)
            _histogram(f["retries"], label, RETRY_BUCKETS, row[retry_offset:], row[_RETRIES], when)
            f["written"].add_metric([name], row[_WRITTEN], created=when)
            f["conflicts"].add_metric([name], row[_CONFLICTS], created=when)
        for key, count in sorted(errors.items()):
            f["failed"].add_metric(list(key), count, created=created.get(("error", key)))
        for name, row in sorted(operations.items()):
            when = created.get(("operation", name))
            _histogram(f["latency"], ("operation", name), bounds, row[_BUCKETS:], row[_SUM], when)
            if row[_ERRORS]:
                f["store_errors"].add_metric([name], row[_ERRORS], created=when)
        yield from f.values()


def _created_samples() -> bool:
    """Whether prometheus_client exports ``_created`` samples (its switch, on by default)."""
    from prometheus_client import metrics

    return bool(getattr(metrics, "_use_created", True))


class _PoolCollector:
    """Reads pool statistics at scrape time, so nothing polls the pool in between. A store closed
    since (or a failing read) leaves the pool series out of that scrape rather than failing it."""

    def __init__(self, stats: Any) -> None:
        self._stats = stats

    def collect(self) -> Any:
        try:
            stats = self._stats()
        except EventCoreError:
            return
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
    """A pool-statistics callable for a store with a connection pool (PostgreSQL, also behind
    wrappers such as ObservedStore or ChaosStore), else None. It reads ``store.pool_stats()``."""
    while not isinstance(store, PoolStatistics):
        store = getattr(store, "inner", None)  # unwrap ObservedStore, ChaosStore, ProtectedStore...
        if store is None:
            return None
    pooled: PoolStatistics = store

    def stats() -> dict[str, int]:
        pool = pooled.pool_stats()
        return {"pool_size": pool.size, "pool_max": pool.max_size, "errors": pool.errors}

    return stats


def serve_metrics(observer: MetricsObserver, port: int = 0, addr: str = "127.0.0.1") -> tuple[Any, int]:
    """Serve ``/metrics`` over HTTP on ``addr:port`` in a daemon thread (port 0: any free port).

    Returns ``(server, port)``; call ``server.shutdown()`` to stop.
    """
    from prometheus_client import start_http_server

    server, _thread = start_http_server(port, addr=addr, registry=observer.registry)
    return server, int(server.server_address[1])
