"""Notifications between stores: NOTIFY after own appends (from a background thread, one per burst)
and one LISTEN thread per store, which wakes waiting readers and drops cached streams others wrote."""

from __future__ import annotations

import threading
from collections.abc import Iterable

import msgspec
import psycopg
from psycopg import sql

from ...core.errors import EventCoreError
from ._migrations import _MigrationMixin


class _Note(msgspec.Struct):
    """What a NOTIFY carries: the writer's head, which store sent it, the streams written (None: many)."""

    head: int
    from_: str = msgspec.field(name="from", default="")
    streams: list[str] | None = None


_note_decoder = msgspec.json.Decoder(_Note)


_encode = msgspec.json.Encoder().encode


class _NotifyMixin(_MigrationMixin):
    """NOTIFY after appends, LISTEN for other stores' appends."""

    def _saw_head(self, position: int) -> None:
        with self._changed:
            if position > self._known_head:
                self._known_head = position
                self._changed.notify_all()

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
