"""A durable read model in a DuckDB store's own file: tables, checkpoint and dead letters in one transaction.

DuckDB is one process's database, so there are no leases here: one runner owns the read model. What
carries over from the PostgreSQL model is the part that makes a crash harmless: the statements of a batch
and the checkpoint after it commit together, through the store's ``connection()``. DuckDB has no
savepoints, so the careful path (after a failed batch) commits event by event, each with its checkpoint.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..core.events import StoredEvent
from ._apply import RetryPolicy
from ._catalog import Names, check_lengths
from ._errors import ReadModelError
from ._tables import Sql, TableProjection, check_declaration

if TYPE_CHECKING:
    import pandas as pd

_BOOKKEEPING = [
    "CREATE TABLE IF NOT EXISTS ec_readmodels (name VARCHAR PRIMARY KEY, live INTEGER NOT NULL, "
    "version INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS ec_checkpoints (name VARCHAR NOT NULL, generation INTEGER NOT NULL, "
    "position BIGINT NOT NULL, PRIMARY KEY (name, generation))",
    "CREATE TABLE IF NOT EXISTS ec_dead_letters (name VARCHAR NOT NULL, generation INTEGER NOT NULL, "
    "position BIGINT NOT NULL, stream_id VARCHAR NOT NULL, version BIGINT NOT NULL, "
    "event_type VARCHAR NOT NULL, "
    "error VARCHAR NOT NULL, attempts INTEGER NOT NULL, PRIMARY KEY (name, generation, position))",
]


class DuckDBReadModel:
    """The read model of a :class:`TableProjection` in the tables of a DuckDB store (``DuckDBStore``).

    ``run_until_caught_up()`` applies the log after the checkpoint; ``frame(table)`` and ``query(...)``
    read the live generation; ``rebuild()`` builds a new generation and switches the views atomically.
    """

    def __init__(
        self,
        store: Any,
        projection: TableProjection,
        *,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not callable(getattr(store, "connection", None)):
            raise ReadModelError(f"{type(store).__name__} lends no connection(): a DuckDBStore is needed")
        self.store = store
        self.projection = check_declaration(projection)
        self.name = projection.name
        self.tables = list(projection.tables)
        check_lengths(self.name, self.tables)
        self.names = Names("main", self.name)
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        #: events applied and dead-lettered by this object
        self.applied = 0
        self.dead = 0
        with store.connection() as cur:
            for statement in _BOOKKEEPING:
                cur.execute(statement)
            row = cur.execute("SELECT version FROM ec_readmodels WHERE name = ?", [self.name]).fetchone()
            if row is None:
                cur.execute("BEGIN")
                cur.execute("INSERT INTO ec_readmodels VALUES (?, 1, ?)", [self.name, projection.version])
                self._create(cur, 1, projection)
                self._point_views(cur, 1, self.tables)
                cur.execute("COMMIT")

    def __repr__(self) -> str:
        return f"<DuckDBReadModel {self.name!r} at position {self.position()}>"

    def _create(self, cur: Any, generation: int, projection: TableProjection) -> None:
        for table, columns in projection.tables.items():
            cur.execute(f"DROP TABLE IF EXISTS {self.names.table(generation, table)}")
            cur.execute(f"CREATE TABLE {self.names.table(generation, table)} ({columns})")
        cur.execute("DELETE FROM ec_checkpoints WHERE name = ? AND generation = ?", [self.name, generation])
        cur.execute("INSERT INTO ec_checkpoints VALUES (?, ?, 0)", [self.name, generation])

    def _point_views(self, cur: Any, generation: int, tables: list[str]) -> None:
        for table in tables:
            cur.execute(
                f"CREATE OR REPLACE VIEW {self.names.view(table)} AS "
                f"SELECT * FROM {self.names.table(generation, table)}"
            )

    def _live(self, cur: Any) -> tuple[int, int]:
        row = cur.execute("SELECT live, version FROM ec_readmodels WHERE name = ?", [self.name]).fetchone()
        return int(row[0]), int(row[1])

    def _checkpoint(self, cur: Any, generation: int) -> int:
        row = cur.execute(
            "SELECT position FROM ec_checkpoints WHERE name = ? AND generation = ?", [self.name, generation]
        ).fetchone()
        return int(row[0]) if row else 0

    # -- reading ----------------------------------------------------------------------------------------

    def live_generation(self) -> int:
        with self.store.connection() as cur:
            return self._live(cur)[0]

    def position(self, generation: int | None = None) -> int:
        with self.store.connection() as cur:
            return self._checkpoint(cur, self._live(cur)[0] if generation is None else generation)

    def query(self, text: str, *params: Any) -> list[tuple[Any, ...]]:
        rendered = text.format_map({t: self.names.view(t) for t in self.tables})
        with self.store.connection() as cur:
            return list(cur.execute(rendered, list(params)).fetchall())

    def frame(self, table: str) -> pd.DataFrame:
        if table not in self.tables:
            raise ReadModelError(f"read model {self.name!r} has no table {table!r}; it has {self.tables}")
        with self.store.connection() as cur:
            return cur.execute(f"SELECT * FROM {self.names.view(table)}").df()

    def dead_letters(self) -> pd.DataFrame:
        with self.store.connection() as cur:
            return cur.execute(
                "SELECT position, stream_id, version, event_type, error, attempts FROM ec_dead_letters "
                "WHERE name = ? AND generation = ? ORDER BY position",
                [self.name, self._live(cur)[0]],
            ).df()

    # -- applying ---------------------------------------------------------------------------------------

    def run_until_caught_up(self, *, batch_size: int = 1000, until: int | None = None) -> int:
        """Apply every event after the checkpoint up to the head (or position ``until``); return how many
        were applied."""
        before = self.applied
        with self.store.connection() as cur:
            generation, version = self._live(cur)
        if version != self.projection.version:
            raise ReadModelError(
                f"read model {self.name!r} was built by fold version {version}, this code has version "
                f"{self.projection.version}: rebuild it before running this version"
            )
        self._catch_up(self.projection, generation, batch_size, until)
        return self.applied - before

    def _catch_up(
        self, projection: TableProjection, generation: int, batch_size: int, until: int | None = None
    ) -> None:
        mapping = self.names.mapping(generation, list(projection.tables))
        while True:
            events = self.store.read_all(after=self.position(generation), limit=batch_size)
            if until is not None:
                events = [e for e in events if e.position <= until]
            if not events:
                return
            with self.store.connection() as cur:
                cur.execute("BEGIN")
                try:
                    self._apply(cur, projection, mapping, events)
                    self._save(cur, generation, events[-1].position)
                    cur.execute("COMMIT")
                    self.applied += len(events)
                    continue
                except Exception:  # some event failed: undo the batch, then go event by event
                    cur.execute("ROLLBACK")
                for event in events:
                    self._careful(cur, projection, mapping, generation, event)

    def _apply(
        self, cur: Any, projection: TableProjection, mapping: dict[str, str], events: Sequence[StoredEvent]
    ) -> None:
        for event in events:
            for statement in projection.statements(event):
                cur.execute(_render(statement, mapping), list(statement.params))

    def _save(self, cur: Any, generation: int, position: int) -> None:
        cur.execute(
            "UPDATE ec_checkpoints SET position = ? WHERE name = ? AND generation = ?",
            [position, self.name, generation],
        )

    def _careful(
        self,
        cur: Any,
        projection: TableProjection,
        mapping: dict[str, str],
        generation: int,
        event: StoredEvent,
    ) -> None:
        waits = self.retry.delays()
        while True:
            cur.execute("BEGIN")
            try:
                self._apply(cur, projection, mapping, [event])
                self._save(cur, generation, event.position)
                cur.execute("COMMIT")
                self.applied += 1
                return
            except Exception as exc:  # the projection's or DuckDB's error: retry, then dead-letter
                cur.execute("ROLLBACK")
                error = f"{type(exc).__name__}: {exc}"
            delay = next(waits, None)
            if delay is None:
                break
            self._sleep(delay)
        cur.execute("BEGIN")
        cur.execute(
            "INSERT OR REPLACE INTO ec_dead_letters VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [self.name, generation, event.position, event.stream_id, event.version, event.event_type, error,
             self.retry.retries + 1],
        )  # fmt: skip
        self._save(cur, generation, event.position)
        cur.execute("COMMIT")
        self.dead += 1

    # -- blue/green -------------------------------------------------------------------------------------

    def rebuild(self, projection: TableProjection | None = None, *, batch_size: int = 5000) -> int:
        """Replay the log into a new generation, then switch the views and the live row in one transaction."""
        fresh = check_declaration(projection or self.projection)
        if type(fresh).name != self.name:
            raise ReadModelError(f"{type(fresh).__name__} is not a projection of read model {self.name!r}")
        tables = list(fresh.tables)
        check_lengths(self.name, tables)
        with self.store.connection() as cur:
            old = self._live(cur)[0]
            generation = old + 1
            self._create(cur, generation, fresh)
        self._catch_up(fresh, generation, batch_size)
        with self.store.connection() as cur:
            cur.execute("BEGIN")
            for table in self.tables:
                cur.execute(f"DROP VIEW IF EXISTS {self.names.view(table)}")
            self._point_views(cur, generation, tables)
            cur.execute(
                "UPDATE ec_readmodels SET live = ?, version = ? WHERE name = ?",
                [generation, fresh.version, self.name],
            )
            cur.execute("COMMIT")
            for table in self.tables:
                cur.execute(f"DROP TABLE IF EXISTS {self.names.table(old, table)}")
        self.projection, self.tables = fresh, tables
        return generation


def _render(statement: Sql, mapping: dict[str, str]) -> str:
    try:
        return statement.text.format_map(mapping)
    except (KeyError, IndexError, ValueError) as exc:
        raise ReadModelError(
            f"statement {statement.text!r} names a table that is not declared ({exc}); "
            f"declared: {sorted(mapping)}"
        ) from None
