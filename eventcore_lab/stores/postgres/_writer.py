"""The write path: one round trip per append (the schema's append function, bounded by the
command's deadline when there is one) and COPY-based bulk import."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from operator import attrgetter
from typing import TYPE_CHECKING

import msgspec
from psycopg import sql

from ..._gc import gc_paused
from ...core._deadline import remaining
from ...core.errors import AppendConditionFailed, InvalidFormat
from ...core.events import EventToWrite, ExpectedVersion, StoredEvent
from ...core.ids import new_event_id
from ...core.query import AppendCondition
from ...core.registry import schema_version_of
from ..rules import (
    PreparedEvent,
    check_condition,
    prepare_append,
    prepare_import,
)
from ._connection import _lock_timeout
from ._import_indexes import indexes_built_after
from ._reading import _ReadingMixin, lock_names, query_json

if TYPE_CHECKING:
    from ._copy import CopyColumns


def _tags_json(tags: list[tuple[str, ...]]) -> str | None:
    """Each event's tags as a JSON array of arrays; None when no event has any (the common case)."""
    return _encode(tags).decode() if any(tags) else None


_encode = msgspec.json.encode


def _lock_arrays(prepared: list[PreparedEvent], condition: AppendCondition | None) -> tuple[str, str]:
    """The lock names of an append and their exclusive flags, as array literals (see lock_names)."""
    names, exclusive = lock_names(
        (p.event_type for p in prepared),
        (p.tags for p in prepared),
        None if condition is None else condition.fail_if_events_match,
    )
    return _text_array(names), "{" + ",".join("t" if x else "f" for x in exclusive) + "}"


def _text_array(items: Sequence[str]) -> str:
    """A PostgreSQL text[] literal: every element double-quoted, with backslashes and quotes escaped."""
    return "{" + ",".join('"' + x.replace("\\", "\\\\").replace('"', '\\"') + '"' for x in items) + "}"


class _WriterMixin(_ReadingMixin):
    """Appending and bulk import."""

    def append(
        self,
        events: Sequence[EventToWrite],
        expected: Mapping[str, ExpectedVersion] | None = None,
        *,
        condition: AppendCondition | None = None,
    ) -> list[StoredEvent]:
        """Append in one round trip: the schema's append function locks, checks the stream versions and
        the ``condition`` (see migration 4 for why no concurrent append can slip past it), numbers and
        inserts, all in one transaction."""
        self._check_open()
        prepared, checks = prepare_append(events, expected, self.registry, self.max_payload_bytes)
        condition = check_condition(condition)
        check_streams, kinds, versions = [], [], []
        for sid, exp in checks.items():
            if exp.kind != "no_check":
                check_streams.append(sid)
                kinds.append(exp.kind)
                versions.append(exp.version)
        if not prepared and not check_streams and condition is None:
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
            _tags_json([p.tags for p in prepared]),
            None if condition is None else query_json(condition.fail_if_events_match, condition),
            *_lock_arrays(prepared, condition),
        )
        self._ready()
        cache = self._cache
        epoch = cache.epoch if cache is not None else 0
        try:
            budget = remaining()
            timeout = None if budget is None else _lock_timeout(budget)
            [row] = self._run(self._sql_append, (timeout, *params))
        except AppendConditionFailed as failed:  # nothing written: the cache is still right
            assert condition is not None
            raise AppendConditionFailed(
                condition.fail_if_events_match, condition.after, failed.position
            ) from None
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
                tags=item.tags,
            )
            for item, event_id, number, position in zip(prepared, ids, numbers, positions, strict=True)
        ]
        if stored:
            if cache is not None:
                confirmed: dict[
                    str, int
                ] = {  # streams checked exactly were at that version when the append committed
                    sid: v
                    for sid, k, v in zip(check_streams, kinds, versions, strict=True)
                    if k == "exact" and v is not None
                }
                cache.extend(stored, epoch, cache.new_stamp(), confirmed)
            self._saw_head(stored[-1].position)
            self._wake_listeners(p.stream_id for p in prepared)
        return stored

    def import_events(self, events: Iterable[StoredEvent], *, progress: bool | None = None) -> int:
        """Bulk-load stored events with COPY, keeping ids, versions, metadata and timestamps.

        Positions are assigned anew in input order. Each stream must continue at its current version + 1
        without gaps; otherwise nothing is imported (VersionConflict). Into an empty store (a restore,
        a migration) the table's indexes are built once after the rows (measured 1.5-2.3x faster);
        readers of the store then wait for the import to commit (see ``_import_indexes``). ``progress``
        forces the progress bar on or off (default: shown on a terminal for long runs). Read files with
        ``stores.bulk``::

            store.import_events(bulk.read_events("history.parquet"))
        """
        self._check_open()
        with gc_paused():  # 100,000s of new, acyclic objects: collections would rescan them all
            return self._import(events, progress)

    def _import(self, events: Iterable[StoredEvent], progress: bool | None) -> int:
        columns, firsts = self._import_columns(events)
        count = len(columns)
        if not count:
            return 0
        self._ready()
        q = self._q
        copy_sql = sql.SQL(
            "COPY {}.events (position, stream_id, version, event_id, event_type, payload, metadata, "
            "recorded_at, schema_version, tags) FROM STDIN (FORMAT BINARY)"
        ).format(q)
        from ..bulk import progress_bar

        bar = progress_bar(total=count, desc="import", progress=progress)
        try:
            with self._connection() as conn, conn.transaction():
                row = conn.execute(
                    sql.SQL("SELECT {}.import_begin(%s::text[], %s::int8[], %s)").format(q),
                    [list(firsts), list(firsts.values()), count],
                ).fetchone()
                assert row is not None
                positions = row[0]
                with indexes_built_after(conn, self.schema), conn.cursor().copy(copy_sql) as copy:
                    for block, rows in columns.blocks(positions):
                        copy.write(block)
                        bar.update(rows)
        finally:
            bar.close()
        self._saw_head(positions[-1])
        if self._cache is not None:
            self._cache.drop(firsts)
        self._wake_listeners(firsts)
        return count

    def _import_columns(self, events: Iterable[StoredEvent]) -> tuple[CopyColumns, dict[str, int]]:
        """Validate an import fully (:func:`.rules.prepare_import`) before anything is sent; its COPY
        columns (one C-level pass each), and each stream's first version."""
        from ..bulk import schema_versions
        from ._copy import CopyColumns  # Arrow and numpy: loaded by the first import

        batch = prepare_import(events, self.registry, self.max_payload_bytes)
        stored = batch.events
        fields = [list(map(attrgetter(name), stored)) for name in _IMPORT_FIELDS]
        streams, versions, event_ids, types, recorded, payloads, tags = fields
        columns = CopyColumns(
            streams,
            versions,
            event_ids,
            types,
            batch.payloads,
            batch.metadata,
            recorded,
            schema_versions(payloads),
            tags,
        )
        return columns, batch.first_versions


#: The StoredEvent fields an import's COPY columns take.
_IMPORT_FIELDS = ("stream_id", "version", "event_id", "event_type", "recorded_at", "payload", "tags")
