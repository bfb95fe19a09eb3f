"""Time travel with a slider: the timeline of history with a marker, and a read model as it was at the
chosen position."""

from __future__ import annotations

import bisect
import copy
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from ..core.errors import InvalidFormat
from ..modeling.timeline import Timeline
from ._render import read_model_html

#: events between two kept states of the slider's read model
CHECKPOINT_EVENTS = 5_000


def _position(event: Any) -> int:
    return int(event.position)


class TimelineSlider(widgets.VBox):
    """A position slider over recorded history. ``projection`` is a factory (a class, or a function
    returning a new empty read model): the state at position p is a fresh fold of events up to p."""

    def __init__(
        self,
        source: Any,
        projection: Callable[[], Any],
        *,
        streams: Any = None,
        view: Callable[[Any], str] = read_model_html,
        title: str = "",
    ) -> None:
        if not callable(projection):
            raise InvalidFormat("TimelineSlider needs a projection factory: a class or a function making one")
        from ..modeling.timeline import timeline

        self.factory = projection
        self.view = view
        self.timeline: Timeline = timeline(source, streams=streams, title=title)
        if streams is None and hasattr(source, "read_all"):  # the whole log, read once, in position order
            self.all_events = self.timeline.events
        else:
            self.all_events = sorted(
                source.read_all() if hasattr(source, "read_all") else source, key=_position
            )
        self._checkpoints: list[Any] = []  # the model after CHECKPOINT_EVENTS * (i + 1) events
        self._copyable = True
        head = max((e.position for e in self.all_events), default=0)
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
        """The read model built from every event with a position up to ``position`` (a new object).

        Folds resume from a copy of the state kept every ``CHECKPOINT_EVENTS`` events, so a move
        folds at most that many events; a model that cannot be deep-copied is always folded afresh.
        """
        events = self.all_events
        count = bisect.bisect_right(events, position, key=_position)
        start = min(count // CHECKPOINT_EVENTS, len(self._checkpoints)) - 1  # -1: from the factory
        model = copy.deepcopy(self._checkpoints[start]) if start >= 0 else self.factory()
        folded = (start + 1) * CHECKPOINT_EVENTS if start >= 0 else 0
        keep = self._copyable
        for index in range(folded, count):
            model.apply(events[index])
            if (
                keep
                and (index + 1) % CHECKPOINT_EVENTS == 0
                and (index + 1) // CHECKPOINT_EVENTS > len(self._checkpoints)
            ):
                keep = self._keep(model)
        return model

    def _keep(self, model: Any) -> bool:
        """Remember a copy of ``model`` as the next checkpoint; False (and no more) if it cannot be copied."""
        try:
            self._checkpoints.append(copy.deepcopy(model))
        except Exception:  # a model holding a lock, a connection...: fold from the start instead
            self._copyable = False
            self._checkpoints.clear()
        return self._copyable

    @property
    def current(self) -> Any:
        return self.state_at(self.slider.value)

    def _redraw(self) -> None:
        marked = self.timeline.with_marker(self.slider.value)
        self.picture.value = marked.svg(attributes='style="display:block;width:100%;height:auto"')
        self.state.value = self.view(self.current)
