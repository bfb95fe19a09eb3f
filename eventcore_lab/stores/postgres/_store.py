"""The PostgreSQL store, assembled from its layers: see the package docstring for the design."""

from __future__ import annotations

import contextlib
import math
import os
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolTimeout

from ...core.errors import (
    ConnectionFailed,
    InvalidFormat,
)
from ...core.registry import EventRegistry, default_registry
from .._stream_cache import StreamCache
from ..base import Subscription
from ..health import PoolStats, StoreHealth, measure_health
from ..rules import (
    MAX_PAYLOAD_BYTES,
    check_log_filter,
    check_position,
)
from ._columnar import _ColumnarMixin
from ._connection import (
    DSN_ENV,
    _configure,
    _describe,
)
from ._migrations import _SCHEMA_NAME, MIGRATIONS
from ._reading import _READ_COLUMNS, read_columns
from ._writer import _WriterMixin


class PostgresStore(_WriterMixin, _ColumnarMixin):
    """An event store in a PostgreSQL schema, shared safely by any number of processes.

    ``pool_min``/``pool_max`` size the connection pool of this process; ``pool_timeout`` is how long an
    operation waits for a free connection; ``connect_timeout`` bounds connecting (libpq rounds it up to
    whole seconds, at least 2). ``cache_events > 0`` turns on the stream cache for ``read_streams``
    (see the module docstring: faster commands, but reads may briefly miss other processes' appends).
    With the cache, ``guess_unseen`` lets a command treat a stream this store has never seen as empty,
    so a command on new streams (every create) costs one round trip, the append; the append's version
    check refuses a wrong guess and the executor runs the command again on a real read.
    ``read_hook``, when given, is called by ``read_streams`` with the stream ids it is about to read
    from the database, after the part served from the cache was taken: a seam for tracing and for
    tests that interleave writes with reads.
    """

    def __init__(
        self,
        dsn: str | None = None,
        *,
        schema: str = "eventcore",
        registry: EventRegistry | None = None,
        pool_min: int = 1,
        pool_max: int = 10,
        pool_timeout: float = 10.0,
        connect_timeout: float = 5.0,
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
        cache_events: int = 0,
        guess_unseen: bool = True,
        read_hook: Callable[[list[str]], None] | None = None,
    ) -> None:
        if not isinstance(schema, str) or not _SCHEMA_NAME.fullmatch(schema):
            raise InvalidFormat(
                f"schema name must be 1-63 letters, digits or underscores, not starting with a digit; "
                f"got {schema!r}"
            )
        if pool_min < 0 or pool_max < max(1, pool_min):
            raise InvalidFormat(
                f"need 0 <= pool_min <= pool_max and pool_max >= 1, got {pool_min}, {pool_max}"
            )
        if not isinstance(cache_events, int) or cache_events < 0:
            raise InvalidFormat(f"cache_events must be an int >= 0 (0: no cache), got {cache_events!r}")
        dsn = dsn or os.environ.get(DSN_ENV)
        if not dsn:
            raise ConnectionFailed(f"no PostgreSQL DSN given and {DSN_ENV} is not set", retriable=False)
        self.schema = schema
        self.registry = registry or default_registry
        self.max_payload_bytes = max_payload_bytes
        self.channel = f"eventcore_{schema}"
        self._dsn = dsn
        self._where = _describe(dsn)
        self._connect_kwargs = {"connect_timeout": max(2, math.ceil(connect_timeout))}
        self._pool_timeout = pool_timeout
        self._pool_max = pool_max
        self._probe()  # fail fast, with a clear message, before a pool starts retrying in the background
        self._pool = ConnectionPool(
            dsn,
            min_size=pool_min,
            max_size=pool_max,
            timeout=pool_timeout,
            kwargs={**self._connect_kwargs, "autocommit": True},
            configure=_configure,
            open=False,
            name=f"eventcore-{schema}",
        )
        try:
            self._pool.open(wait=pool_min > 0, timeout=max(connect_timeout, 2.0))
        except PoolTimeout as exc:
            self._pool.close()
            raise ConnectionFailed(f"could not open connections to PostgreSQL at {self._where}") from exc
        q = sql.Identifier(schema)
        self._q = q
        # Hot queries as plain strings (psycopg caches their parsing; Composed objects are re-rendered on
        # every call). The schema name was validated above, so quoting it by hand is safe.
        t = f'"{schema}"'
        self._sql_read_all = (
            f"SELECT {_READ_COLUMNS} FROM {t}.events WHERE position > %s ORDER BY position LIMIT %s"
        )
        self._sql_read_stream = (
            f"SELECT {_READ_COLUMNS} FROM {t}.events WHERE stream_id = %s AND version > %s ORDER BY version"
        )
        self._sql_read_streams = (
            f"SELECT {_READ_COLUMNS} FROM {t}.events WHERE stream_id = ANY(%s::text[]) ORDER BY position"
        )
        self._sql_read_after = (  # streams after given versions (0: whole), in one statement
            f"SELECT {read_columns('e')} "
            f"FROM unnest(%s::text[], %s::int8[]) AS w(stream_id, after) "
            f"JOIN {t}.events e ON e.stream_id = w.stream_id AND e.version > w.after ORDER BY e.position"
        )
        self._sql_append = (  # the lock timeout first (NULL: none; see migration 6)
            f"SELECT * FROM {t}.append_events_within(%s::text, %s::text[], %s::uuid[], %s::text[], "
            "%s::text[], %s::text[], %s::text[], %s::text[], %s::int8[], %s::int4[], %s::jsonb, %s::jsonb, "
            "%s::text[], %s::bool[])"
        )
        self._sql_read_query = (
            f"SELECT * FROM {t}.read_query(%s::text, %s::jsonb, %s::int8, %s::int8, %s::text[], %s::bool[])"
        )
        self._sql_read_within = f"SELECT * FROM {t}.read_streams_within(%s, %s::text[], %s::int8[])"
        self._sql_version = f"SELECT coalesce(max(version), 0) FROM {t}.events WHERE stream_id = %s"
        self._sql_notify = "SELECT set_config('synchronous_commit', 'off', true), pg_notify(%s, %s)"
        self._sql_head = f"SELECT coalesce(max(position), 0) FROM {t}.events"
        self._table = f"{t}.events"  # filtered reads build their SELECTs on it
        self._sql_window = (  # how many positions follow ``after`` in a window, and the last one
            f"SELECT count(*), max(position) FROM (SELECT position FROM {t}.events WHERE position > %s "
            "ORDER BY position LIMIT %s) AS w"
        )
        self._sql_positions = (
            f"SELECT position FROM {t}.events WHERE position > %s ORDER BY position LIMIT %s"
        )
        self._sql_settle = f"SELECT state, reader::text FROM {t}.settle_gap(%s::xid8, %s, %s)"
        self._migrated = False
        self._migrate_lock = threading.Lock()
        self._changed = threading.Condition(threading.Lock())
        self._known_head = 0
        self._gaps = {}  # gap start -> reader id it is judged against (see _settle)
        self._skipped = {}  # permanent gaps: start -> end
        self._listener = None
        self._listening = threading.Event()
        self._notifier = None
        self._notify_wanted = threading.Condition(threading.Lock())
        self._notify_pending = False
        self._notify_busy = False
        self._notify_streams = set()  # written since the last NOTIFY; None: too many
        self._token = secrets.token_hex(8)  # names this store in its NOTIFYs, so it skips its own
        self._cache = StreamCache(cache_events) if cache_events else None
        self._guess_unseen = bool(guess_unseen)
        self._read_hook = read_hook
        self._closed = threading.Event()

    def __repr__(self) -> str:
        return f"<PostgresStore schema={self.schema!r} at {self._where}>"

    def subscribe(
        self,
        *,
        after: int = 0,
        batch_size: int = 500,
        event_types: Iterable[str | type] | None = None,
        categories: Iterable[str] | None = None,
    ) -> Subscription:
        self._check_open()
        where = check_log_filter(event_types, categories, self.registry)
        return Subscription(self, after=check_position(after), batch_size=batch_size, where=where)

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """Lend a pooled autocommit connection for your own tables in this store's schema (never write
        ``events``); database errors leave as EventCoreErrors."""
        self._check_open()
        self._ready()
        with self._connection() as conn:
            yield conn

    def close(self) -> None:
        """Stop the listener and close the pool; idempotent."""
        if self._closed.is_set():
            return
        if self._notifier is not None:  # send the last wake-up before closing
            with self._notify_wanted:
                self._notify_wanted.wait_for(
                    lambda: not (self._notify_pending or self._notify_busy), timeout=2
                )
        self._closed.set()
        with self._changed:
            self._changed.notify_all()
        with self._notify_wanted:
            self._notify_wanted.notify_all()
        for thread in (self._listener, self._notifier):
            if thread is not None:
                thread.join(timeout=5)
        self._pool.close()

    # -- health and pool statistics ------------------------------------------------------------------

    def pool_stats(self) -> PoolStats:
        """This process's connection pool now (no round trip): what metrics export and `doctor` reads."""
        self._check_open()
        raw = self._pool.get_stats()
        return PoolStats(
            size=int(raw.get("pool_size", 0)),
            max_size=int(raw.get("pool_max", self._pool_max)),
            idle=int(raw.get("pool_available", 0)),
            waiting=int(raw.get("requests_waiting", 0)),
            errors=int(raw.get("connections_errors", 0)) + int(raw.get("requests_errors", 0)),
        )

    def health(self) -> StoreHealth:
        """One pooled connection reads the recorded schema version and the head, timed, plus the pool;
        never raises and never migrates (a schema that is behind reports its pending migrations)."""

        def probe() -> dict[str, Any]:
            self._check_open()
            with self._connection() as conn:
                table = f"{self._q.as_string(conn)}.schema_version"
                row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", [table]).fetchone()
                version, head = 0, 0  # no schema yet: every migration pending
                if row and row[0]:
                    found = conn.execute(
                        f"SELECT (SELECT max(version) FROM {table}), ({self._sql_head})"
                    ).fetchone()
                    version, head = (int(found[0] or 0), int(found[1] or 0)) if found else (0, 0)
            return {
                "head": head,
                "schema_version": version,
                "latest_schema_version": MIGRATIONS[-1][0],
                "pool": self.pool_stats(),
            }

        return measure_health(f"PostgresStore schema {self.schema!r} at {self._where}", probe)

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
