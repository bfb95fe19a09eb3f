"""Where a projection remembers how far it got: the last global position it applied.

A checkpoint is saved only after the events up to it were applied, so a restarted runner continues with
``read_all(after=checkpoint)`` and applies every event exactly once. The durable stores keep checkpoints in
their own database (a ``checkpoints`` table), so that the checkpoint lives and dies with the log it points
into.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from ..core.errors import CheckpointFailed, InvalidArgument, InvalidFormat
from ..stores.base import Checkpoints
from ..stores.rules import check_checkpoint_name, check_position

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


@runtime_checkable
class CheckpointStore(Protocol):
    """Load and save the last applied position of named projections."""

    def load(self, name: str) -> int:
        """The saved position of ``name``, 0 if none was saved."""
        ...

    def save(self, name: str, position: int) -> None:
        """Remember that ``name`` applied every event up to ``position``."""
        ...


def _check(name: str, position: int | None = None) -> None:
    """The same rules as the stores' own checkpoints (:mod:`eventcore_lab.stores.rules`)."""
    check_checkpoint_name(name)
    if position is not None:
        check_position(position, f"the checkpoint position of {name!r}")


def _identifier(value: str, what: str) -> str:
    if not _IDENT.match(value):
        raise InvalidFormat(f"{what} must be a plain SQL identifier (letters, digits, _), got {value!r}")
    return value


class MemoryCheckpoints:
    """Checkpoints in a dict: for tests, notebooks and projections that are rebuilt on every start."""

    def __init__(self, initial: Mapping[str, int] | None = None) -> None:
        self._positions: dict[str, int] = {}
        self._lock = threading.Lock()
        for name, position in (initial or {}).items():
            self.save(name, position)

    def load(self, name: str) -> int:
        _check(name)
        return self._positions.get(name, 0)

    def save(self, name: str, position: int) -> None:
        _check(name, position)
        with self._lock:
            self._positions[name] = position

    def all(self) -> dict[str, int]:
        return dict(self._positions)

    def __repr__(self) -> str:
        return f"MemoryCheckpoints({self._positions!r})"


class DuckDBCheckpoints:
    """Checkpoints in a ``checkpoints`` table of a DuckDB database (usually the store's own file).

    Works on a cursor of the given connection per call, because a DuckDB connection must not be used
    by two threads at once and a runner saves from its own thread.
    """

    def __init__(self, connection: Any, *, table: str = "checkpoints") -> None:
        self._connection = connection
        self._table = _identifier(table, "checkpoint table name")
        self._lock = threading.Lock()
        self._run(
            f"CREATE TABLE IF NOT EXISTS {self._table} ("
            "name VARCHAR PRIMARY KEY, position BIGINT NOT NULL, updated_at TIMESTAMPTZ NOT NULL)"
        )

    def _run(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        try:
            with self._lock:
                cursor = self._connection.cursor()
                try:
                    return list(cursor.execute(sql, params or []).fetchall())
                finally:
                    cursor.close()
        except Exception as exc:  # duckdb raises its own hierarchy; name the operation
            raise CheckpointFailed(f"checkpoint table {self._table!r}: {exc}") from exc

    def load(self, name: str) -> int:
        _check(name)
        rows = self._run(f"SELECT position FROM {self._table} WHERE name = ?", [name])
        return int(rows[0][0]) if rows else 0

    def save(self, name: str, position: int) -> None:
        _check(name, position)
        self._run(
            f"INSERT INTO {self._table} VALUES (?, ?, now()) "
            "ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at",
            [name, position],
        )

    def all(self) -> dict[str, int]:
        rows = self._run(f"SELECT name, position FROM {self._table} ORDER BY name")
        return {str(n): int(p) for n, p in rows}


class PostgresCheckpoints:
    """Checkpoints in a ``checkpoints`` table of a PostgreSQL schema (usually the store's schema).

    ``connect`` is a psycopg ``ConnectionPool`` (anything with ``.connection()``) or a DSN string.
    """

    def __init__(self, connect: Any, *, schema: str = "public", table: str = "checkpoints") -> None:
        self._connect = connect
        schema = _identifier(schema, "schema name")
        self._qualified = f"{schema}.{_identifier(table, 'checkpoint table name')}"
        self._run(
            f"CREATE SCHEMA IF NOT EXISTS {schema}; "
            f"CREATE TABLE IF NOT EXISTS {self._qualified} ("
            "name TEXT PRIMARY KEY, position BIGINT NOT NULL, updated_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )

    def _connection(self) -> Any:
        if isinstance(self._connect, str):
            import psycopg

            return psycopg.connect(self._connect, autocommit=True)
        return self._connect.connection()

    def _run(self, sql: str, params: tuple[Any, ...] | None = None) -> list[tuple[Any, ...]]:
        try:
            with self._connection() as conn:
                cursor = conn.execute(sql, params)
                rows = list(cursor.fetchall()) if cursor.description else []
                if not isinstance(self._connect, str):
                    conn.commit()
                return rows
        except Exception as exc:  # psycopg errors: name the table and the cause
            raise CheckpointFailed(f"checkpoint table {self._qualified}: {exc}") from exc

    def load(self, name: str) -> int:
        _check(name)
        rows = self._run(f"SELECT position FROM {self._qualified} WHERE name = %s", (name,))
        return int(rows[0][0]) if rows else 0

    def save(self, name: str, position: int) -> None:
        _check(name, position)
        self._run(
            f"INSERT INTO {self._qualified} (name, position) VALUES (%s, %s) "
            "ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = now()",
            (name, position),
        )

    def all(self) -> dict[str, int]:
        return {str(n): int(p) for n, p in self._run(f"SELECT name, position FROM {self._qualified}")}


class StoreCheckpoints:
    """Checkpoints kept by the event store itself (``checkpoint_load``/``checkpoint_save``), as the
    DuckDB and PostgreSQL stores do: a ``checkpoints`` table next to the events."""

    def __init__(self, store: object) -> None:
        if not isinstance(store, Checkpoints):
            raise InvalidArgument(
                f"{type(store).__name__} keeps no checkpoints (no checkpoint_load/checkpoint_save)"
            )
        self.store: Checkpoints = store

    def load(self, name: str) -> int:
        _check(name)
        return int(self.store.checkpoint_load(name))

    def save(self, name: str, position: int) -> None:
        _check(name, position)
        self.store.checkpoint_save(name, position)


def checkpoints_for(store: object) -> CheckpointStore:
    """The natural checkpoint store for ``store``: the store itself when it keeps checkpoints (the
    :class:`~eventcore_lab.stores.base.Checkpoints` capability: memory, DuckDB, PostgreSQL), else memory.
    """
    if isinstance(store, Checkpoints):
        return StoreCheckpoints(store)
    return MemoryCheckpoints()
