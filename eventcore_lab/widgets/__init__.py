"""Notebook widgets (ipywidgets, no build step): a stream explorer, a command runner with forms generated
from command fields, a live projection view, and a timeline slider for time travel."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import ipywidgets as widgets

from .explorer import StreamExplorer, stream_ids
from .forms import CommandForm, parse_value
from .live import LiveProjection
from .runner import CommandRunner
from .slider import TimelineSlider


class Workbench(widgets.HBox):
    """A command runner beside a stream explorer that jumps to the stream each command wrote."""

    def __init__(self, store: Any, commands: Iterable[type], **runner_options: Any) -> None:
        self.explorer = StreamExplorer(store)
        self.runner = CommandRunner(store, commands, **runner_options)
        self.runner.callbacks.append(self._show_written)
        super().__init__(children=[self.runner, self.explorer])
        self.add_class("ec-workbench")

    def _show_written(self, result: Any) -> None:
        written = result.events_written
        self.explorer.refresh(select=written[-1].stream_id if written else None)


__all__ = [
    "CommandForm",
    "CommandRunner",
    "LiveProjection",
    "StreamExplorer",
    "TimelineSlider",
    "Workbench",
    "parse_value",
    "stream_ids",
]
