"""A durable read model in PostgreSQL: table generations, checkpoints, frames, rebuilds, dead letters.

Readers go through views that always show the live generation. A rebuild fills a new generation beside the
live one and swaps the views in one transaction that also catches up the last events, while workers are
held back by a row lock on the read model's row, so a reader sees the old model or the new one, never a
half-built one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import psycopg
from psycopg import sql as pg_sql

from ..core.events import StoredEvent
from ..stores.base import EventStore
from ..stores.postgres import PostgresStore
from ._apply import BatchOutcome, Rendered, RetryPolicy, apply_careful, apply_fast, try_event
from ._catalog import BOOKKEEPING, Names, check_lengths
from ._errors import ReadModelError
from ._partitions import check_partitions, partition_of
from ._tables import TableProjection, check_declaration

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class RequeueResult:
    """What a re-queue did: dead letters applied now, and those that failed again (still dead)."""

    applied: list[int]
    failed: list[int]


class _LentConnection:
    """One of a PostgresStore's pooled connections, held until :meth:`close` gives it back to the pool.

    What the model, its workers and its rebuilds hold when the model runs on a store rather than a DSN;
    otherwise it behaves as the psycopg connection it wraps.
    """

    def __init__(self, store: PostgresStore) -> None:
        self._stack = ExitStack()
        self._conn = self._stack.enter_context(store.connection())
        self._returned = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    @property
    def closed(self) -> bool:
        return self._returned or bool(self._conn.closed)

    def close(self) -> None:
        self._returned = True
        self._stack.close()


class DurableReadModel:
    """The SQL home of one :class:`TableProjection`: ``partitions`` checkpoints, leases and tables.

    ``dsn`` is a PostgreSQL connection string, or the PostgresStore itself: then the model, each of its
    workers and each rebuild hold one of the store's pooled connections while they live (size
    ``pool_max`` for them), and ``schema`` defaults to the store's. ``schema`` holds the bookkeeping and
    the tables (usually the store's schema; "public" by default for a DSN).

    Creating the object only reads (plain SELECTs) when the read model is set up, so an application
    role without CREATE rights (see :func:`eventcore_lab.security.harden`) can run it. What is missing
    is created by :meth:`migrate` (DDL): creation calls it, unless ``migrate=False``, which raises
    ReadModelError instead. Set up once with the migration role, ``DurableReadModel(migration_dsn,
    projection, ...).migrate(grant_to="app_role")``; any number of processes may do so at once.
    """

    def __init__(
        self,
        dsn: str | PostgresStore,
        projection: TableProjection,
        *,
        schema: str | None = None,
        partitions: int = 1,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        migrate: bool = True,
    ) -> None:
        self.projection = check_declaration(projection)
        self.name = projection.name
        self.partitions = check_partitions(partitions)
        self.tables = list(projection.tables)
        check_lengths(self.name, self.tables)
        self._store = dsn if isinstance(dsn, PostgresStore) else None
        if self._store is not None and schema is not None and schema != self._store.schema:
            raise ReadModelError(f"schema {schema!r} differs from the store's schema {self._store.schema!r}")
        self.names = Names(schema or (self._store.schema if self._store is not None else "public"), self.name)
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._dsn = dsn if isinstance(dsn, str) else ""
        self._conn = self.connect()
        try:
            if not self.is_set_up():
                if not migrate:
                    raise ReadModelError(
                        f"read model {self.name!r} is not set up in schema {self.names.schema!r}: run "
                        "DurableReadModel(...).migrate() with the migration role first"
                    )
                self.migrate()
        except BaseException:
            self._conn.close()
            raise

    def __repr__(self) -> str:
        return f"<DurableReadModel {self.name!r} in {self.names.schema}, {self.partitions} partitions>"

    def connect(self) -> psycopg.Connection[Any]:
        """A connection of its own to the read model's database (workers hold one each): a new one for a
        DSN, one lent by the store's pool for a store (``close()`` gives it back)."""
        if self._store is not None:
            return cast("psycopg.Connection[Any]", _LentConnection(self._store))
        return psycopg.connect(self._dsn, autocommit=True)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> DurableReadModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- set-up ------------------------------------------------------------------------------------

    def is_set_up(self) -> bool:
        """Whether the bookkeeping, this model's row and its live views exist (plain SELECTs, no DDL).

        Raises ReadModelError when the model exists with another partition count."""
        n = self.names
        found = self._conn.execute("SELECT to_regclass(%s) IS NOT NULL", (n.readmodels,)).fetchone()
        if not (found and found[0]):
            return False
        row = self._conn.execute(
            f"SELECT partitions FROM {n.readmodels} WHERE name = %s", (self.name,)
        ).fetchone()
        if row is None:
            return False
        self._check_partitions(int(row[0]))
        needed = [n.checkpoints, n.leases, n.members, n.dead_letters] + [n.view(t) for t in self.tables]
        found = self._conn.execute(
            "SELECT bool_and(to_regclass(x) IS NOT NULL) FROM unnest(%s::text[]) AS x", (needed,)
        ).fetchone()
        return bool(found and found[0])

    def migrate(self, *, grant_to: str | None = None) -> None:
        """Create what is missing: bookkeeping, this model's row, tables and views (DDL: run it with the
        migration role, or any role with CREATE on the schema). ``grant_to`` names the application
        role that then reads and writes them (SELECT, INSERT, UPDATE, DELETE); idempotent."""
        try:
            self._ensure()
            if grant_to is not None:
                with self._conn.transaction():
                    self._grant(self._conn, grant_to, self.live_generation(), self.tables)
        except psycopg.errors.InsufficientPrivilege as exc:
            raise ReadModelError(
                f"read model {self.name!r} cannot be set up in schema {self.names.schema!r} by this role "
                f"({exc.diag.message_primary}): run migrate() with the migration role"
            ) from exc

    def _grant(self, conn: psycopg.Connection[Any], role: str, generation: int, tables: list[str]) -> None:
        """Let ``role`` use the bookkeeping and ``generation``'s tables and the views (no DDL rights)."""
        n = self.names
        who = pg_sql.Identifier(role)
        owned = [n.readmodels, n.checkpoints, n.leases, n.members, n.dead_letters]
        owned += [n.table(generation, t) for t in tables]
        conn.execute(pg_sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(pg_sql.Identifier(n.schema), who))
        for name in owned:
            conn.execute(pg_sql.SQL(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {name} TO {{}}").format(who))
        for table in tables:
            conn.execute(pg_sql.SQL(f"GRANT SELECT ON {n.view(table)} TO {{}}").format(who))

    def _check_partitions(self, partitions: int) -> None:
        if partitions != self.partitions:
            raise ReadModelError(
                f"read model {self.name!r} has {partitions} partitions, not {self.partitions}: the partition "
                "count is fixed when the read model is created"
            )

    def _ensure(self) -> None:
        n = self.names
        with self._conn.transaction():
            self._conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"ec_readmodel:{n.schema}",))
            found = self._conn.execute("SELECT to_regnamespace(%s) IS NOT NULL", (n.schema,)).fetchone()
            if not (found and found[0]):  # a schema owner without CREATE on the database may set up
                self._conn.execute(f"CREATE SCHEMA {n.schema}")
            self._conn.execute(BOOKKEEPING.format(s=n.schema))
            row = self._conn.execute(
                f"SELECT partitions FROM {n.readmodels} WHERE name = %s", (self.name,)
            ).fetchone()
            if row is None:
                self._conn.execute(
                    f"INSERT INTO {n.readmodels} (name, live, version, partitions) VALUES (%s, 1, %s, %s)",
                    (self.name, self.projection.version, self.partitions),
                )
                self._create_generation(self._conn, 1)
                self._point_views(self._conn, 1)
                self._conn.execute(
                    f"INSERT INTO {n.leases} (name, partition) "
                    "SELECT %s, g FROM generate_series(0, %s - 1) g",
                    (self.name, self.partitions),
                )
            else:
                self._check_partitions(int(row[0]))

    def _create_generation(
        self, conn: psycopg.Connection[Any], generation: int, projection: TableProjection | None = None
    ) -> None:
        for table, columns in (projection or self.projection).tables.items():
            conn.execute(f"DROP TABLE IF EXISTS {self.names.table(generation, table)}")
            conn.execute(f"CREATE TABLE {self.names.table(generation, table)} ({columns})")
        conn.execute(
            f"DELETE FROM {self.names.checkpoints} WHERE name = %s AND generation = %s",
            (self.name, generation),
        )
        conn.execute(
            f"INSERT INTO {self.names.checkpoints} (name, generation, partition, position) "
            "SELECT %s, %s, g, 0 FROM generate_series(0, %s - 1) g",
            (self.name, generation, self.partitions),
        )

    def _point_views(
        self, conn: psycopg.Connection[Any], generation: int, tables: list[str] | None = None
    ) -> None:
        for table in self.tables:
            conn.execute(f"DROP VIEW IF EXISTS {self.names.view(table)}")
        for table in tables or self.tables:
            conn.execute(
                f"CREATE VIEW {self.names.view(table)} AS SELECT * FROM {self.names.table(generation, table)}"
            )

    # -- reading -----------------------------------------------------------------------------------

    def live_generation(self) -> int:
        row = self._conn.execute(
            f"SELECT live FROM {self.names.readmodels} WHERE name = %s", (self.name,)
        ).fetchone()
        assert row is not None
        return int(row[0])

    def checkpoints(self, generation: int | None = None) -> dict[int, int]:
        """Partition -> last applied position, for ``generation`` (default: the live one)."""
        gen = self.live_generation() if generation is None else generation
        rows = self._conn.execute(
            f"SELECT partition, position FROM {self.names.checkpoints} WHERE name = %s AND generation = %s",
            (self.name, gen),
        ).fetchall()
        return {int(p): int(pos) for p, pos in rows}

    def position(self) -> int:
        """The position every partition of the live model has reached (the lowest checkpoint)."""
        return min(self.checkpoints().values())

    def view(self, table: str) -> str:
        """The qualified name of the view that shows ``table`` of the live generation (for your own SQL)."""
        if table not in self.tables:
            raise ReadModelError(f"read model {self.name!r} has no table {table!r}; it has {self.tables}")
        return self.names.view(table)

    def query(self, text: str, *params: Any) -> list[tuple[Any, ...]]:
        """Rows of ``text`` (``{table}`` names the live view, ``?`` takes ``params``)."""
        rendered = Rendered({t: self.names.view(t) for t in self.tables})
        from ._tables import Sql

        return list(self._conn.execute(rendered(Sql(text, params)), params).fetchall())

    def frame(self, table: str) -> pd.DataFrame:
        """The live ``table`` as a pandas DataFrame (read in one statement, so it is one consistent state)."""
        import pandas as pd

        cursor = self._conn.execute(f"SELECT * FROM {self.view(table)}")
        columns = [c.name for c in cursor.description or []]
        return pd.DataFrame(cursor.fetchall(), columns=columns)

    # -- dead letters --------------------------------------------------------------------------------

    def dead_letters(self, *, status: str | None = "dead") -> pd.DataFrame:
        """Dead letters of the live generation (``status=None``: also the ones applied by a re-queue)."""
        import pandas as pd

        where = "" if status is None else " AND status = %s"
        params: tuple[Any, ...] = (self.name, self.live_generation()) + (() if status is None else (status,))
        cursor = self._conn.execute(
            "SELECT position, partition, stream_id, version, event_type, error, attempts, status, updated_at "
            f"FROM {self.names.dead_letters} WHERE name = %s AND generation = %s{where} ORDER BY position",
            params,
        )
        return pd.DataFrame(cursor.fetchall(), columns=[c.name for c in cursor.description or []])

    def requeue(
        self,
        store: EventStore,
        projection: TableProjection | None = None,
        *,
        positions: list[int] | None = None,
    ) -> RequeueResult:
        """Apply dead letters again (after a fix: pass the fixed projection), oldest first, in one
        transaction; each is applied at most once, because its status changes in that same transaction."""
        fixed = check_declaration(projection or self.projection)
        self._check_same_fold(fixed)
        applied: list[int] = []
        failed: list[int] = []
        with self._conn.transaction():
            generation = self._lock_model(self._conn, share=True, projection=fixed)
            render = Rendered(self.names.mapping(generation, self.tables))
            wanted = "" if positions is None else " AND position = ANY(%s)"
            params: tuple[Any, ...] = (self.name, generation) + (() if positions is None else (positions,))
            rows = self._conn.execute(
                f"SELECT position FROM {self.names.dead_letters} WHERE name = %s AND generation = %s "
                f"AND status = 'dead'{wanted} ORDER BY position FOR UPDATE",
                params,
            ).fetchall()
            for (position,) in rows:
                event = _event_at(store, int(position))
                error = try_event(self._conn, fixed, render, event, self.retry, self._sleep)
                if error is None:
                    applied.append(int(position))
                    self._conn.execute(
                        f"UPDATE {self.names.dead_letters} SET status = 'applied', updated_at = now() "
                        "WHERE name = %s AND generation = %s AND position = %s",
                        (self.name, generation, position),
                    )
                else:
                    failed.append(int(position))
                    self._conn.execute(
                        f"UPDATE {self.names.dead_letters} SET error = %s, attempts = attempts + %s, "
                        "updated_at = now() WHERE name = %s AND generation = %s AND position = %s",
                        (error, self.retry.retries + 1, self.name, generation, position),
                    )
        return RequeueResult(applied, failed)

    # -- applying (used by workers and rebuilds) ----------------------------------------------------------

    def _check_same_fold(self, projection: TableProjection) -> None:
        if type(projection).name != self.name or dict(projection.tables) != dict(self.projection.tables):
            raise ReadModelError(
                f"{type(projection).__name__} is not a projection of read model {self.name!r}"
            )

    def _lock_model(self, conn: psycopg.Connection[Any], *, share: bool, projection: TableProjection) -> int:
        """Lock the read model's row (shared by workers, exclusive for a swap); return the live generation.

        Refuses a projection whose fold version differs from the live model's: that model needs a rebuild
        before this code may write to it.
        """
        mode = "SHARE" if share else "UPDATE"
        row = conn.execute(
            f"SELECT live, version FROM {self.names.readmodels} WHERE name = %s FOR {mode}", (self.name,)
        ).fetchone()
        assert row is not None
        live, version = int(row[0]), int(row[1])
        if share and version != projection.version:
            raise ReadModelError(
                f"read model {self.name!r} was built by fold version {version}, this code has version "
                f"{projection.version}: rebuild it before running this version"
            )
        return live

    def apply_batch(
        self,
        conn: psycopg.Connection[Any],
        projection: TableProjection,
        generation: int,
        events: list[StoredEvent],
    ) -> BatchOutcome:
        """Apply ``events`` to ``generation`` inside the caller's transaction (fast, else careful)."""
        render = Rendered(self.names.mapping(generation, list(projection.tables)))
        try:
            with conn.transaction():  # a savepoint around the fast path
                return BatchOutcome(applied=apply_fast(conn, projection, render, events))
        except Exception:  # some event failed: redo the batch event by event, dead-lettering failures
            return apply_careful(
                conn,
                projection,
                render,
                events,
                names=self.names,
                generation=generation,
                partition=lambda e: partition_of(e.stream_id, self.partitions),
                retry=self.retry,
                sleep=self._sleep,
            )

    def save_checkpoints(
        self, conn: psycopg.Connection[Any], generation: int, partitions: list[int], position: int
    ) -> None:
        conn.execute(
            f"UPDATE {self.names.checkpoints} SET position = GREATEST(position, %s) "
            "WHERE name = %s AND generation = %s AND partition = ANY(%s)",
            (position, self.name, generation, partitions),
        )

    # -- blue/green rebuild ----------------------------------------------------------------------------

    def rebuild(
        self,
        store: EventStore,
        projection: TableProjection | None = None,
        *,
        batch_size: int = 2000,
        grant_to: str | None = None,
    ) -> int:
        """Build a new generation from the whole log beside the live one, then swap it in atomically.

        ``projection`` may be a new version of the fold (same name); after the swap, workers running the
        old version stop with ReadModelError. Returns the new live generation. A rebuild creates tables
        and views (DDL): run it with the migration role, and ``grant_to`` the application role, which
        gets the new generation's tables with them.
        """
        fresh = check_declaration(projection or self.projection)
        if type(fresh).name != self.name:
            raise ReadModelError(f"{type(fresh).__name__} is not a projection of read model {self.name!r}")
        tables = list(fresh.tables)
        check_lengths(self.name, tables)
        conn = self.connect()
        try:
            with conn.transaction():
                row = conn.execute(
                    f"SELECT live, building FROM {self.names.readmodels} WHERE name = %s FOR UPDATE",
                    (self.name,),
                ).fetchone()
                assert row is not None
                generation = max(int(row[0]), int(row[1] or 0)) + 1
                conn.execute(
                    f"UPDATE {self.names.readmodels} SET building = %s WHERE name = %s",
                    (generation, self.name),
                )
                self._create_generation(conn, generation, fresh)
                if grant_to is not None:
                    self._grant(conn, grant_to, generation, tables)
            position = 0
            every = list(range(self.partitions))
            while True:
                events = store.read_all(after=position, limit=batch_size)
                if not events:
                    break
                with conn.transaction():
                    self.apply_batch(conn, fresh, generation, events)
                    position = events[-1].position
                    self.save_checkpoints(conn, generation, every, position)
            with conn.transaction():  # the swap: workers wait on the row lock, readers keep the old views
                old = self._lock_model(conn, share=False, projection=fresh)
                while events := store.read_all(after=position, limit=batch_size):
                    self.apply_batch(conn, fresh, generation, events)
                    position = events[-1].position
                self.save_checkpoints(conn, generation, every, position)
                self._point_views(conn, generation, tables)
                if grant_to is not None:
                    self._grant(conn, grant_to, generation, tables)
                conn.execute(
                    f"UPDATE {self.names.readmodels} SET live = %s, version = %s, building = NULL, "
                    "swapped_at = now() WHERE name = %s",
                    (generation, fresh.version, self.name),
                )
            with conn.transaction():
                for table in self.tables:
                    conn.execute(f"DROP TABLE IF EXISTS {self.names.table(old, table)}")
                conn.execute(
                    f"DELETE FROM {self.names.checkpoints} WHERE name = %s AND generation = %s",
                    (self.name, old),
                )
        finally:
            conn.close()
        self.projection = fresh
        self.tables = tables
        return generation

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Any]]:
        with self._conn.transaction():
            yield self._conn


def _event_at(store: EventStore, position: int) -> StoredEvent:
    events = store.read_all(after=position - 1, limit=1)
    if not events or events[0].position != position:
        raise ReadModelError(f"the store has no event at position {position}")
    return events[0]
