"""Time travel with a slider: the timeline of history with a marker, and a read model as it was at the
chosen position."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from ..core.errors import InvalidFormat
from ..modeling.timeline import Timeline
from ._render import read_model_html


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
            self.all_events = list(source.read_all() if hasattr(source, "read_all") else source)
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
        """The read model built from every event with a position up to ``position``."""
        model = self.factory()
        for event in self.all_events:
            if event.position > position:
                break
            model.apply(event)
        return model

    @property
    def current(self) -> Any:
        return self.state_at(self.slider.value)

    def _redraw(self) -> None:
        svg = self.timeline.with_marker(self.slider.value).svg()
        self.picture.value = svg.replace("<svg ", '<svg style="display:block;width:100%;height:auto" ', 1)
        self.state.value = self.view(self.current)
