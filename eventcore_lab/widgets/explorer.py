"""Stream explorer: pick a stream, see its events as a table, inspect one event in full."""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets

from ..stores.base import EventStore, StreamListing
from ._render import event_detail, events_table


def stream_ids(store: EventStore) -> list[str]:
    """Every stream of ``store``: its ``stream_ids()`` when it can list them, else read from the log."""
    if isinstance(store, StreamListing):
        return sorted(store.stream_ids())
    return sorted({e.stream_id for e in store.read_all()})


class StreamExplorer(widgets.VBox):
    """Browse a store stream by stream. Call :meth:`refresh` (or click ↻) after new writes."""

    def __init__(self, store: Any, *, stream: str | None = None) -> None:
        self.store = store
        picker = {"style": {"description_width": "60px"}, "layout": {"width": "100%", "max_width": "420px"}}
        self.stream_picker = widgets.Dropdown(description="stream", options=[], **picker)
        self.refresh_button = widgets.Button(
            description="↻ refresh", layout={"width": "110px", "flex": "0 0 auto"}
        )
        self.event_picker = widgets.Dropdown(description="event", options=[], **picker)
        self.table = widgets.HTML(layout={"width": "100%", "overflow": "auto", "max_height": "300px"})
        self.detail = widgets.HTML(layout={"width": "100%", "overflow": "auto", "max_height": "300px"})
        self.events: list[Any] = []
        self.refresh_button.add_class("ec-refresh")
        self.table.add_class("ec-explorer-table")
        self._quiet = False
        self.stream_picker.observe(self._on_stream_change, names="value")
        self.event_picker.observe(lambda _change: self._show_event(), names="value")
        self.refresh_button.on_click(lambda _button: self.refresh())
        super().__init__(
            children=[
                widgets.HTML("<b>Stream explorer</b>"),
                widgets.HBox([self.stream_picker, self.refresh_button]),
                self.table,
                self.event_picker,
                self.detail,
            ],
            layout={"width": "100%", "min_width": "0"},
        )
        self.add_class("ec-stream-explorer")
        self.refresh(select=stream)

    @property
    def stream(self) -> str | None:
        value = self.stream_picker.value
        return str(value) if value else None

    def refresh(self, select: str | None = None) -> None:
        """Re-read the list of streams and the shown stream; ``select`` switches to that stream."""
        current = select or self.stream
        options = stream_ids(self.store)
        self._quiet = True  # one redraw at the end, not one per intermediate value
        try:
            self.stream_picker.options = options
            if current in options:
                self.stream_picker.value = current
            elif options:
                self.stream_picker.value = options[0]
        finally:
            self._quiet = False
        self._show_stream()

    def _on_stream_change(self, _change: Any) -> None:
        if not self._quiet:
            self._show_stream()

    def _show_stream(self) -> None:
        self.events = list(self.store.read_stream(self.stream)) if self.stream else []
        self.table.value = events_table(self.events)
        options = [(f"v{e.version} · {e.event_type}", e.version) for e in self.events]
        self.event_picker.options = options
        if options:
            self.event_picker.value = options[-1][1]
        self._show_event()

    def _show_event(self) -> None:
        chosen = next((e for e in self.events if e.version == self.event_picker.value), None)
        self.detail.value = event_detail(chosen) if chosen is not None else ""
