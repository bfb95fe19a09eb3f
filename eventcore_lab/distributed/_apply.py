"""Applying events to a table projection inside an open transaction: fast path, careful path, dead letters.

The fast path sends every statement of a batch in one pipeline. If anything fails, the caller rolls the
transaction back and runs the batch again on the careful path: each event in its own savepoint, retried
with backoff, and written to the dead-letter table with its error when it still fails. A bad event
therefore costs one slower batch, never a stuck runner or a half-applied event.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..core.errors import InvalidFormat
from ..core.events import StoredEvent
from ._catalog import Names
from ._errors import ReadModelError
from ._tables import Sql, TableProjection, to_pyformat


@dataclass(frozen=True)
class RetryPolicy:
    """How often an event is tried again, and how long to wait, before it becomes a dead letter."""

    retries: int = 2
    backoff: float = 0.01
    factor: float = 2.0
    max_delay: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.retries, int) or self.retries < 0:
            raise InvalidFormat(f"retries must be an int >= 0, got {self.retries!r}")
        if self.backoff < 0 or self.factor < 1 or self.max_delay < 0:
            raise InvalidFormat("backoff and max_delay must be >= 0 and factor >= 1")

    def delays(self) -> Iterator[float]:
        """The waits before each retry: backoff, backoff*factor, ... capped at max_delay."""
        delay = self.backoff
        for _ in range(self.retries):
            yield min(delay, self.max_delay)
            delay *= self.factor


class Rendered:
    """Turns a projection's statements into psycopg statements for one generation (cached per text)."""

    def __init__(self, mapping: Mapping[str, str]) -> None:
        self._mapping = dict(mapping)
        self._cache: dict[str, str] = {}

    def __call__(self, statement: Sql) -> str:
        text = self._cache.get(statement.text)
        if text is None:
            try:
                text = to_pyformat(statement.text).format_map(self._mapping)
            except (KeyError, IndexError, ValueError) as exc:
                raise ReadModelError(
                    f"statement {statement.text!r} names a table that is not declared ({exc}); "
                    f"declared: {sorted(self._mapping)}"
                ) from None
            self._cache[statement.text] = text
        return text


@dataclass
class BatchOutcome:
    applied: int = 0
    dead: int = 0


def apply_fast(
    conn: Any, projection: TableProjection, render: Rendered, events: Sequence[StoredEvent]
) -> int:
    """Every event's statements in one pipeline; raises on the first failure (the caller rolls back)."""
    applied = 0
    with conn.pipeline(), conn.cursor() as cursor:
        for event in events:
            statements = projection.statements(event)
            for statement in statements:
                cursor.execute(render(statement), statement.params)
            applied += 1
    return applied


def apply_careful(
    conn: Any,
    projection: TableProjection,
    render: Rendered,
    events: Sequence[StoredEvent],
    *,
    names: Names,
    generation: int,
    partition: Callable[[StoredEvent], int],
    retry: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
) -> BatchOutcome:
    """Each event in a savepoint, retried with backoff; the ones that keep failing become dead letters."""
    outcome = BatchOutcome()
    for event in events:
        error = try_event(conn, projection, render, event, retry, sleep)
        if error is None:
            outcome.applied += 1
            continue
        outcome.dead += 1
        conn.execute(
            f"INSERT INTO {names.dead_letters} (name, generation, position, partition, stream_id, version, "
            "event_type, error, attempts, status) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'dead') "
            "ON CONFLICT (name, generation, position) DO UPDATE SET error = excluded.error, "
            "attempts = excluded.attempts, status = 'dead', updated_at = now()",
            (
                names.name,
                generation,
                event.position,
                partition(event),
                event.stream_id,
                event.version,
                event.event_type,
                error,
                retry.retries + 1,
            ),
        )
    return outcome


def try_event(
    conn: Any,
    projection: TableProjection,
    render: Rendered,
    event: StoredEvent,
    retry: RetryPolicy,
    sleep: Callable[[float], None],
) -> str | None:
    """Apply one event in a savepoint, with retries; None on success, else the last error as text."""
    waits = retry.delays()
    while True:
        try:
            with conn.transaction():  # a savepoint: a failed statement undoes only this event
                for statement in projection.statements(event):
                    conn.execute(render(statement), statement.params)
            return None
        except Exception as exc:  # the projection's or the database's error: retry, then dead-letter
            error = f"{type(exc).__name__}: {exc}"
        delay = next(waits, None)
        if delay is None:
            return error
        sleep(delay)
