"""Stream explorer: pick a stream, see its events as a table, inspect one event in full.

The picker lists at most ``LISTED`` streams; typing in the filter above it narrows every stream of
the store down to the matching ones (typing a whole id shows that stream). A store of 10,000 streams
would otherwise send a 10,000-option drop-down to the browser, and nobody scrolls through it.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets

from ..stores.base import EventStore, StreamListing
from ._render import event_detail, events_table

#: the most streams the picker lists at once
LISTED = 200


def matching(streams: list[str], text: str) -> list[str]:
    """The streams whose id contains ``text`` (ignoring case and surrounding spaces), in order."""
    needle = text.strip().lower()
    return [s for s in streams if needle in s.lower()] if needle else streams


def stream_ids(store: EventStore) -> list[str]:
    """Every stream of ``store``: its ``stream_ids()`` when it can list them, else read from the log."""
    if isinstance(store, StreamListing):
        return sorted(store.stream_ids())
    return sorted({e.stream_id for e in store.read_all()})


class StreamExplorer(widgets.VBox):
    """Browse a store stream by stream. Call :meth:`refresh` (or click ↻) after new writes; type in
    ``stream_filter`` to narrow the listed streams, or call :meth:`show` with any stream id."""

    def __init__(self, store: Any, *, stream: str | None = None) -> None:
        self.store = store
        picker = {"style": {"description_width": "60px"}, "layout": {"width": "100%", "max_width": "420px"}}
        self.stream_picker = widgets.Dropdown(description="stream", options=[], **picker)
        self.stream_filter = widgets.Text(
            description="filter", placeholder="type to filter streams", continuous_update=True, **picker
        )
        self.stream_count = widgets.HTML()
        self.all_streams: list[str] = []
        self._known: frozenset[str] = frozenset()
        self.refresh_button = widgets.Button(
            description="↻ refresh", layout={"width": "110px", "flex": "0 0 auto"}
        )
        self.event_picker = widgets.Dropdown(description="event", options=[], **picker)
        self.table = widgets.HTML(layout={"width": "100%", "overflow": "auto", "max_height": "300px"})
        self.detail = widgets.HTML(layout={"width": "100%", "overflow": "auto", "max_height": "300px"})
        self.events: list[Any] = []
        self.refresh_button.add_class("ec-refresh")
        self.table.add_class("ec-explorer-table")
        self.stream_filter.add_class("ec-stream-filter")
        self._quiet = False
        self.stream_picker.observe(self._on_stream_change, names="value")
        self.event_picker.observe(lambda _change: self._show_event(), names="value")
        self.refresh_button.on_click(lambda _button: self.refresh())
        self.stream_filter.observe(lambda _change: self._on_filter(), names="value")
        super().__init__(
            children=[
                widgets.HTML("<b>Stream explorer</b>"),
                widgets.HBox([self.stream_filter, self.stream_count]),
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
        self.all_streams = stream_ids(self.store)
        self._known = frozenset(self.all_streams)
        self._list(current, always=select is not None)
        self._show_stream()

    def show(self, stream: str) -> None:
        """Show ``stream`` whether or not the picker lists it now (a stream the store does not have
        shows no events)."""
        if stream != self.stream:
            self._list(stream, always=True)
            self._show_stream()

    def _on_filter(self) -> None:
        """List the streams matching the filter; show the exact match, else keep the shown stream if
        it matches, else show the first match."""
        before = self.stream
        typed = self.stream_filter.value.strip()
        self._list(typed if typed in self._known else before)
        if self.stream != before:
            self._show_stream()

    def _list(self, current: str | None, *, always: bool = False) -> None:
        """Put the first ``LISTED`` matching streams in the picker and select ``current`` if it is
        one of them (or ``always``), else the first; no redraw (the caller does one)."""
        matches = matching(self.all_streams, self.stream_filter.value)
        options = matches[:LISTED]
        if current is not None and current not in options and (always or current in matches[LISTED:]):
            options = [current, *options]
        shown = f"{len(matches):,} of {len(self.all_streams):,} streams"
        self.stream_count.value = (
            f"<small>{shown}{f', {LISTED} listed' if len(options) < len(matches) else ''}</small>"
        )
        self._quiet = True  # one redraw at the end, not one per intermediate value
        try:
            self.stream_picker.options = options
            if current in options:
                self.stream_picker.value = current
            elif options:
                self.stream_picker.value = options[0]
        finally:
            self._quiet = False

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
