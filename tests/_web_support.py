"""Shared pieces of the web tests: stores by name, a probe domain whose commands fail on demand."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from eventcore_lab import (
    BusinessRuleViolation,
    Command,
    Event,
    EventToWrite,
    MemoryStore,
    emit,
    require,
    stream,
)
from eventcore_lab.core.command import CommandContext
from eventcore_lab.errors import ConnectionFailed, StreamNotFound, Unauthorized

#: Two "race" probes meet here after reading, so both decide on the same version: one must conflict.
RACE = threading.Barrier(2, timeout=5)
#: Set when a "slow" probe has started deciding, so a test can act while it is in flight.
SLOW_STARTED = threading.Event()


class ProbeWritten(Event):
    note: str


class Probe(Command[int]):
    """Writes one event, or fails the way ``case`` says: one command reaches every error row."""

    target: str = stream()
    case: str = "ok"
    note: str = ""

    def initial_state(self) -> int:
        return 0

    def handle(self, state: int, ctx: CommandContext) -> Sequence[EventToWrite]:
        match self.case:
            case "validation":
                require(False, "the probe refuses: validation")
            case "rule":
                raise BusinessRuleViolation("the probe refuses: business rule")
            case "missing":
                raise StreamNotFound(self.target)
            case "forbidden":
                raise Unauthorized("the probe refuses: not for you")
            case "unavailable":
                raise ConnectionFailed("database at 10.0.0.7 refused the connection (internal detail)")
            case "race":
                RACE.wait()
            case "slow":
                SLOW_STARTED.set()
                time.sleep(0.6)
            case "crash":
                raise RuntimeError("secret internal detail: password=hunter2")
        return [emit(self.target, ProbeWritten(note=self.note))]


@contextmanager
def open_named_store(
    kind: str, *, pg_url: str | None = None, schema: str | None = None, path: Any = None
) -> Iterator[Any]:
    """A store by name: ``memory``, ``duckdb`` (at ``path``) or ``postgres`` (in ``schema``)."""
    if kind == "memory":
        yield MemoryStore()
    elif kind == "duckdb":
        from eventcore_lab.stores.duckdb import DuckDBStore

        store = DuckDBStore(path)
        try:
            yield store
        finally:
            store.close()
    else:
        from eventcore_lab.stores.postgres import PostgresStore

        store = PostgresStore(pg_url, schema=schema, pool_max=12)
        try:
            yield store
        finally:
            store.close()
