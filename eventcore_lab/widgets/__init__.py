"""Notebook widgets (ipywidgets, no build step): a stream explorer, a command runner with forms generated
from command fields, a live projection view, and a timeline slider for time travel."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import ipywidgets as widgets

from .explorer import StreamExplorer, stream_ids
from .forms import CommandForm, FormInvalid, parse_value, placeholder_for
from .live import LiveProjection
from .runner import CommandRunner
from .slider import TimelineSlider


class Workbench(widgets.GridBox):
    """A command runner beside a stream explorer that jumps to the stream each command wrote.

    A two-column grid with fixed shares of the width: the explorer stays where it is however much the
    runner's output grows, and both columns narrow with the notebook instead of overflowing it.
    """

    def __init__(self, store: Any, commands: Iterable[type], **runner_options: Any) -> None:
        self.explorer = StreamExplorer(store)
        self.runner = CommandRunner(store, commands, **runner_options)
        self.runner.callbacks.append(self._show_written)
        super().__init__(
            children=[self.runner, self.explorer],
            layout=widgets.Layout(
                grid_template_columns="minmax(0, 5fr) minmax(0, 6fr)",
                grid_gap="0 24px",
                width="100%",
                align_items="flex-start",
            ),
        )
        self.add_class("ec-workbench")

    def _show_written(self, result: Any) -> None:
        written = result.events_written
        self.explorer.refresh(select=written[-1].stream_id if written else None)


__all__ = [
    "CommandForm",
    "CommandRunner",
    "FormInvalid",
    "LiveProjection",
    "StreamExplorer",
    "TimelineSlider",
    "Workbench",
    "parse_value",
    "placeholder_for",
    "stream_ids",
]
