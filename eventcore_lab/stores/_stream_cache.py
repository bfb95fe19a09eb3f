"""The stream cache both durable stores keep: recent streams' events in memory, bounded, thread-safe.

A command reads whole streams; serving those from memory saves a database round trip and the decoding
of every event. What may be cached differs per store (DuckDB knows every write, PostgreSQL learns of
other processes' writes late), so this module only keeps entries and the rules that make them safe to
combine; each store decides when to fill, extend and drop.

**One snapshot per read.** Every entry carries a *stamp*: entries with the same stamp were read or
written together, by one database statement, so they are streams as of one moment. A reader that wants
several streams as one consistent snapshot may combine cached entries only when they share a stamp
(:meth:`StreamCache.get` reports the stamps); otherwise it must refresh them together. A store whose
cache always mirrors its committed state (DuckDB) ignores stamps.

**Streams seen.** Apart from the entries, the cache remembers (bounded, oldest forgotten first) every
stream it ever held or was told to drop, so a store may treat a stream it has never seen as empty
(:meth:`StreamCache.unseen`) without guessing wrong about one it merely evicted.

**Entries only move forward.** A fill never replaces a longer entry with a shorter one, and ``epoch``
counts drops, so a database read that started before a drop cannot put back what the drop removed.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence

from ..core.events import StoredEvent

Events = tuple[StoredEvent, ...]


class StreamCache:
    """Streams' events keyed by stream id, least recently used first; at most ``max_events`` events
    (an empty stream counts as one)."""

    def __init__(self, max_events: int) -> None:
        self.max_events = max_events
        self.epoch = 0
        self._lock = threading.Lock()
        self._streams: OrderedDict[str, tuple[Events, int]] = OrderedDict()
        self._size = 0
        self._stamp = 0
        self._seen: dict[str, None] = {}
        self._max_seen = max(100_000, 10 * max_events)
        #: streams treated as empty without a read, and those whose guess a command had to confirm
        self.guessed = 0
        self.missed = 0

    def __len__(self) -> int:
        return len(self._streams)

    def __contains__(self, sid: object) -> bool:
        return sid in self._streams

    def new_stamp(self) -> int:
        """A stamp no entry has yet, for the streams one database statement returns."""
        with self._lock:
            self._stamp += 1
            return self._stamp

    def get(self, ids: Iterable[str]) -> tuple[dict[str, Events], list[str], set[int], int]:
        """The cached streams among ``ids``, the others, the stamps of those found, and the epoch to
        pass to :meth:`fill`."""
        found: dict[str, Events] = {}
        missing: list[str] = []
        stamps: set[int] = set()
        with self._lock:
            streams = self._streams
            for sid in ids:
                entry = streams.get(sid)
                if entry is None:
                    missing.append(sid)
                else:
                    streams.move_to_end(sid)
                    found[sid] = entry[0]
                    stamps.add(entry[1])
            return found, missing, stamps, self.epoch

    def unseen(self, ids: Iterable[str]) -> list[str]:
        """The streams among ``ids`` this cache has never held nor dropped (as far as it remembers)."""
        seen = self._seen
        return [sid for sid in ids if sid not in seen]

    def guesses(self, count: int) -> None:
        """Count streams a read treated as empty without asking the database."""
        with self._lock:
            self.guessed += count

    def missed_guesses(self, ids: Iterable[str]) -> None:
        """A command could not rely on its guess about these streams: never guess them again."""
        with self._lock:
            for sid in ids:
                self.missed += 1
                self._see(sid)

    def _see(self, sid: str) -> None:
        seen = self._seen
        if sid not in seen:
            seen[sid] = None
            if len(seen) > self._max_seen:
                del seen[next(iter(seen))]

    def fill(self, streams: Mapping[str, Sequence[StoredEvent]], epoch: int, stamp: int = 0) -> None:
        """Keep streams read together from the database, unless something was dropped since the read
        began; a stream cached longer meanwhile (an own append) keeps its newer entry."""
        with self._lock:
            if epoch != self.epoch:
                return
            for sid, events in streams.items():
                current = self._streams.get(sid)
                if current is None or len(events) >= len(current[0]):
                    self._put(sid, tuple(events), stamp)
            self._trim()

    def extend(
        self,
        written: Sequence[StoredEvent],
        epoch: int | None = None,
        stamp: int = 0,
        confirmed: Mapping[str, int] | None = None,
    ) -> None:
        """Add a committed append where the cached stream ends right before it; drop it otherwise.

        ``confirmed`` maps streams the append checked (but did not write) to the exact version they had
        at its commit: entries of that length get ``stamp`` too, as they are known current then.
        ``epoch`` (when given) is the epoch before the append: after a drop, its streams are dropped.
        """
        by_stream: dict[str, list[StoredEvent]] = {}
        for event in written:
            by_stream.setdefault(event.stream_id, []).append(event)
        with self._lock:
            current = epoch is None or epoch == self.epoch
            for sid, events in by_stream.items():
                entry = self._streams.get(sid)
                cached: Events = () if entry is None else entry[0]
                if current and len(cached) == events[0].version - 1:
                    self._put(sid, cached + tuple(events), stamp)
                else:
                    self._pop(sid)
            for sid, version in (confirmed or {}).items():
                entry = self._streams.get(sid)
                if sid not in by_stream and entry is not None:
                    if current and len(entry[0]) == version:
                        self._streams[sid] = (entry[0], stamp)
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
                    self._see(sid)

    def _put(self, sid: str, events: Events, stamp: int) -> None:
        self._pop(sid)
        self._see(sid)
        self._streams[sid] = (events, stamp)
        self._size += max(1, len(events))

    def _pop(self, sid: str) -> None:
        entry = self._streams.pop(sid, None)
        if entry is not None:
            self._size -= max(1, len(entry[0]))

    def _trim(self) -> None:
        while self._size > self.max_events and self._streams:
            _, (events, _stamp) = self._streams.popitem(last=False)
            self._size -= max(1, len(events))
