"""The read path: streams (through the stream cache when enabled, always one snapshot), the log with
its gaps settled, single-stream reads, COPY-based export, and checkpoints."""

from __future__ import annotations

import operator
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import msgspec
import psycopg
from psycopg import sql

from ..._gc import gc_paused
from ...core._deadline import remaining
from ...core.events import Metadata, StoredEvent
from ...core.ids import StreamId
from ...core.query import AppendCondition, Query
from .. import bulk
from .._decoding import datetimes, stored_events, uuids
from .._stream_cache import StreamCache
from ..base import QueryRead, StreamsRead
from ..filters import FilteredRead, LogFilter, scan_in_pages, select_sql, select_stream
from ..rules import (
    check_backwards,
    check_checkpoint_name,
    check_limit,
    check_log_filter,
    check_position,
    check_query,
)
from ._connection import _lock_timeout
from ._notify import _NotifyMixin

_COLUMNS = (
    "event_id, stream_id, version, position, event_type, payload::text, metadata::text, recorded_at, "
    "schema_version, tags"
)


def read_columns(table: str = "") -> str:
    """The columns of :data:`_COLUMNS` as the read statements fetch them (``table``: a qualifier): ids
    as 16 bytes, times as epoch microseconds and no tags as NULL, which psycopg converts several times
    faster than UUIDs, datetimes and empty arrays (see :meth:`_ReadingMixin._decode_rows`)."""
    t = f"{table}." if table else ""
    return (
        f"uuid_send({t}event_id), {t}stream_id, {t}version, {t}position, {t}event_type, {t}payload::text, "
        f"{t}metadata::text, (extract(epoch from {t}recorded_at) * 1000000)::int8, {t}schema_version, "
        f"nullif({t}tags, '{{}}')"
    )


_READ_COLUMNS = read_columns()


_metadata_decoder = msgspec.json.Decoder(Metadata)


_position = operator.attrgetter("position")


def query_json(query: Query, condition: AppendCondition | None = None) -> str:
    """A query (and the position of a condition) as the JSON the schema's functions take."""
    document: dict[str, Any] = {"items": [{"types": i.types, "tags": i.tags} for i in query.items]}
    if condition is not None:
        document["after"] = condition.after
    return msgspec.json.encode(document).decode()


#: Beyond this many distinct type and tag keys an append takes the key '*' exclusively instead.
MAX_LOCK_KEYS = 64


def lock_names(
    types: Iterable[str], tags: Iterable[tuple[str, ...]], query: Query | None
) -> tuple[list[str], list[bool]]:
    """The advisory lock names (and exclusive flags) of an append or query read: the rule argued in
    migration 4, written once. Shared: each type ('y' + type) and tag ('t' + tag) written, and '*'.
    Exclusive: per query item its first tag, or each of its types when it names no tag; '*' for a query
    of every event, or when more than MAX_LOCK_KEYS type and tag keys would be written."""
    names = dict.fromkeys(["y" + t for t in types] + ["t" + tag for group in tags for tag in group], False)
    everything = len(names) > MAX_LOCK_KEYS
    if everything:
        names = {}
    if query is not None:
        everything = everything or query.matches_all
        for item in query.items:
            for name in ("t" + item.tags[0],) if item.tags else ["y" + t for t in item.types]:
                names[name] = True
    names["*"] = everything
    return list(names), list(names.values())


def _name(name: str) -> str:
    return check_checkpoint_name(name)


class _ReadingMixin(_NotifyMixin):
    """Reading streams, the log and checkpoints."""

    def _events(self, query: str, params: Sequence[Any]) -> list[StoredEvent]:
        self._ready()
        return self._decode_rows(self._run(query, params))

    def _decode_rows(self, rows: Sequence[Sequence[Any]]) -> list[StoredEvent]:
        """Rows of :func:`read_columns` (or of the schema's functions, which return ids as UUIDs and
        times as datetimes) as StoredEvents, decoded a column at a time."""
        if not rows:
            return []
        ids: Sequence[Any]
        recorded: Sequence[Any]
        ids, streams, versions, positions, types, payloads, metadata, recorded, schemas, tags = zip(
            *rows, strict=True
        )
        with gc_paused():
            if type(ids[0]) is bytes:
                ids, recorded = uuids(b"".join(ids), len(ids)), datetimes(recorded)
            return stored_events(
                self.registry,
                positions=positions,
                ids=ids,
                streams=streams,
                versions=versions,
                types=types,
                data=payloads,
                metadata_documents=metadata,
                recorded=recorded,
                schemas=schemas,
                tags=tags,
            )

    def _to_event(self, row: Sequence[Any]) -> StoredEvent:
        event_id, sid, version, position, event_type, payload, metadata, recorded_at, schema_version, tags = (
            row
        )
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
            tags=tuple(tags) if tags else (),
        )

    def read_stream(
        self,
        stream_id: str,
        *,
        after_version: int = 0,
        event_types: Iterable[str | type] | None = None,
        backwards: bool = False,
        limit: int | None = None,
    ) -> list[StoredEvent]:
        self._check_open()
        sid = StreamId(stream_id)
        after_version = check_position(after_version, "after_version")
        where = check_log_filter(event_types, None, self.registry)
        backwards, limit = check_backwards(backwards), check_limit(limit)
        if where is None and not backwards and limit is None:
            return self._events(self._sql_read_stream, (sid, after_version))
        if where is not None and where.event_types is not None and self.registry.evolution is not None:
            events = self._select(None, "stream_id = %s AND version > %s", [sid, after_version], "version")
            return select_stream(events, where, backwards, limit)
        order = "version DESC" if backwards else "version"
        return self._select(where, "stream_id = %s AND version > %s", [sid, after_version], order, limit)

    def read_streams(self, stream_ids: Iterable[str]) -> StreamsRead:
        self._check_open()
        ids = [StreamId(s) for s in stream_ids]
        if self._cache is not None and ids:
            return self._read_cached(ids, self._cache)
        if ids and self._read_hook is not None:
            self._read_hook(list(dict.fromkeys(ids)))
        budget = remaining()
        if not ids:
            events = []
        elif budget is None:
            events = self._events(self._sql_read_streams, (ids,))
        else:
            events = self._events(self._sql_read_within, (_lock_timeout(budget), ids, [0] * len(ids)))
        versions: dict[str, int] = dict.fromkeys(ids, 0)
        for event in events:  # one snapshot: the versions match the events exactly
            versions[event.stream_id] = event.version
        return StreamsRead(events, versions)

    def _read_cached(self, ids: list[StreamId], cache: StreamCache) -> StreamsRead:
        """read_streams with the cache, still one snapshot of every stream.

        Cached entries read or written by one statement share a stamp and are served together without
        the database. Otherwise one statement reads the streams not cached and whatever was appended
        to the cached ones after their cached version, so every stream is as of that statement; the
        result is cached under a new stamp.
        """
        self._ready()
        self._start_listener()
        wanted: list[str] = list(dict.fromkeys(ids))
        if not self._listening.is_set():  # other writers' notifications could be missed: no cache
            cache.drop(None)
            found: dict[str, tuple[StoredEvent, ...]] = {}
            stamps: set[int] = set()
            missing: list[str] = wanted
            epoch = -1
        else:
            found, missing, stamps, epoch = cache.get(wanted)
        if missing or len(stamps) > 1:
            if self._read_hook is not None:
                self._read_hook(list(missing) if len(stamps) <= 1 else wanted)
            after = {sid: len(found.get(sid, ())) for sid in wanted}
            fresh: dict[str, list[StoredEvent]] = {sid: [] for sid in wanted}
            budget = remaining()
            query: str = self._sql_read_after
            params: tuple[Any, ...] = (list(after), list(after.values()))
            if budget is not None:
                query, params = self._sql_read_within, (_lock_timeout(budget), *params)
            for event in self._events(query, params):
                fresh[event.stream_id].append(event)
            found = {sid: found.get(sid, ()) + tuple(fresh[sid]) for sid in wanted}
            if epoch >= 0:
                cache.fill(found, epoch, cache.new_stamp())
        return self._served(ids, wanted, found)

    def _served(
        self, ids: Sequence[str], wanted: Sequence[str], found: Mapping[str, Sequence[StoredEvent]]
    ) -> StreamsRead:
        lists = [found[sid] for sid in wanted if found[sid]]
        merged: list[StoredEvent] = []
        for events in lists:
            merged.extend(events)
        if len(lists) > 1:  # sorted runs: timsort merges them in C, far faster than heapq.merge
            merged.sort(key=_position)
        return StreamsRead(self.registry.current(merged), {sid: len(found[sid]) for sid in ids})

    def read_streams_guessing(self, stream_ids: Iterable[str]) -> tuple[StreamsRead, frozenset[str]]:
        """``read_streams`` for a command, which appends with the exact version of every stream it read,
        without a round trip where a guess can stand in for one.

        Streams this store has never seen count as empty; cached streams from different moments
        (stamps) are served as they are, instead of re-read together as one snapshot. Returns the read
        and the streams so guessed. A wrong guess cannot be committed (the append's version check
        refuses it); any other outcome (a refusal, an empty decision, an append refusing the events)
        must be confirmed by a real read (:meth:`guess_missed` first), which the executor does. When
        some stream must be read anyway, this is ``read_streams``, as it is without the cache or with
        ``guess_unseen=False``.
        """
        cache = self._cache
        if cache is None or not self._guess_unseen:
            return self.read_streams(stream_ids), frozenset()
        self._check_open()
        ids = [StreamId(s) for s in stream_ids]
        self._ready()
        self._start_listener()
        wanted: list[str] = list(dict.fromkeys(ids))
        if self._listening.is_set():
            found, missing, stamps, _ = cache.get(wanted)
        else:  # cached entries may be stale (see _read_cached); a guess needs no notifications
            found, missing, stamps = {}, wanted, set()
        guess = cache.unseen(missing)
        if len(guess) != len(missing):
            return self._read_cached(ids, cache), frozenset()  # a read is needed anyway: no guess
        if guess:
            cache.guesses(len(guess))
        served: dict[str, Sequence[StoredEvent]] = {**found, **dict.fromkeys(guess, ())}
        unsure = [*guess, *found] if len(stamps) > 1 else guess
        return self._served(ids, wanted, served), frozenset(unsure)

    @property
    def guess_stats(self) -> dict[str, int]:
        """Streams command reads treated as empty without a round trip (``guessed``), and those whose
        guess a command had to confirm with a real read (``confirmed``: wrong, or relied on by a
        decision that wrote nothing)."""
        cache = self._cache
        return (
            {"guessed": 0, "confirmed": 0}
            if cache is None  # not `if cache`: an empty cache is falsy (len 0) and still counts
            else {"guessed": cache.guessed, "confirmed": cache.missed}
        )

    def guess_missed(self, stream_ids: Iterable[str]) -> None:
        """A command could not rely on the empty streams guessed: the store never guesses them again."""
        if self._cache is not None:
            self._cache.missed_guesses(stream_ids)

    def read_all(
        self,
        *,
        after: int = 0,
        limit: int | None = None,
        event_types: Iterable[str | type] | None = None,
        categories: Iterable[str] | None = None,
        backwards: bool = False,
    ) -> list[StoredEvent]:
        self._check_open()
        after, limit = check_position(after), check_limit(limit)
        where = check_log_filter(event_types, categories, self.registry)
        if check_backwards(backwards):
            return self._read_backwards(after, limit, where)
        if where is not None:
            return self._filtered(after, limit, where).events
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
        return self._decode_rows(rows)

    def read_query(self, query: Query, *, after: int = 0, limit: int | None = None) -> QueryRead:
        """Events matching ``query`` with position > ``after`` (at most ``limit``), and the head they were
        read at, in one round trip. Writers of matching events still in flight are waited for first, so
        that the head is a safe ``after`` for an append condition (see migration 4)."""
        self._check_open()
        query, after, limit = check_query(query), check_position(after), check_limit(limit)
        budget = remaining()
        timeout = None if budget is None else _lock_timeout(budget)
        names, exclusive = lock_names((), (), query)
        rows = self._events_raw(
            self._sql_read_query, (timeout, query_json(query), after, limit, names, exclusive)
        )
        head = int(rows[0][0])
        return QueryRead(self._decode_rows([row[1:] for row in rows[1:]]), head)

    def _events_raw(self, query: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        self._ready()
        return self._run(query, params)

    # -- filtered reads: SQL on indexes (migrations 4 and 5), up to the last position with no pending gap ----

    def read_filtered(
        self,
        *,
        after: int = 0,
        limit: int | None = None,
        event_types: Iterable[str | type] | None = None,
        categories: Iterable[str] | None = None,
    ) -> FilteredRead:
        self._check_open()
        after, limit = check_position(after), check_limit(limit)
        return self._filtered(after, limit, check_log_filter(event_types, categories, self.registry))

    def _filtered(self, after: int, limit: int | None, where: LogFilter | None) -> FilteredRead:
        if where is not None and where.event_types is not None and self.registry.evolution is not None:
            # stored type names may not be the names read (an upcaster may rename): filter after decoding
            return scan_in_pages(self._filtered_page, where, after=after, limit=limit)
        return self._filtered_page(where, after, limit)

    def _filtered_page(self, where: LogFilter | None, after: int, limit: int | None) -> FilteredRead:
        """Matching events in windows of positions: each window ends before the first pending gap (a
        write still in flight), so the position returned never passes an event not yet readable."""
        self._ready()
        found: list[StoredEvent] = []
        position = after
        if limit == 0:
            return FilteredRead(found, after)
        with self._connection() as conn:
            while True:
                bound, more = self._settled_bound(conn, position)
                if bound <= position:
                    break
                want = None if limit is None else limit - len(found)
                query, params = self._select_sql(
                    where, "position > %s AND position <= %s", [position, bound], "position", want
                )
                found.extend(self._decode_rows(conn.execute(query, params).fetchall()))
                if limit is not None and len(found) == limit:
                    return FilteredRead(found, found[-1].position)
                position = bound
                if not more:
                    break
        return FilteredRead(found, position)

    def _settled_bound(
        self, conn: psycopg.Connection[Any], after: int, window: int = 20_000
    ) -> tuple[int, bool]:
        """The last position of the next ``window`` positions after ``after`` up to which every
        position is committed or a permanent gap, and whether more may follow it."""
        row = conn.execute(self._sql_window, (after, window)).fetchone()
        count, top = (row[0], row[1]) if row else (0, None)
        if not count or top is None:
            return after, False
        if top - after == count:  # no gap at all: the usual case, one cheap index-only statement
            return int(top), count == window
        expected = after + 1
        for (position,) in conn.execute(self._sql_positions, (after, window)).fetchall():
            if position != expected:
                state = self._settle(conn, expected, position - 1)
                if state != "permanent":  # pending: stop before it; committed: read again from there
                    return expected - 1, state == "committed"
            expected = position + 1
        return int(top), count == window

    def _read_backwards(self, after: int, limit: int | None, where: LogFilter | None) -> list[StoredEvent]:
        """Newest first: the events committed when the statement runs (a tailing reader reads forwards)."""
        if where is not None and where.event_types is not None and self.registry.evolution is not None:
            wide = LogFilter(categories=where.categories)
            events = self._select(wide, "position > %s", [after], "position DESC")
            return select_stream(events, where, False, limit)
        return self._select(where, "position > %s", [after], "position DESC", limit)

    def _select(
        self, where: LogFilter | None, condition: str, params: list[Any], order: str, limit: int | None = None
    ) -> list[StoredEvent]:
        query, values = self._select_sql(where, condition, params, order, limit)
        return self._events(query, values)

    def _select_sql(
        self, where: LogFilter | None, condition: str, params: list[Any], order: str, limit: int | None
    ) -> tuple[str, list[Any]]:
        """One SELECT of events; ``where`` is matched on stored names (indexed: migrations 4 and 5)."""
        return select_sql(
            _READ_COLUMNS,
            self._table,
            condition,
            params,
            where,
            contains="{} = ANY(%s::text[])",
            order=order,
            limit=limit,
            placeholder="%s",
        )

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

    def copy_out(self, *, after: int = 0) -> Iterator[StoredEvent]:
        """Every event after ``after`` in position order, streamed with COPY TO (constant memory)."""
        self._ready()
        query = sql.SQL(
            f"COPY (SELECT {_COLUMNS} FROM {{}}.events WHERE position > {{}} ORDER BY position) "
            "TO STDOUT (FORMAT BINARY)"
        ).format(self._q, sql.Literal(int(after)))
        with self._connection() as conn, conn.cursor().copy(query) as copy:
            copy.set_types(
                ["uuid", "text", "int8", "int8", "text", "text", "text", "timestamptz", "int4", "text[]"]
            )
            for row in copy.rows():
                yield self._to_event(row)

    def export_events(
        self, path: str | os.PathLike[str], *, after: int = 0, progress: bool | None = None
    ) -> int:
        """Write the log after ``after`` to ``path`` (.jsonl, .jsonl.gz or .parquet), read with COPY TO."""

        return bulk.write_events(
            self.copy_out(after=after), os.fspath(path), self.registry, progress=progress
        )

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
