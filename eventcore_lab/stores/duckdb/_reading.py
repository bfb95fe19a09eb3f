"""The DuckDB store's read path: streams from the cache or from DuckDB, always as one snapshot.

A read takes the head, the versions and the cached streams in one locked section and reads the rest from
DuckDB up to that head, so a group committed meanwhile is seen in no stream rather than in some.
``read_all`` serves tailing readers from the in-memory tail of the log when it can.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC
from typing import Any

import msgspec

from ...core.events import Metadata, StoredEvent
from ...core.ids import StreamId
from ..base import StreamsRead
from ..rules import (
    check_limit,
    check_position,
)
from ._base import _DuckDBBase
from ._batches import _TABLE_COLUMNS

_metadata_decoder = msgspec.json.Decoder(Metadata)


def _by_position(event: StoredEvent) -> int:
    return event.position


class _ReadingMixin(_DuckDBBase):
    """Reading streams and the log."""

    def read_stream(self, stream_id: str, *, after_version: int = 0) -> list[StoredEvent]:
        self._check_open()
        sid = StreamId(stream_id)
        return self.registry.current(
            list(self._read([sid])[sid][check_position(after_version, "after_version") :])
        )

    def read_streams(self, stream_ids: Iterable[str]) -> StreamsRead:
        self._check_open()
        ids = list(dict.fromkeys(StreamId(s) for s in stream_ids))
        found = self._read(ids)
        lists = [found[sid] for sid in ids if found[sid]]
        if len(lists) == 1:
            merged = list(lists[0])
        else:
            merged = sorted((e for events in lists for e in events), key=_by_position)
        return StreamsRead(self.registry.current(merged), {sid: len(found[sid]) for sid in ids})

    def _read(self, ids: Sequence[str]) -> dict[str, tuple[StoredEvent, ...]]:
        """Whole streams, all as of one position: the published head when the read began.

        Cached streams and known versions are taken in one locked section, together with the head;
        the others are read from DuckDB up to that head, so a group committed meanwhile is seen in no
        stream rather than in some (a transfer's credit without its debit would be a state that never
        existed). DuckDB is read without holding ``self._lock``, so appenders keep validating.
        """
        with self._lock:
            head = self._head
            known = [sid for sid in ids if self._versions.get(sid, 0)]
            found, missing, _, epoch = self._cache.get(known)
        for sid in ids:
            found.setdefault(sid, ())
        if missing:
            if self._read_hook is not None:
                self._read_hook(list(missing))
            fetched = self._fetch_streams(missing, head)
            with self._lock:  # keep what is still current: nothing was appended to it since ``head``
                self._cache.fill(
                    {
                        sid: events
                        for sid, events in fetched.items()
                        if len(events) == self._versions.get(sid, 0)
                    },
                    epoch,
                )
            found.update(fetched)
        return found

    def _fetch_streams(self, ids: Sequence[str], head: int) -> dict[str, tuple[StoredEvent, ...]]:
        """Read whole streams from DuckDB, as of position ``head``."""
        with self._db_lock:
            self._check_open()
            rows = self._con.execute(
                f"select {_TABLE_COLUMNS} from events where stream_id in (select unnest(?)) "
                "and position <= ? order by position",
                [list(ids), head],
            ).fetchall()
        result: dict[str, list[StoredEvent]] = {sid: [] for sid in ids}
        for event in self._decode(rows):
            result[event.stream_id].append(event)
        return {sid: tuple(events) for sid, events in result.items()}

    def _decode(self, rows: list[tuple[Any, ...]]) -> list[StoredEvent]:
        decode = self.registry.read_event
        events = []
        for (
            position,
            event_id,
            stream,
            version,
            event_type,
            payload,
            metadata,
            recorded,
            schema,
            tags,
        ) in rows:
            current_type, decoded = decode(event_type, payload, schema)
            events.append(
                StoredEvent(
                    event_id=event_id,
                    stream_id=stream,
                    version=version,
                    position=position,
                    event_type=current_type,
                    payload=decoded,
                    metadata=_metadata_decoder.decode(metadata),
                    recorded_at=recorded.astimezone(UTC),
                    tags=tuple(tags) if tags else (),
                )
            )
        return events

    def read_all(self, *, after: int = 0, limit: int | None = None) -> list[StoredEvent]:
        self._check_open()
        after, limit = check_position(after), check_limit(limit)
        with self._lock:
            head = self._head
            if after >= head or limit == 0:
                return []
            if after + 1 >= self._tail_start:
                start = after + 1 - self._tail_start
                return self.registry.current(self._tail[start : None if limit is None else start + limit])
        with self._db_lock:
            self._check_open()
            query = (
                f"select {_TABLE_COLUMNS} from events where position > ? and position <= ? order by position"
            )
            params: list[Any] = [after, head]
            if limit is not None:
                query += " limit ?"
                params.append(limit)
            rows = self._con.execute(query, params).fetchall()
        return self._decode(rows)

    def stream_version(self, stream_id: str) -> int:
        self._check_open()
        sid = StreamId(stream_id)
        with self._lock:
            return self._versions.get(sid, 0)

    def stream_ids(self) -> list[str]:
        """Every stream that has events, in order of first event."""
        self._check_open()
        with self._lock:
            return list(self._versions)

    def head(self) -> int:
        self._check_open()
        with self._lock:
            return self._head

    def wait_for_events(self, after: int, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self._head > after or self._closed, timeout) and (
                self._head > after
            )
