"""Time travel with a slider: the timeline of history with a marker, and a read model as it was at the
chosen position."""

from __future__ import annotations

import html
import threading
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from ..core.errors import InvalidFormat
from ..modeling.timeline import Timeline
from ._folds import CHECKPOINT_EVENTS, Folds, list_reader, store_reader
from ._render import read_model_html

__all__ = ["CHECKPOINT_EVENTS", "TimelineSlider"]


class TimelineSlider(widgets.VBox):
    """A position slider over recorded history. ``projection`` is a factory (a class, or a function
    returning a new empty read model): the state at position p is a fresh fold of events up to p.

    Opening a store does not read its whole log at once: states are folded from pages of it, and the
    picture of a long log is counted by the store where it can (see
    :func:`~eventcore_lab.modeling.timeline.timeline`). A state more than ``CHECKPOINT_EVENTS`` events
    past the states kept so far is folded in a background thread, which keeps states on its way to the
    head; the pane says how far it got and shows the state when it gets there (:meth:`wait` waits for
    it). The log is the store's up to its head when the slider opened. ``streams`` narrows the picture
    only: states are folds of the whole log.
    """

    def __init__(
        self,
        source: Any,
        projection: Callable[[], Any],
        *,
        streams: Any = None,
        view: Callable[[Any], str] = read_model_html,
        title: str = "",
    ) -> None:
        self._stop = threading.Event()  # set by close(): the background fold stops
        if not callable(projection):
            raise InvalidFormat("TimelineSlider needs a projection factory: a class or a function making one")
        from ..modeling.timeline import timeline

        self.factory = projection
        self.view = view
        if hasattr(source, "read_all"):  # a store: the log up to its head now, read page by page
            head = source.head()
            self.timeline: Timeline = timeline(source, streams=streams, end=head, title=title)
            self.folds = Folds(projection, store_reader(source), head)
        else:
            events = sorted(source, key=lambda e: int(e.position))
            head = int(events[-1].position) if events else 0
            self.timeline = timeline(events, streams=streams, title=title)
            self.folds = Folds(projection, list_reader(events), head)
        self._lock = threading.Lock()  # the state pane: which position it shows
        self._shown: int | None = None
        self._worker: threading.Thread | None = None
        width, _ = self.timeline.size()
        start, end = self.timeline.marker_x(0), self.timeline.marker_x(head)
        # the slider's track spans the picture from the marker at 0 to the marker at the head; both are
        # sized in percent of the same box, so they stay aligned at whatever width the page gives them
        # (the handle's half-width of slack on each side is what ipywidgets keeps around its track)
        slack = 8.0
        self.slider = widgets.IntSlider(
            description="",
            min=0,
            max=head,
            value=head,
            continuous_update=False,
            readout=False,
            style={"description_width": "0px"},
            layout={
                "width": f"{100 * (end - start + 2 * slack) / width:.3f}%",
                "margin": f"0 0 0 {100 * (start - slack) / width:.3f}%",
            },
        )
        self.picture = widgets.HTML(layout={"width": "100%"})
        self.state = widgets.HTML(layout={"width": "100%", "overflow": "auto"})
        self.slider.add_class("ec-position")
        self.picture.add_class("ec-timeline-picture")
        self.slider.observe(lambda _change: self._redraw(), names="value")
        hint = widgets.HTML(
            "<small>Drag the handle under the timeline: the red line and the read model below follow "
            "it.</small>"
        )
        super().__init__(
            children=[hint, self.picture, self.slider, self.state],
            layout={"width": "100%", "max_width": f"{width:.0f}px"},
        )
        self.add_class("ec-timeline-slider")
        self._redraw()

    def state_at(self, position: int) -> Any:
        """A new read model built from every event with a position up to ``position`` (events appended
        after the slider opened are not included)."""
        return self.folds.state_at(position)

    @property
    def current(self) -> Any:
        return self.state_at(self.slider.value)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the background fold (if any) is over: every state is then near a kept one and the
        pane shows the state at the slider's position. False if ``timeout`` seconds passed first."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout)
        return worker is None or not worker.is_alive()

    def close(self) -> None:
        self._stop.set()
        super().close()

    def _redraw(self) -> None:
        marked = self.timeline.with_marker(self.slider.value)
        self.picture.value = marked.svg(attributes='style="display:block;width:100%;height:auto"')
        self._show_state()

    def _show_state(self) -> None:
        """Show the state at the slider's position when it is near a kept one; else say so, and fold
        on in the background, which shows it when it gets there."""
        position = self.slider.value
        with self._lock:
            if self._shown == position:
                return
            if not self.folds.near(position):
                self._shown = None
                self.state.value = (
                    f"<em>folding the log up to position {position:,}: "
                    f"{self.folds.folded:,} of {self.folds.head:,} folded so far...</em>"
                )
                self._fold_in_background()
                return
        shown = self.view(self.folds.state_at(position))
        with self._lock:
            if self.slider.value == position:  # not moved meanwhile
                self.state.value = shown
                self._shown = position

    def _fold_in_background(self) -> None:
        if self._worker is None:
            self._worker = threading.Thread(target=self._fold_ahead, name="slider-fold", daemon=True)
            self._worker.start()

    def _fold_ahead(self) -> None:
        try:
            self.folds.fold_ahead(self._show_state, self._stop)
        except Exception as exc:  # a projection that fails, a store closed meanwhile: said in the pane
            self.state.value = f"<pre>folding failed: {html.escape(repr(exc))}</pre>"
