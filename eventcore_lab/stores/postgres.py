"""The PostgreSQL store: many processes and machines sharing one event log.

Connect with a DSN (or ``EVENTCORE_DATABASE_URL``)::

    store = PostgresStore("postgresql://user@host:5432/db", schema="eventcore")

**Schema.** Everything lives in one PostgreSQL schema (default ``eventcore``), so several stores and
parallel test runs share a database. :meth:`PostgresStore.migrate` creates or upgrades it; it also runs
on first use. Applied versions are recorded in ``<schema>.schema_version``; a concurrent migrator waits
on an advisory lock, so many processes may start at once.

**One round trip per append.** ``append`` calls the plpgsql function ``<schema>.append_events`` with the
events as arrays and the expected version of every checked stream (streams only read too). The function
takes ``pg_advisory_xact_lock`` per stream in sorted key order (no deadlocks, no table lock: appends on
disjoint streams never wait for each other), checks the versions, numbers the events and inserts them.
A failed check raises SQLSTATE ``ECV01``, mapped to :class:`VersionConflict` naming each stream with
what was expected and its actual version. The function runs with ``plan_cache_mode =
force_generic_plan``: with the default, PostgreSQL re-planned its statements on every call for their
array parameters, which was half its server time (about 290 -> 145 µs of backend CPU per call; a bare
one-row INSERT is about 35). The per-stream checks and numbering are plain plpgsql expressions rather
than one more query, since an append names few streams.

**Positions safe for tailers.** Positions come from a sequence, drawn in the order writers ask, which
is not the order they commit: position 7 may commit after 8, and a reader that moved past 8 would skip
7 forever. Readers therefore stop at a gap until it is settled. Every writer, after its stream locks and
checks, takes a per-schema advisory key in shared mode and its transaction id, and only then draws
positions; so a missing
position below a visible one belongs to a transaction that started before the reader noticed the gap.
``<schema>.settle_gap`` takes a transaction id for the reader when it first sees the gap (remembered per
gap), and answers *pending* while any older transaction still holds the writer key, else *filled* or
*permanent* (rolled back: skipped). ``read_all`` returns events up to a pending gap, and a tailer just
reads again later. Why this and not the alternatives: a one-row position counter updated inside the
append (tried first) hands out positions in commit order but makes appends commit one at a time,
WAL flush included, so 8 clients were no faster than one; a table lock (the ``eventsourcing``
library's choice) serialises whole appends; filtering readers by ``pg_snapshot_xmin`` alone is wrong
(a running writer whose transaction id is newer than every finished one is in no snapshot's list) and
stalls behind any long transaction in the database. The cost here: a shared advisory lock and a
transaction id per append; a reader that meets a gap pays one more round trip (which looks at
``pg_locks``) and waits for the writers that were running when it saw the gap, typically a
millisecond; rolled-back appends (after their positions were drawn) leave permanent gaps, so positions
are increasing but not always consecutive. ``head()`` is the highest committed position, which a
pending gap may keep ``read_all`` from reaching yet.

**Immutability.** Triggers refuse UPDATE, DELETE and TRUNCATE on ``<schema>.events``.

**Subscriptions.** After its writes commit, each store NOTIFYs channel ``eventcore_<schema>`` from a
background thread (one NOTIFY per burst; a NOTIFY inside the append would serialise commits on the
notification queue lock). The payload is JSON: the head, a token naming the sending store, and the
streams written in the burst (null when too many for the 8000-byte limit). One listener thread
per store wakes :meth:`wait_for_events`, which returns
once ``read_all`` has something; the shared :class:`Subscription` runs on top. Without a listener
(connection lost) waiters poll.

**Stream cache** (opt-in: ``cache_events=N``). A command costs a read round trip and an append round
trip; with the cache, ``read_streams`` (what the executor calls) serves streams this store recently read
or wrote from memory, so a command on cached streams needs only the append. This is safe for commands
because the executor appends with the exact version of every stream it read: if another process wrote
meanwhile, the append fails with VersionConflict, the store drops the streams it names (and all streams
of any failed append) and the executor's retry reads them afresh. To keep such conflicts rare, the
listener drops streams named in other stores' NOTIFYs, and everything when it (re)connects or is not
connected. The price, and why it is off by default: ``read_streams`` may return a stream as it was
before another process's latest append, until that process's NOTIFY arrives (typically a millisecond;
never, if it died between commit and NOTIFY). Own appends are always visible. ``read_stream``,
``stream_version``, ``read_all`` and subscriptions never use the cache. Entries only move forward
(own appends extend a stream only if the cached copy ends right before them), and a database read that
raced with an invalidation is not kept. ``N`` bounds the events held (an empty stream counts as one).

**Checkpoints** for projection runners, in ``<schema>.checkpoints``: ``checkpoint_load(name) -> int``
(0 when never saved) and ``checkpoint_save(name, position)`` (an upsert, in its own transaction).

**Bulk paths.** :meth:`import_events` checks versions (each stream must continue at its current version
+ 1, without gaps), draws positions and COPYs the rows in binary form, all in one transaction.
:meth:`copy_out` streams the log out with COPY TO, and :meth:`export_events` writes it to a JSON Lines
or Parquet file (``stores.bulk``).

**Errors.** An unreachable server or a wrong DSN fails within ``connect_timeout`` with
:class:`ConnectionFailed` naming host, port, database and user (never the password); no free pooled
connection within ``pool_timeout`` is :class:`ConnectionPoolExhausted`; serialization failures,
deadlocks, lock timeouts and cancelled statements are a retriable :class:`TransactionError`.
"""

from __future__ import annotations

import contextlib
import math
import operator
import os
import re
import secrets
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from importlib import resources
from typing import Any

import msgspec
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from ..core.errors import (
    ConnectionFailed,
    ConnectionPoolExhausted,
    EventCoreError,
    InvalidFormat,
    MigrationError,
    TransactionError,
    VersionConflict,
)
from ..core.events import EventToWrite, ExpectedVersion, Metadata, StoredEvent
from ..core.ids import StreamId, new_event_id
from ..core.registry import EventRegistry, default_registry, schema_version_of
from .base import StreamsRead, Subscription
from .rules import (
    MAX_PAYLOAD_BYTES,
    check_checkpoint_name,
    check_limit,
    check_open,
    check_position,
    prepare_append,
    prepare_import,
)

#: Environment variable read when no DSN is given.
DSN_ENV = "EVENTCORE_DATABASE_URL"

#: (version, SQL file next to this module); applied in order, each in its own transaction.
MIGRATIONS: tuple[tuple[int, str], ...] = ((1, "_postgres_schema.sql"), (2, "_postgres_schema_2.sql"))

_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_WRITER_KEY = 0x45434C42  # first half of the two-int advisory key writers hold; the second is per schema
_CONFLICT = "ECV01"
_IMMUTABLE = "ECI01"
_RETRIABLE_STATES = {"57014", "55P03", "40001", "40P01"}  # cancelled, lock timeout, serialization, deadlock
_COLUMNS = (
    "event_id, stream_id, version, position, event_type, payload::text, metadata::text, recorded_at, "
    "schema_version"
)
_COPY_TYPES = [
    "int8",
    "text",
    "int8",
    "uuid",
    "text",
    "text",
    "text",
    "timestamptz",
    "int4",
]  # json travels as its text
_metadata_decoder = msgspec.json.Decoder(Metadata)
_position = operator.attrgetter("position")


class _Note(msgspec.Struct):
    """What a NOTIFY carries: the writer's head, which store sent it, the streams written (None: many)."""

    head: int
    from_: str = msgspec.field(name="from", default="")
    streams: list[str] | None = None


_note_decoder = msgspec.json.Decoder(_Note)
_encode = msgspec.json.Encoder().encode


class _StreamCache:
    """Recently read or written streams of one store: their events and hence their versions.

    Entries only ever move forward: this store's own appends extend them, and anything else that may
    have changed a stream drops it (a conflict naming it, a notification from another writer, an
    invalidation racing with a fill). ``epoch`` counts the drops from outside, so a database read that
    started before one cannot put back what it dropped. Thread-safe; at most ``max_events`` events (an
    empty stream counts as one).
    """

    def __init__(self, max_events: int) -> None:
        self.max_events = max_events
        self.epoch = 0
        self._lock = threading.Lock()
        self._streams: OrderedDict[str, tuple[StoredEvent, ...]] = OrderedDict()
        self._size = 0

    def get(self, ids: Iterable[str]) -> tuple[dict[str, tuple[StoredEvent, ...]], list[str], int]:
        """The cached streams among ``ids``, the others, and the epoch to pass to :meth:`fill`."""
        found: dict[str, tuple[StoredEvent, ...]] = {}
        missing: list[str] = []
        with self._lock:
            streams = self._streams
            for sid in ids:
                events = streams.get(sid)
                if events is None:
                    missing.append(sid)
                else:
                    streams.move_to_end(sid)
                    found[sid] = events
            return found, missing, self.epoch

    def fill(self, streams: Mapping[str, Sequence[StoredEvent]], epoch: int) -> None:
        """Keep streams read from the database, unless something was dropped since the read began."""
        with self._lock:
            if epoch != self.epoch:
                return
            for sid, events in streams.items():
                if len(events) >= len(self._streams.get(sid, ())):  # never replace newer with older
                    self._put(sid, tuple(events))
            self._trim()

    def extend(self, written: Sequence[StoredEvent], epoch: int) -> None:
        """Add this store's own append, where the cached stream ends right before it."""
        by_stream: dict[str, list[StoredEvent]] = {}
        for event in written:
            by_stream.setdefault(event.stream_id, []).append(event)
        with self._lock:
            for sid, events in by_stream.items():
                cached = self._streams.get(sid, ())
                if epoch == self.epoch and len(cached) == events[0].version - 1:
                    self._put(sid, cached + tuple(events))
                else:
                    self._pop(sid)
            self._trim()

    def drop(self, ids: Iterable[str] | None) -> None:
        """Forget these streams (all when None): they may have changed elsewhere."""
        with self._lock:
            self.epoch += 1
            if ids is None:
                self._streams.clear()
                self._size = 0
            else:
                for sid in ids:
                    self._pop(sid)

    def _put(self, sid: str, events: tuple[StoredEvent, ...]) -> None:
        self._pop(sid)
        self._streams[sid] = events
        self._size += max(1, len(events))

    def _pop(self, sid: str) -> None:
        events = self._streams.pop(sid, None)
        if events is not None:
            self._size -= max(1, len(events))

    def _trim(self) -> None:
        while self._size > self.max_events and self._streams:
            _, events = self._streams.popitem(last=False)
            self._size -= max(1, len(events))


class PostgresStore:
    """An event store in a PostgreSQL schema, shared safely by any number of processes.

    ``pool_min``/``pool_max`` size the connection pool of this process; ``pool_timeout`` is how long an
    operation waits for a free connection; ``connect_timeout`` bounds connecting (libpq rounds it up to
    whole seconds, at least 2). ``cache_events > 0`` turns on the stream cache for ``read_streams``
    (see the module docstring: faster commands, but reads may briefly miss other processes' appends).
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
        self._connect_kwargs: dict[str, Any] = {"connect_timeout": max(2, math.ceil(connect_timeout))}
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
        self._sql_append = (
            f"SELECT * FROM {t}.append_events(%s::text[], %s::uuid[], %s::text[], %s::text[], %s::text[], "
            "%s::text[], %s::text[], %s::int8[], %s::int4[])"
        )
        self._sql_read_all = (
            f"SELECT {_COLUMNS} FROM {t}.events WHERE position > %s ORDER BY position LIMIT %s"
        )
        self._sql_read_stream = (
            f"SELECT {_COLUMNS} FROM {t}.events WHERE stream_id = %s AND version > %s ORDER BY version"
        )
        self._sql_read_streams = (
            f"SELECT {_COLUMNS} FROM {t}.events WHERE stream_id = ANY(%s::text[]) ORDER BY position"
        )
        self._sql_version = f"SELECT coalesce(max(version), 0) FROM {t}.events WHERE stream_id = %s"
        self._sql_notify = "SELECT set_config('synchronous_commit', 'off', true), pg_notify(%s, %s)"
        self._sql_head = f"SELECT coalesce(max(position), 0) FROM {t}.events"
        self._sql_settle = f"SELECT state, reader::text FROM {t}.settle_gap(%s::xid8, %s, %s)"
        self._migrated = False
        self._migrate_lock = threading.Lock()
        self._changed = threading.Condition(threading.Lock())
        self._known_head = 0
        self._gaps: dict[int, str] = {}  # gap start -> reader id it is judged against (see _settle)
        self._skipped: dict[int, int] = {}  # permanent gaps: start -> end
        self._listener: threading.Thread | None = None
        self._listening = threading.Event()
        self._notifier: threading.Thread | None = None
        self._notify_wanted = threading.Condition(threading.Lock())
        self._notify_pending = False
        self._notify_busy = False
        self._notify_streams: set[str] | None = set()  # written since the last NOTIFY; None: too many
        self._token = secrets.token_hex(8)  # names this store in its NOTIFYs, so it skips its own
        self._cache = _StreamCache(cache_events) if cache_events else None
        self._closed = threading.Event()

    def __repr__(self) -> str:
        return f"<PostgresStore schema={self.schema!r} at {self._where}>"

    # -- connections and errors ---------------------------------------------------------------------

    def _probe(self) -> None:
        try:
            psycopg.connect(self._dsn, **self._connect_kwargs).close()
        except psycopg.ProgrammingError as exc:  # malformed DSN: retrying cannot help
            raise ConnectionFailed(
                f"invalid PostgreSQL DSN for {self._where}: {self._scrub(exc)}", retriable=False
            ) from None
        except psycopg.Error as exc:
            raise ConnectionFailed(
                f"cannot connect to PostgreSQL at {self._where}: {self._scrub(exc)}"
            ) from None

    def _scrub(self, exc: BaseException) -> str:
        """The error text without the password, should libpq ever echo it."""
        text = _redact(str(exc).strip())
        with contextlib.suppress(psycopg.Error):
            password = conninfo_to_dict(self._dsn).get("password")
            if password:
                text = text.replace(str(password), "***")
        return text

    @contextlib.contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled autocommit connection; database errors leave as EventCoreErrors."""
        self._check_open()
        try:
            with self._pool.connection() as conn:
                yield conn
        except PoolTimeout:
            raise ConnectionPoolExhausted(
                f"no PostgreSQL connection became free within {self._pool_timeout} s "
                f"(pool_max={self._pool_max}); raise pool_max or pool_timeout, or lower the concurrency"
            ) from None
        except psycopg.Error as exc:
            raise self._translate(exc) from exc

    def _check_open(self) -> None:
        check_open(self._closed.is_set(), f"the PostgresStore of schema {self.schema!r} at {self._where}")

    def _translate(self, exc: psycopg.Error) -> Exception:
        state = exc.sqlstate
        if state == _CONFLICT:
            detail = msgspec.json.decode(exc.diag.message_detail or "{}")
            return VersionConflict(
                {
                    sid: (str(ExpectedVersion(kind, version)), actual)
                    for sid, (kind, version, actual) in detail.items()
                }
            )
        if state == _IMMUTABLE:
            return TransactionError(f"refused by PostgreSQL: {exc.diag.message_primary}")
        if state is None or state.startswith("08") or state.startswith("57P"):
            return ConnectionFailed(f"lost the connection to PostgreSQL at {self._where}: {self._scrub(exc)}")
        if state in _RETRIABLE_STATES or state.startswith("40"):
            return TransactionError(f"transient PostgreSQL error {state}: {self._scrub(exc)}", retriable=True)
        return TransactionError(f"PostgreSQL error {state}: {self._scrub(exc)}")

    # -- schema -------------------------------------------------------------------------------------

    def migrate(self) -> int:
        """Create or upgrade this store's schema; safe to call any number of times, from any process.

        Returns the schema version now in place.
        """
        with self._migrate_lock:
            version = self._migrate()
            self._migrated = True
            return version

    def _migrate(self) -> int:
        q = self._q
        latest = MIGRATIONS[-1][0]
        try:
            with self._pool.connection() as conn, conn.transaction():
                conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"migrate:{self.schema}"]
                )
                conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(q))
                conn.execute(
                    sql.SQL(
                        "CREATE TABLE IF NOT EXISTS {}.schema_version "
                        "(version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
                    ).format(q)
                )
                row = conn.execute(sql.SQL("SELECT max(version) FROM {}.schema_version").format(q)).fetchone()
                current = (row[0] if row else None) or 0
                if current > latest:
                    raise MigrationError(
                        f"schema {self.schema!r} is at version {current}, newer than this eventcore-lab "
                        f"knows ({latest}); upgrade eventcore-lab"
                    )
                for version, filename in MIGRATIONS:
                    if version > current:
                        self._apply(conn, version, filename)
                return max(current, latest)
        except MigrationError:
            raise
        except PoolTimeout:
            raise ConnectionPoolExhausted(f"no connection free to migrate schema {self.schema!r}") from None
        except psycopg.Error as exc:
            raise MigrationError(
                f"could not migrate schema {self.schema!r} at {self._where}: {self._scrub(exc)}"
            ) from exc

    def _apply(self, conn: psycopg.Connection[Any], version: int, filename: str) -> None:
        seed = zlib.crc32(self.schema.encode())
        channel = sql.Literal(self.channel).as_string(conn)
        sequence = sql.Literal(f"{self._q.as_string(conn)}.positions").as_string(conn)
        try:
            text = resources.files(__package__).joinpath(filename).read_text(encoding="utf-8")
            body = (
                text.replace("__SCHEMA__", self._q.as_string(conn))
                .replace("__LOCK_SEED__", str(seed))
                .replace("__CHANNEL__", channel)
                .replace("__SEQUENCE__", sequence)
                .replace("__WRITER_KEY__", f"{_WRITER_KEY}, {seed & 0x7FFFFFFF}")
            )
            with conn.transaction():
                conn.execute(body.encode())
                conn.execute(
                    sql.SQL("INSERT INTO {}.schema_version (version) VALUES (%s)").format(self._q), [version]
                )
        except (psycopg.Error, OSError) as exc:
            raise MigrationError(
                f"migration {version} ({filename}) of schema {self.schema!r} failed: {self._scrub(exc)}"
            ) from exc

    def _ready(self) -> None:
        if not self._migrated:
            self.migrate()

    # -- writing ------------------------------------------------------------------------------------

    def append(
        self, events: Sequence[EventToWrite], expected: Mapping[str, ExpectedVersion] | None = None
    ) -> list[StoredEvent]:
        self._check_open()
        prepared, checks = prepare_append(events, expected, self.registry, self.max_payload_bytes)
        check_streams, kinds, versions = [], [], []
        for sid, exp in checks.items():
            if exp.kind != "no_check":
                check_streams.append(sid)
                kinds.append(exp.kind)
                versions.append(exp.version)
        if not prepared and not check_streams:
            return []
        for item in prepared:
            if "\x00" in item.event_type:
                raise InvalidFormat(
                    f"event type {item.event_type!r} contains a NUL byte; PostgreSQL text cannot"
                )
        ids = [new_event_id() for _ in prepared]
        params = (  # array literals built here: much cheaper than psycopg's generic list adaptation
            _text_array([p.stream_id for p in prepared]),
            "{" + ",".join(map(str, ids)) + "}",
            _text_array([p.event_type for p in prepared]),
            _text_array([p.payload_json.decode() for p in prepared]),
            _text_array([p.metadata_json.decode() for p in prepared]),
            _text_array(check_streams),
            "{" + ",".join(kinds) + "}",
            "{" + ",".join("NULL" if v is None else str(v) for v in versions) + "}",
            "{" + ",".join(str(schema_version_of(p.payload)) for p in prepared) + "}",
        )
        self._ready()
        cache = self._cache
        epoch = cache.epoch if cache is not None else 0
        try:
            with self._connection() as conn:
                row = conn.execute(self._sql_append, params).fetchone()
        except BaseException:  # a conflict, or an outcome unknown: what is cached of these may be stale
            if cache is not None:
                cache.drop([*(p.stream_id for p in prepared), *check_streams])
            raise
        assert row is not None
        positions, numbers, recorded_at = row
        stored = [
            StoredEvent(
                event_id=event_id,
                stream_id=item.stream_id,
                version=number,
                position=position,
                event_type=item.event_type,
                payload=item.payload,
                metadata=item.metadata,
                recorded_at=recorded_at,
            )
            for item, event_id, number, position in zip(prepared, ids, numbers, positions, strict=True)
        ]
        if stored:
            if cache is not None:
                cache.extend(stored, epoch)
            self._saw_head(stored[-1].position)
            self._wake_listeners(p.stream_id for p in prepared)
        return stored

    def import_events(self, events: Iterable[StoredEvent], *, progress: bool | None = None) -> int:
        """Bulk-load stored events with COPY, keeping ids, versions, metadata and timestamps.

        Positions are assigned anew in input order. Each stream must continue at its current version + 1
        without gaps; otherwise nothing is imported (VersionConflict). ``progress`` forces the progress
        bar on or off (default: shown on a terminal for long runs). Read files with ``stores.bulk``::

            store.import_events(bulk.read_events("history.parquet"))
        """
        self._check_open()
        rows, firsts = self._import_rows(events)
        if not rows:
            return 0
        self._ready()
        q = self._q
        copy_sql = sql.SQL(
            "COPY {}.events (position, stream_id, version, event_id, event_type, payload, metadata, "
            "recorded_at, schema_version) FROM STDIN (FORMAT BINARY)"
        ).format(q)
        from .bulk import progress_bar

        bar = progress_bar(total=len(rows), desc="import", progress=progress)
        try:
            with self._connection() as conn, conn.transaction():
                row = conn.execute(
                    sql.SQL("SELECT {}.import_begin(%s::text[], %s::int8[], %s)").format(q),
                    [list(firsts), list(firsts.values()), len(rows)],
                ).fetchone()
                assert row is not None
                positions = row[0]
                with conn.cursor().copy(copy_sql) as copy:
                    copy.set_types(_COPY_TYPES)
                    for i, values in enumerate(rows):
                        copy.write_row((positions[i], *values))
                        if i % 10_000 == 9_999:
                            bar.update(10_000)
            bar.update(len(rows) % 10_000)
        finally:
            bar.close()
        self._saw_head(positions[-1])
        if self._cache is not None:
            self._cache.drop(firsts)
        self._wake_listeners(firsts)
        return len(rows)

    def _import_rows(self, events: Iterable[StoredEvent]) -> tuple[list[tuple[Any, ...]], dict[str, int]]:
        """Validate an import fully (:func:`.rules.prepare_import`) before anything is sent; rows without
        positions, and each stream's first version."""
        batch = prepare_import(events, self.registry, self.max_payload_bytes)
        rows = [
            (
                e.stream_id,
                e.version,
                e.event_id,
                e.event_type,
                payload.decode(),
                metadata.decode(),
                e.recorded_at,
                schema_version_of(e.payload),
            )
            for e, payload, metadata in zip(batch.events, batch.payloads, batch.metadata, strict=True)
        ]
        return rows, batch.first_versions

    # -- reading ------------------------------------------------------------------------------------

    def _events(self, query: str, params: Sequence[Any]) -> list[StoredEvent]:
        self._ready()
        with self._connection() as conn:
            rows = conn.execute(query, params).fetchall()
        return [self._to_event(row) for row in rows]

    def _to_event(self, row: Sequence[Any]) -> StoredEvent:
        event_id, sid, version, position, event_type, payload, metadata, recorded_at, schema_version = row
        current_type, decoded = self.registry.read_event(event_type, payload, schema_version)
        return StoredEvent(
            event_id=event_id,
            stream_id=sid,
            version=version,
            position=position,
            event_type=current_type,
            payload=decoded,
            metadata=_metadata_decoder.decode(metadata),
            recorded_at=recorded_at,
        )

    def read_stream(self, stream_id: str, *, after_version: int = 0) -> list[StoredEvent]:
        self._check_open()
        sid = StreamId(stream_id)
        return self._events(self._sql_read_stream, (sid, check_position(after_version, "after_version")))

    def read_streams(self, stream_ids: Iterable[str]) -> StreamsRead:
        self._check_open()
        ids = [StreamId(s) for s in stream_ids]
        if self._cache is not None and ids:
            return self._read_cached(ids, self._cache)
        events = self._events(self._sql_read_streams, (ids,)) if ids else []
        versions: dict[str, int] = dict.fromkeys(ids, 0)
        for event in events:  # one snapshot: the versions match the events exactly
            versions[event.stream_id] = event.version
        return StreamsRead(events, versions)

    def _read_cached(self, ids: list[StreamId], cache: _StreamCache) -> StreamsRead:
        """read_streams with the cache: only the streams not cached are read from the database."""
        self._ready()
        self._start_listener()
        if not self._listening.is_set():  # other writers' notifications could be missed: no cache
            cache.drop(None)
            found: dict[str, Sequence[StoredEvent]] = {}
            missing: list[str] = list(dict.fromkeys(ids))
            epoch = -1
        else:
            found, missing, epoch = cache.get(dict.fromkeys(ids))  # type: ignore[assignment]
        if missing:
            fresh: dict[str, list[StoredEvent]] = {sid: [] for sid in missing}
            for event in self._events(self._sql_read_streams, (missing,)):
                fresh[event.stream_id].append(event)
            if epoch >= 0:
                cache.fill(fresh, epoch)
            found.update(fresh)
        versions = {sid: (events[-1].version if events else 0) for sid, events in found.items()}
        lists = [events for events in found.values() if events]
        merged: list[StoredEvent] = []
        for events in lists:
            merged.extend(events)
        if len(lists) > 1:  # sorted runs: timsort merges them in C, far faster than heapq.merge
            merged.sort(key=_position)
        return StreamsRead(self.registry.current(merged), {sid: versions[sid] for sid in ids})

    def read_all(self, *, after: int = 0, limit: int | None = None) -> list[StoredEvent]:
        self._check_open()
        after, limit = check_position(after), check_limit(limit)
        self._ready()
        rows: list[Sequence[Any]] = []
        position = after
        state = ""
        with self._connection() as conn:
            while limit is None or len(rows) < limit:
                want = None if limit is None else limit - len(rows)
                batch = conn.execute(self._sql_read_all, (position, want)).fetchall()
                for row in batch:
                    if row[3] != position + 1:  # a gap: wait for it, re-read, or skip it
                        state = self._settle(conn, position + 1, row[3] - 1)
                        if state != "permanent":
                            break
                    rows.append(row)
                    position = row[3]
                else:
                    if want is None or len(batch) < want:
                        break  # read everything there is
                    continue
                if state == "pending":
                    break  # stop before the gap; a later call continues from here
        return [self._to_event(row) for row in rows]

    def _settle(self, conn: psycopg.Connection[Any], start: int, end: int) -> str:
        """Judge the missing positions ``start..end`` (a later position is visible): see settle_gap.

        The reader id taken when a gap is first seen is kept per gap start, so that writers that begin
        later never hold the reader back.
        """
        if self._skipped.get(start, start - 1) >= end:
            return "permanent"
        row = conn.execute(self._sql_settle, (self._gaps.get(start), start, end)).fetchone()
        assert row is not None
        state, reader = row
        if state == "pending":
            if len(self._gaps) > 1000:
                self._gaps.clear()
            self._gaps.setdefault(start, reader)
        else:
            self._gaps.pop(start, None)
            if state == "permanent":
                if len(self._skipped) > 10_000:
                    self._skipped.clear()
                self._skipped[start] = end
        return str(state)

    def stream_version(self, stream_id: str) -> int:
        self._check_open()
        sid = StreamId(stream_id)
        self._ready()
        with self._connection() as conn:
            row = conn.execute(self._sql_version, (sid,)).fetchone()
        return int(row[0]) if row else 0

    def head(self) -> int:
        self._check_open()
        self._ready()
        with self._connection() as conn:
            row = conn.execute(self._sql_head).fetchone()
        position = int(row[0]) if row else 0
        self._saw_head(position)
        return position

    def copy_out(self, *, after: int = 0) -> Iterator[StoredEvent]:
        """Every event after ``after`` in position order, streamed with COPY TO (constant memory)."""
        self._ready()
        query = sql.SQL(
            f"COPY (SELECT {_COLUMNS} FROM {{}}.events WHERE position > {{}} ORDER BY position) "
            "TO STDOUT (FORMAT BINARY)"
        ).format(self._q, sql.Literal(int(after)))
        with self._connection() as conn, conn.cursor().copy(query) as copy:
            copy.set_types(["uuid", "text", "int8", "int8", "text", "text", "text", "timestamptz", "int4"])
            for row in copy.rows():
                yield self._to_event(row)

    def export_events(
        self, path: str | os.PathLike[str], *, after: int = 0, progress: bool | None = None
    ) -> int:
        """Write the log after ``after`` to ``path`` (.jsonl, .jsonl.gz or .parquet), read with COPY TO."""
        from . import bulk

        return bulk.write_events(
            self.copy_out(after=after), os.fspath(path), self.registry, progress=progress
        )

    # -- subscriptions ------------------------------------------------------------------------------

    def _saw_head(self, position: int) -> None:
        with self._changed:
            if position > self._known_head:
                self._known_head = position
                self._changed.notify_all()

    def wait_for_events(self, after: int, timeout: float) -> bool:
        """True as soon as an event after ``after`` can be read (``read_all`` returns it)."""
        deadline = time.monotonic() + timeout
        self._start_listener()  # before the first read: whatever commits after that read is notified
        while True:
            with self._changed:
                seen = self._known_head
            if self.read_all(after=after, limit=1):
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._closed.is_set():
                return False
            # Known but unreadable events mean a gap is pending: its writer notifies on commit, but not
            # on rollback, so look again soon. Without a listener, poll.
            pending = seen > after or not self._listening.is_set()
            with self._changed:
                if self._known_head == seen and not self._closed.is_set():
                    self._changed.wait(min(remaining, 0.05 if pending else 1.0))

    def _wake_listeners(self, streams: Iterable[str]) -> None:
        """Have the notifier thread NOTIFY other processes soon (bursts of appends share one NOTIFY)."""
        with self._notify_wanted:
            self._notify_pending = True
            if self._notify_streams is not None:
                self._notify_streams.update(streams)
                if len(self._notify_streams) > 200:  # a NOTIFY payload must stay under 8000 bytes
                    self._notify_streams = None
            if self._notifier is None:
                self._notifier = threading.Thread(
                    target=self._notify_loop, name=f"eventcore-notify-{self.schema}", daemon=True
                )
                self._notifier.start()
            self._notify_wanted.notify()

    def _notify_loop(self) -> None:
        while True:
            with self._notify_wanted:
                self._notify_wanted.wait_for(lambda: self._notify_pending or self._closed.is_set())
                if not self._notify_pending:
                    return  # closed
                self._notify_pending = False
                self._notify_busy = True
                streams, self._notify_streams = self._notify_streams, set()
            listed = None if streams is None else sorted(map(str, streams))  # plain str for msgspec
            payload = _encode({"head": self._known_head, "from": self._token, "streams": listed}).decode()
            if len(payload) > 7900:  # the NOTIFY limit is 8000 bytes: say "many" instead
                payload = _encode({"head": self._known_head, "from": self._token, "streams": None}).decode()
            try:
                with self._connection() as conn:
                    conn.execute(self._sql_notify, (self.channel, payload))
            except EventCoreError:
                self._closed.wait(0.5)  # waiters elsewhere fall back to polling meanwhile
            finally:
                with self._notify_wanted:
                    self._notify_busy = False
                    self._notify_wanted.notify_all()

    def _start_listener(self) -> None:
        if self._listener is not None:
            return
        with self._changed:
            if self._listener is None:
                self._listener = threading.Thread(
                    target=self._listen, name=f"eventcore-listen-{self.schema}", daemon=True
                )
                self._listener.start()
        self._listening.wait(timeout=max(2.0, self._connect_kwargs["connect_timeout"]))

    def _listen(self) -> None:
        """Follow NOTIFYs on a dedicated connection; reconnect after failures until closed."""
        while not self._closed.is_set():
            try:
                with psycopg.connect(self._dsn, autocommit=True, **self._connect_kwargs) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                    row = conn.execute(self._sql_head).fetchone()
                    if self._cache is not None:  # notifications may have been missed while not listening
                        self._cache.drop(None)
                    self._saw_head(int(row[0]) if row else 0)
                    self._listening.set()
                    while not self._closed.is_set():
                        for note in conn.notifies(timeout=0.2):
                            self._noticed(note.payload)
            except psycopg.Error:
                self._listening.clear()
                self._closed.wait(0.5)
        self._listening.clear()

    def _noticed(self, payload: str) -> None:
        """A NOTIFY: ``{"head": position, "from": store token, "streams": [written] or null (many)}``."""
        try:
            note = _note_decoder.decode(payload)
        except msgspec.DecodeError:
            return
        if self._cache is not None and note.from_ != self._token:
            self._cache.drop(note.streams)
        self._saw_head(note.head)

    def subscribe(self, *, after: int = 0, batch_size: int = 500) -> Subscription:
        self._check_open()
        return Subscription(self, after=check_position(after), batch_size=batch_size)

    # -- checkpoints --------------------------------------------------------------------------------

    def checkpoint_load(self, name: str) -> int:
        """The position saved under ``name``; 0 if none was saved."""
        self._ready()
        with self._connection() as conn:
            row = conn.execute(
                sql.SQL("SELECT position FROM {}.checkpoints WHERE name = %s").format(self._q), (_name(name),)
            ).fetchone()
        return int(row[0]) if row else 0

    def checkpoint_save(self, name: str, position: int) -> None:
        """Record that ``name`` has processed everything up to ``position``."""
        position = check_position(position, "position")
        self._ready()
        with self._connection() as conn:
            conn.execute(
                sql.SQL(
                    "INSERT INTO {}.checkpoints (name, position) VALUES (%s, %s) ON CONFLICT (name) "
                    "DO UPDATE SET position = EXCLUDED.position, updated_at = now()"
                ).format(self._q),
                (_name(name), position),
            )

    # -- lifecycle ----------------------------------------------------------------------------------

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

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _configure(conn: psycopg.Connection[Any]) -> None:
    conn.execute("SET TIME ZONE 'UTC'")


def _describe(dsn: str) -> str:
    """``user@host:port/dbname`` for messages: never the password."""
    try:
        info = conninfo_to_dict(dsn)
    except psycopg.Error as exc:
        raise ConnectionFailed(f"invalid PostgreSQL DSN: {_redact(str(exc))}", retriable=False) from None
    host = info.get("host") or info.get("hostaddr") or os.environ.get("PGHOST") or "localhost"
    port = info.get("port") or os.environ.get("PGPORT") or "5432"
    dbname = info.get("dbname") or os.environ.get("PGDATABASE") or "(default database)"
    user = info.get("user") or os.environ.get("PGUSER")
    return f"{str(user) + '@' if user else ''}{host}:{port}/{dbname}"


def _text_array(items: Sequence[str]) -> str:
    """A PostgreSQL text[] literal: every element double-quoted, with backslashes and quotes escaped."""
    return "{" + ",".join('"' + x.replace("\\", "\\\\").replace('"', '\\"') + '"' for x in items) + "}"


def _redact(text: str) -> str:
    """Remove anything that looks like a password (URL user info, ``password=...``) from ``text``."""
    text = re.sub(r"(://[^:/@\s]*):[^@\s]*@", r"\1:***@", text)
    return re.sub(r"(password\s*=\s*)('[^']*'|\S+)", r"\1***", text, flags=re.IGNORECASE)


def _name(name: str) -> str:
    return check_checkpoint_name(name)
