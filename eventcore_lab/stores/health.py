"""What a store says about itself when asked ``health()``: the result, and the rule for measuring it.

Every built-in store answers ``health()`` with a :class:`StoreHealth` from :func:`measure_health`, so
the rule is written once: the probe makes one real round trip (a head read, and for the durable
stores the recorded schema version), it is timed, and it never raises: an error, ``StoreClosed``
included, is reported as ``ok=False`` with its text. Health never migrates: a schema that is behind
is reported (``migrations_pending``) for an operator or a readiness probe to act on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import msgspec


class PoolStats(msgspec.Struct, frozen=True):
    """A connection pool at one moment: open connections, the limit, idle ones, requests waiting for
    one, and the connection errors and timed-out requests seen so far."""

    size: int
    max_size: int
    idle: int
    waiting: int
    errors: int

    @property
    def exhausted(self) -> bool:
        """Every connection is busy at the limit, or requests are queueing for one."""
        return self.waiting > 0 or (self.size >= self.max_size and self.idle == 0)


class StoreHealth(msgspec.Struct, frozen=True):
    """A store's answer to ``health()``.

    ``ok``: it answered; ``latency_ms``: how long the probe's round trip took; ``head``: the highest
    position (None when it did not answer); ``schema_version`` / ``latest_schema_version``: the schema
    recorded in the database and the one this release writes (None for stores without a schema, the
    memory store); ``pool``: the connection pool (PostgreSQL); ``error``: why not ok.
    """

    ok: bool
    store: str
    latency_ms: float
    head: int | None = None
    schema_version: int | None = None
    latest_schema_version: int | None = None
    pool: PoolStats | None = None
    error: str | None = None

    @property
    def migrations_pending(self) -> int:
        """Schema versions this release knows and the database has not applied (0 when up to date,
        or when the store has no schema)."""
        if self.schema_version is None or self.latest_schema_version is None:
            return 0
        return max(self.latest_schema_version - self.schema_version, 0)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = msgspec.to_builtins(self)
        data["migrations_pending"] = self.migrations_pending
        return data


def measure_health(store: str, probe: Callable[[], dict[str, Any]]) -> StoreHealth:
    """Run a store's ``probe`` (returning StoreHealth fields: head, schema versions, pool) and time
    it; never raises for the store's own failures."""
    started = time.perf_counter()
    try:
        found = probe()
    except Exception as exc:
        elapsed = (time.perf_counter() - started) * 1000
        return StoreHealth(False, store, elapsed, error=f"{type(exc).__name__}: {exc}")
    return StoreHealth(True, store, (time.perf_counter() - started) * 1000, **found)


def health_of(store: Any) -> StoreHealth:
    """``store.health()`` when the store has it (every built-in store and wrapper), else a timed head
    read: what wrappers forward to and what a store of one's own gets."""
    from .base import HealthCheck

    if isinstance(store, HealthCheck):
        return store.health()
    return measure_health(type(store).__name__, lambda: {"head": int(store.head())})
