"""HTTP Idempotency-Key: one execution per (principal, method, path, key), its 2xx answer replayed.

The manual's cache leaves four holes, closed here: entries expire after a TTL; keys are scoped to the
caller and endpoint; the request body is fingerprinted (same key, other body: refused); and a key being
executed is locked, so a concurrent duplicate waits for the first answer (up to ``wait`` seconds, then
409 REQUEST_IN_PROGRESS). Only 2xx answers are kept: after an error the key is released and a retry runs
again. A lock whose owner died is taken over after ``lock_timeout`` seconds.

The durable stores keep the keys in their own database (table ``idempotency_keys``), next to the events;
the memory store keeps them in memory.
"""

from __future__ import annotations

import asyncio
import enum
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.concurrency import run_in_threadpool


class Claim(enum.Enum):
    OWNER = "owner"  #: this request must execute and then complete() or release()
    REPLAY = "replay"  #: a stored answer exists: send it
    MISMATCH = "mismatch"  #: the key was used with another body
    BUSY = "busy"  #: another request holds the key


@dataclass(frozen=True)
class Stored:
    """A kept answer."""

    status: int
    body: bytes
    content_type: str


@dataclass(frozen=True)
class Outcome:
    claim: Claim
    token: str = ""
    stored: Stored | None = None


class IdempotencyStore(Protocol):
    """Where keys live. ``try_claim`` never waits for other requests; :func:`claim` adds the waiting."""

    def try_claim(self, scope: str, fingerprint: str, ttl: float, lock_timeout: float) -> Outcome: ...

    def complete(self, scope: str, token: str, stored: Stored) -> None: ...

    def release(self, scope: str, token: str) -> None: ...


async def claim(
    store: IdempotencyStore,
    scope: str,
    fingerprint: str,
    *,
    ttl: float,
    lock_timeout: float,
    wait: float,
) -> Outcome:
    """Claim ``scope``; while another request holds it, wait up to ``wait`` seconds for its answer.

    The waiting happens on the event loop, never in a worker thread: fifty duplicates waiting in
    threads would take every thread the first request needs to finish.
    """
    deadline = time.monotonic() + wait
    delay = 0.005
    while True:
        outcome = await run_in_threadpool(store.try_claim, scope, fingerprint, ttl, lock_timeout)
        remaining = deadline - time.monotonic()
        if outcome.claim is not Claim.BUSY or remaining <= 0:
            return outcome
        await asyncio.sleep(min(delay, remaining))
        delay = min(delay * 1.5, 0.1)


def _token() -> str:
    return secrets.token_hex(12)


@dataclass
class _Entry:
    fingerprint: str
    token: str
    expires_at: float
    locked_until: float
    stored: Stored | None = None


class MemoryIdempotency:
    """Keys in process memory, for the memory store (and tests)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def try_claim(self, scope: str, fingerprint: str, ttl: float, lock_timeout: float) -> Outcome:
        now = self._clock()
        with self._lock:
            entry = self._entries.get(scope)
            if entry is not None and (
                entry.expires_at <= now or (entry.stored is None and entry.locked_until <= now)
            ):
                entry = None
            if entry is None:
                token = _token()
                self._entries[scope] = _Entry(fingerprint, token, now + ttl, now + lock_timeout)
                return Outcome(Claim.OWNER, token)
            if entry.fingerprint != fingerprint:
                return Outcome(Claim.MISMATCH)
            if entry.stored is not None:
                return Outcome(Claim.REPLAY, stored=entry.stored)
            return Outcome(Claim.BUSY)

    def complete(self, scope: str, token: str, stored: Stored) -> None:
        with self._lock:
            entry = self._entries.get(scope)
            if entry is not None and entry.token == token:
                entry.stored = stored

    def release(self, scope: str, token: str) -> None:
        with self._lock:
            entry = self._entries.get(scope)
            if entry is not None and entry.token == token and entry.stored is None:
                del self._entries[scope]

    def __len__(self) -> int:
        return len(self._entries)


_TABLE = "idempotency_keys"


class DuckDBIdempotency:
    """Keys in the DuckDB store's own file, through ``DuckDBStore.connection()`` (which holds its lock)."""

    def __init__(self, store: Any, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock
        with store.connection() as con:
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {_TABLE} (scope VARCHAR PRIMARY KEY, fingerprint VARCHAR "
                "NOT NULL, token VARCHAR NOT NULL, expires_at DOUBLE NOT NULL, locked_until DOUBLE NOT "
                "NULL, status INTEGER, body BLOB, content_type VARCHAR)"
            )

    def try_claim(self, scope: str, fingerprint: str, ttl: float, lock_timeout: float) -> Outcome:
        now = self._clock()
        with self._store.connection() as con:
            row = con.execute(
                f"SELECT fingerprint, expires_at, locked_until, status, body, content_type FROM {_TABLE} "
                "WHERE scope = ?",
                [scope],
            ).fetchone()
            if row is not None:
                fp, expires_at, locked_until, status, body, content_type = row
                live = expires_at > now and (status is not None or locked_until > now)
                if live:
                    if fp != fingerprint:
                        return Outcome(Claim.MISMATCH)
                    if status is not None:
                        return Outcome(Claim.REPLAY, stored=Stored(status, bytes(body), content_type))
                    return Outcome(Claim.BUSY)
            token = _token()
            con.execute(
                f"INSERT OR REPLACE INTO {_TABLE} VALUES (?, ?, ?, ?, ?, NULL, NULL, NULL)",
                [scope, fingerprint, token, now + ttl, now + lock_timeout],
            )
            return Outcome(Claim.OWNER, token)

    def complete(self, scope: str, token: str, stored: Stored) -> None:
        with self._store.connection() as con:
            con.execute(
                f"UPDATE {_TABLE} SET status = ?, body = ?, content_type = ? WHERE scope = ? AND token = ?",
                [stored.status, stored.body, stored.content_type, scope, token],
            )

    def release(self, scope: str, token: str) -> None:
        with self._store.connection() as con:
            con.execute(
                f"DELETE FROM {_TABLE} WHERE scope = ? AND token = ? AND status IS NULL", [scope, token]
            )


class PostgresIdempotency:
    """Keys in the PostgreSQL store's schema, through ``PostgresStore.connection()``.

    A claim is one transaction: insert the key if new, then lock its row; times are the server's, so
    every process agrees on expiry.
    """

    def __init__(self, store: Any) -> None:
        from psycopg import sql

        self._store = store
        self._table = sql.Identifier(store.schema, _TABLE)
        with store.connection() as conn:
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (scope TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, "
                    "token TEXT NOT NULL, expires_at TIMESTAMPTZ NOT NULL, locked_until TIMESTAMPTZ NOT "
                    "NULL, status INTEGER, body BYTEA, content_type TEXT)"
                ).format(self._table)
            )

    def try_claim(self, scope: str, fingerprint: str, ttl: float, lock_timeout: float) -> Outcome:
        from psycopg import sql

        token = _token()
        with self._store.connection() as conn, conn.transaction():
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} VALUES (%s, %s, %s, now() + make_interval(secs => %s), "
                    "now() + make_interval(secs => %s), NULL, NULL, NULL) ON CONFLICT (scope) DO NOTHING"
                ).format(self._table),
                (scope, fingerprint, token, ttl, lock_timeout),
            )
            row = conn.execute(
                sql.SQL(
                    "SELECT token, fingerprint, expires_at > now(), locked_until > now(), status, body, "
                    "content_type FROM {} WHERE scope = %s FOR UPDATE"
                ).format(self._table),
                (scope,),
            ).fetchone()
            assert row is not None  # inserted or already there, and never deleted under the row lock
            owner, fp, unexpired, locked, status, body, content_type = row
            if owner == token:
                return Outcome(Claim.OWNER, token)
            if unexpired and (status is not None or locked):
                if fp != fingerprint:
                    return Outcome(Claim.MISMATCH)
                if status is not None:
                    return Outcome(Claim.REPLAY, stored=Stored(status, bytes(body), content_type))
                return Outcome(Claim.BUSY)
            conn.execute(
                sql.SQL(
                    "UPDATE {} SET fingerprint = %s, token = %s, expires_at = now() + make_interval(secs "
                    "=> %s), locked_until = now() + make_interval(secs => %s), status = NULL, body = NULL, "
                    "content_type = NULL WHERE scope = %s"
                ).format(self._table),
                (fingerprint, token, ttl, lock_timeout, scope),
            )
            return Outcome(Claim.OWNER, token)

    def complete(self, scope: str, token: str, stored: Stored) -> None:
        from psycopg import sql

        with self._store.connection() as conn:
            conn.execute(
                sql.SQL(
                    "UPDATE {} SET status = %s, body = %s, content_type = %s WHERE scope = %s AND token = %s"
                ).format(self._table),
                (stored.status, stored.body, stored.content_type, scope, token),
            )

    def release(self, scope: str, token: str) -> None:
        from psycopg import sql

        with self._store.connection() as conn:
            conn.execute(
                sql.SQL("DELETE FROM {} WHERE scope = %s AND token = %s AND status IS NULL").format(
                    self._table
                ),
                (scope, token),
            )


def idempotency_for(store: Any) -> IdempotencyStore:
    """Keys in the store's own database when it is DuckDB or PostgreSQL, else in memory."""
    from ..stores.duckdb import DuckDBStore

    if isinstance(store, DuckDBStore):
        return DuckDBIdempotency(store)
    try:
        from ..stores.postgres import PostgresStore
    except ImportError:  # no psycopg installed: it cannot be a PostgreSQL store
        return MemoryIdempotency()
    if isinstance(store, PostgresStore):
        return PostgresIdempotency(store)
    return MemoryIdempotency()
