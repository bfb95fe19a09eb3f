"""Connections and errors: the pool, the fail-fast probe, time-bounded statements, and the
translation of every driver error into the library's errors (never with a password in it).

libpq reports connection failures without a SQLSTATE, so whether one can succeed on retry is read from
its message (see :func:`_refused_for_good`).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Sequence
from typing import Any

import msgspec
import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import PoolTimeout

from ...core._deadline import remaining
from ...core.errors import (
    AppendConditionFailed,
    ConnectionFailed,
    ConnectionPoolExhausted,
    Timeout,
    TransactionError,
    VersionConflict,
)
from ...core.events import ExpectedVersion
from ..rules import check_open
from ._base import _PostgresBase

#: Environment variable read when no DSN is given.
DSN_ENV = "EVENTCORE_DATABASE_URL"


_CONFLICT = "ECV01"
_CONDITION_FAILED = "ECA01"


_IMMUTABLE = "ECI01"


_TIMEOUT_STATES = {"57014", "55P03"}  # cancelled (statement_timeout), lock_timeout


_RETRIABLE_STATES = {"57014", "55P03", "40001", "40P01"}  # cancelled, lock timeout, serialization, deadlock


def _configure(conn: psycopg.Connection[Any]) -> None:
    conn.execute("SET TIME ZONE 'UTC'")


def _describe(dsn: str) -> str:
    """``user@host:port/dbname`` for messages: never the password."""
    try:
        info = conninfo_to_dict(dsn)
    except psycopg.Error as exc:
        text = _redact(str(exc).strip())
        raise ConnectionFailed(f"invalid PostgreSQL DSN: {text}", retriable=False) from type(exc)(text)
    host = info.get("host") or info.get("hostaddr") or os.environ.get("PGHOST") or "localhost"
    port = info.get("port") or os.environ.get("PGPORT") or "5432"
    dbname = info.get("dbname") or os.environ.get("PGDATABASE") or "(default database)"
    user = info.get("user") or os.environ.get("PGUSER")
    return f"{str(user) + '@' if user else ''}{host}:{port}/{dbname}"


def _lock_timeout(budget: float) -> str:
    """The time left to a command as a PostgreSQL lock_timeout (at least 1 ms: 0 would mean none)."""
    return f"{max(1, int(budget * 1000))}ms"


#: Refusals a server sends while starting, stopping or full: connecting again later may work.
_TRANSIENT_REFUSALS = (
    "starting up",
    "shutting down",
    "recovery mode",
    "not yet accepting connections",
    "not accepting connections",
    "too many clients",
    "too many connections",
    "connection slots are reserved",
)


#: Client-side failures that no retry can fix: the DSN asks for something this server never does.
_PERMANENT_CLIENT_FAILURES = (
    "does not support SSL",
    "no password supplied",
    "invalid sslmode",
    "invalid connection option",
    "invalid integer value",
)


def _refused_for_good(message: str) -> bool:
    """Whether a failed connection attempt can never succeed with the same DSN.

    libpq reports connection failures without a SQLSTATE, so this reads its message: a server that
    answered ``FATAL`` (unknown database or role, failed authentication, bad option) refused this DSN
    and will again, unless it was only starting, stopping or full; refused, unreachable or timed-out
    connections may work later.
    """
    if "FATAL:" in message:
        return not any(phrase in message for phrase in _TRANSIENT_REFUSALS)
    return any(phrase in message for phrase in _PERMANENT_CLIENT_FAILURES)


def _redact(text: str) -> str:
    """Remove anything that looks like a password (URL user info, ``password=...``) from ``text``."""
    text = re.sub(r"(://[^:/@\s]*):[^@\s]*@", r"\1:***@", text)
    return re.sub(r"(password\s*=\s*)('[^']*'|\S+)", r"\1***", text, flags=re.IGNORECASE)


class _ConnectionMixin(_PostgresBase):
    """Pooled connections, bounded statements and error translation."""

    def _probe(self) -> None:
        try:
            psycopg.connect(self._dsn, **self._connect_kwargs).close()
        except psycopg.Error as exc:
            cause = type(exc)(self._scrub(exc))  # chained without anything secret it may carry
            if isinstance(exc, psycopg.ProgrammingError):  # malformed DSN: retrying cannot help
                raise ConnectionFailed(
                    f"invalid PostgreSQL DSN for {self._where}: {self._scrub(exc)}", retriable=False
                ) from cause
            permanent = _refused_for_good(str(exc))
            hint = " (the server refused this DSN; retrying will not help)" if permanent else ""
            raise ConnectionFailed(
                f"cannot connect to PostgreSQL at {self._where}: {self._scrub(exc)}{hint}",
                retriable=not permanent,
            ) from cause

    def _scrub(self, exc: BaseException) -> str:
        """The error text without the password, should libpq ever echo it."""
        text = _redact(str(exc).strip())
        with contextlib.suppress(psycopg.Error):
            password = conninfo_to_dict(self._dsn).get("password")
            if password:
                text = text.replace(str(password), "***")
        return text

    @contextlib.contextmanager
    def _connection(self, budget: float | None = None) -> Iterator[psycopg.Connection[Any]]:
        """A pooled autocommit connection; database errors leave as EventCoreErrors.

        ``budget`` is the time left to the calling command: waiting for a connection stops then, and a
        statement cancelled by the server-side timeouts :meth:`_run` sets becomes :class:`Timeout`.
        """
        self._check_open()
        wait = self._pool_timeout if budget is None else max(0.001, min(budget, self._pool_timeout))
        try:
            with self._pool.connection(timeout=wait) as conn:
                yield conn
        except PoolTimeout:
            if budget is not None and wait < self._pool_timeout:
                raise Timeout(
                    f"no PostgreSQL connection became free within the {budget:.3f} s left to the command"
                ) from None
            raise ConnectionPoolExhausted(
                f"no PostgreSQL connection became free within {self._pool_timeout} s "
                f"(pool_max={self._pool_max}); raise pool_max or pool_timeout, or lower the concurrency"
            ) from None
        except psycopg.Error as exc:
            raise self._translate(exc, budget) from exc

    def _run(self, query: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Run one statement and return its rows, within the running command's deadline if any.

        Under a deadline (see ``core._deadline``) callers pass the ``*_within`` variant of their
        statement, which sets the time left as the call's lock timeout (see migration 2); here, waiting
        for a pooled connection is bounded too, and a timeout becomes :class:`Timeout`.
        """
        budget = remaining()
        if budget is not None and budget <= 0:
            raise Timeout("the command's time budget ran out before its store call; nothing was written")
        with self._connection(budget) as conn:
            return conn.execute(query, params).fetchall()

    def _check_open(self) -> None:
        check_open(self._closed.is_set(), f"the PostgresStore of schema {self.schema!r} at {self._where}")

    def _translate(self, exc: psycopg.Error, budget: float | None = None) -> Exception:
        state = exc.sqlstate
        if budget is not None and state in _TIMEOUT_STATES:
            return Timeout(
                f"PostgreSQL stopped a store call at the end of the {budget:.3f} s left to the command "
                f"({self._scrub(exc)}); nothing was written"
            )
        if state == _CONFLICT:
            detail = msgspec.json.decode(exc.diag.message_detail or "{}")
            return VersionConflict(
                {
                    sid: (str(ExpectedVersion(kind, version)), actual)
                    for sid, (kind, version, actual) in detail.items()
                }
            )
        if state == _CONDITION_FAILED:  # the caller names the condition (see the writer)
            return AppendConditionFailed(None, None, int(exc.diag.message_detail or 0))
        if state == _IMMUTABLE:
            return TransactionError(f"refused by PostgreSQL: {exc.diag.message_primary}")
        if state is None or state.startswith("08") or state.startswith("57P"):
            return ConnectionFailed(f"lost the connection to PostgreSQL at {self._where}: {self._scrub(exc)}")
        if state in _RETRIABLE_STATES or state.startswith("40"):
            return TransactionError(f"transient PostgreSQL error {state}: {self._scrub(exc)}", retriable=True)
        return TransactionError(f"PostgreSQL error {state}: {self._scrub(exc)}")
