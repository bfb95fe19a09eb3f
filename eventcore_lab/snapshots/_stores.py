"""Where snapshots live: memory, a DuckDB connection, or a PostgreSQL schema (one row per fold and streams).

The state is pickled: it is whatever ``initial_state``/``apply`` build, often a dataclass or a dict, and
it only ever round-trips through the same process's code (the fold key guarantees that). Only load
snapshots from a database you trust, as with any pickle.
"""

from __future__ import annotations

import json
import pickle
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple, Protocol, runtime_checkable

from ..core.errors import InvalidFormat

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class Snapshot(NamedTuple):
    """Folded state after every event up to ``versions`` of the streams (and global ``position``)."""

    state: Any
    versions: dict[str, int]
    position: int


@runtime_checkable
class SnapshotStore(Protocol):
    def load(self, fold: str, streams: str) -> Snapshot | None: ...

    def save(self, fold: str, streams: str, snapshot: Snapshot) -> None: ...


def _ident(value: str, what: str) -> str:
    if not _IDENT.match(value):
        raise InvalidFormat(f"{what} must be a plain SQL identifier (letters, digits, _), got {value!r}")
    return value


def _encode(snapshot: Snapshot) -> tuple[bytes, str, int]:
    return (
        pickle.dumps(snapshot.state, protocol=pickle.HIGHEST_PROTOCOL),
        json.dumps(snapshot.versions),
        snapshot.position,
    )


def _decode(state: bytes, versions: str, position: int) -> Snapshot | None:
    try:
        return Snapshot(
            pickle.loads(state), {str(k): int(v) for k, v in json.loads(versions).items()}, int(position)
        )
    except Exception:  # an unreadable snapshot is a missing one: the fold starts from scratch
        return None


class MemorySnapshots:
    """Snapshots in a dict (tests, notebooks, one process)."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], tuple[bytes, str, int]] = {}
        self._lock = threading.Lock()

    def load(self, fold: str, streams: str) -> Snapshot | None:
        row = self._rows.get((fold, streams))
        return None if row is None else _decode(*row)

    def save(self, fold: str, streams: str, snapshot: Snapshot) -> None:
        with self._lock:
            self._rows[(fold, streams)] = _encode(snapshot)

    def __len__(self) -> int:
        return len(self._rows)


class DuckDBSnapshots:
    """Snapshots in a table of the DuckDB store's own file, written through ``DuckDBStore.connection()``."""

    def __init__(self, store: Any, *, table: str = "ec_snapshots") -> None:
        self._store = store
        self._table = _ident(table, "snapshot table name")
        self._run(
            f"CREATE TABLE IF NOT EXISTS {self._table} (fold VARCHAR NOT NULL, streams VARCHAR NOT NULL, "
            "state BLOB NOT NULL, versions VARCHAR NOT NULL, position BIGINT NOT NULL, "
            "PRIMARY KEY (fold, streams))"
        )

    def _run(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        with self._store.connection() as cursor:
            return list(cursor.execute(sql, params or []).fetchall())

    def load(self, fold: str, streams: str) -> Snapshot | None:
        rows = self._run(
            f"SELECT state, versions, position FROM {self._table} WHERE fold = ? AND streams = ?",
            [fold, streams],
        )
        return _decode(bytes(rows[0][0]), rows[0][1], rows[0][2]) if rows else None

    def save(self, fold: str, streams: str, snapshot: Snapshot) -> None:
        state, versions, position = _encode(snapshot)
        self._run(
            f"INSERT INTO {self._table} VALUES (?, ?, ?, ?, ?) ON CONFLICT (fold, streams) DO UPDATE SET "
            "state = excluded.state, versions = excluded.versions, position = excluded.position",
            [fold, streams, state, versions, position],
        )


class PostgresSnapshots:
    """Snapshots in a table of a PostgreSQL schema (usually the store's), shared by every process.

    Give it the PostgresStore (``PostgresSnapshots(store)``: the table goes into the store's schema and
    each call borrows one of the store's pooled connections) or a DSN and a schema (one own connection).
    A save never moves a snapshot backwards: a slower process that folded older versions keeps the newer
    snapshot another process already saved. The table is created only when missing, so a role without
    CREATE rights works on a schema prepared for it.
    """

    def __init__(self, dsn: Any, *, schema: str | None = None, table: str = "ec_snapshots") -> None:
        import psycopg

        self._store: Any = None
        self._conn: Any = None
        if isinstance(dsn, str):
            self._conn = psycopg.connect(dsn, autocommit=True)
            schema = schema or "public"
        elif hasattr(dsn, "connection") and hasattr(dsn, "schema"):
            if schema is not None and schema != dsn.schema:
                raise InvalidFormat(f"schema {schema!r} differs from the store's schema {dsn.schema!r}")
            self._store, schema = dsn, dsn.schema
        else:
            raise InvalidFormat(f"PostgresSnapshots needs a DSN or a PostgresStore, got {type(dsn).__name__}")
        self._lock = threading.Lock()
        schema = _ident(schema, "schema name")
        self._table = f"{schema}.{_ident(table, 'snapshot table name')}"
        with self._connection() as conn:
            if conn.execute("SELECT to_regclass(%s) IS NULL", (self._table,)).fetchone()[0]:
                conn.execute(
                    f"CREATE SCHEMA IF NOT EXISTS {schema}; CREATE TABLE IF NOT EXISTS {self._table} ("
                    "fold TEXT NOT NULL, streams TEXT NOT NULL, state BYTEA NOT NULL, "
                    "versions TEXT NOT NULL, position BIGINT NOT NULL, PRIMARY KEY (fold, streams))"
                )

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        if self._store is not None:
            with self._store.connection() as conn:
                yield conn
        else:
            with self._lock:
                yield self._conn

    def load(self, fold: str, streams: str) -> Snapshot | None:
        with self._connection() as conn:
            row = conn.execute(
                f"SELECT state, versions, position FROM {self._table} WHERE fold = %s AND streams = %s",
                (fold, streams),
            ).fetchone()
        return None if row is None else _decode(bytes(row[0]), row[1], row[2])

    def save(self, fold: str, streams: str, snapshot: Snapshot) -> None:
        state, versions, position = _encode(snapshot)
        with self._connection() as conn:
            conn.execute(
                f"INSERT INTO {self._table} AS s VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT (fold, streams) DO UPDATE SET state = excluded.state, "
                "versions = excluded.versions, position = excluded.position "
                "WHERE excluded.position > s.position",
                (fold, streams, state, versions, position),
            )

    def close(self) -> None:
        """Close the own connection; a store's connections stay the store's."""
        if self._conn is not None:
            self._conn.close()
