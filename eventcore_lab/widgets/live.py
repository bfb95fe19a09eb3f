"""A read model that updates as events arrive: catch up now, or follow the store from a thread."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from ._render import read_model_html


class LiveProjection(widgets.VBox):
    """Shows ``projection`` (any object with ``apply(event)``) kept up to date with ``store``.

    :meth:`catch_up` applies what is new and redraws; :meth:`start` does that in a background thread each
    time the store reports new events (``wait_for_events``), until :meth:`stop`.
    """

    def __init__(
        self,
        store: Any,
        projection: Any,
        *,
        view: Callable[[Any], str] = read_model_html,
        title: str | None = None,
    ) -> None:
        self.store = store
        self.projection = projection
        self.view = view
        self.position = 0
        self.status = widgets.HTML()
        self.body = widgets.HTML()
        self.body.add_class("ec-live-body")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        name = title or getattr(projection, "name", None) or type(projection).__name__
        super().__init__(children=[widgets.HTML(f"<b>{name}</b>"), self.status, self.body])
        self.add_class("ec-live-projection")
        self.catch_up()

    def catch_up(self) -> int:
        """Apply events after the last one applied; returns how many there were."""
        with self._lock:
            events = self.store.read_all(after=self.position)
            for event in events:
                self.projection.apply(event)
                self.position = event.position
            self.status.value = f"<small>at position {self.position}</small>"
            if events or not self.body.value:
                self.body.value = self.view(self.projection)
            return len(events)

    def start(self, poll: float = 0.5) -> None:
        """Follow the store in a daemon thread (waking up at least every ``poll`` seconds to check stop)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._follow, args=(poll,), daemon=True, name="ec-live")
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _follow(self, poll: float) -> None:
        while not self._stop.is_set():
            if self.store.wait_for_events(self.position, poll):
                self.catch_up()
