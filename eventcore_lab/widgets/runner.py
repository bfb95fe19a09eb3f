"""Command runner: choose a command, fill in the form generated from its fields, run it through an
executor, and see the events written or the error."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable
from typing import Any

import ipywidgets as widgets

from ..core.errors import EventCoreError, InvalidFormat
from ..core.events import Metadata
from ..core.executor import ExecutionResult, Executor
from ..modeling.checks import COMMAND_KEY
from ._render import error_box, events_table
from .forms import CommandForm


class CommandRunner(widgets.VBox):
    """Run commands from a form. ``on_result`` callbacks get each ExecutionResult (e.g. to refresh an
    explorer); the command's name is recorded in ``metadata.custom["command"]`` so that timelines and
    history checks can name it."""

    def __init__(
        self,
        target: Any,
        commands: Iterable[type],
        *,
        on_result: Callable[[ExecutionResult], Any] | None = None,
        user_id: str | None = None,
    ) -> None:
        self.executor = target if isinstance(target, Executor) else Executor(target)
        self.commands = {c.__name__: c for c in commands}
        if not self.commands:
            raise InvalidFormat("a command runner needs at least one command class")
        self.user_id = user_id
        self.callbacks: list[Callable[[ExecutionResult], Any]] = [on_result] if on_result else []
        self.last_result: ExecutionResult | None = None
        self.last_error: BaseException | None = None
        self.picker = widgets.Dropdown(
            description="command",
            options=list(self.commands),
            style={"description_width": "130px"},
            layout={"width": "calc(100% - 6px)"},
        )
        self.form_box = widgets.VBox(layout={"width": "100%"})
        self.run_button = widgets.Button(
            description="Run", button_style="primary", icon="play", layout={"margin": "4px 0 4px 134px"}
        )
        self.output = widgets.HTML(layout={"width": "100%", "max_height": "320px", "overflow": "auto"})
        self.run_button.add_class("ec-run")
        self.output.add_class("ec-runner-output")
        self.form: CommandForm = CommandForm(self.commands[self.picker.value])
        self.form_box.children = [self.form]
        self.picker.observe(lambda _change: self._new_form(), names="value")
        self.run_button.on_click(lambda _button: self.run())
        super().__init__(
            children=[
                widgets.HTML("<b>Command runner</b>"),
                self.picker,
                self.form_box,
                self.run_button,
                self.output,
            ],
            layout={"width": "100%", "min_width": "0"},
        )
        self.add_class("ec-command-runner")

    def _new_form(self) -> None:
        self.form = CommandForm(self.commands[self.picker.value])
        self.form_box.children = [self.form]
        self.output.value = ""

    def choose(self, command: str | type, **values: Any) -> CommandRunner:
        """Pick a command and fill its form (scripted use; the same as clicking)."""
        name = command if isinstance(command, str) else command.__name__
        if name not in self.commands:
            raise InvalidFormat(f"unknown command {name!r}; this runner has {', '.join(self.commands)}")
        self.picker.value = name
        self.form.set(**values)
        return self

    def run(self) -> ExecutionResult | None:
        """Build the command from the form and execute it; shows and returns the result (None on error)."""
        self.last_result, self.last_error = None, None
        try:
            command = self.form.build()
            name = type(command).__name__
            result = self.executor.execute(
                command, metadata=Metadata(user_id=self.user_id, custom={COMMAND_KEY: name})
            )
        except (EventCoreError, TypeError, ValueError) as error:
            self.last_error = error
            self.output.value = error_box(error)
            return None
        self.form.show_errors({})
        self.last_result = result
        written = len(result.events_written)
        summary = (
            f"<div class='ec-ok' style='color:#1b5e20'><b>{html.escape(name)}</b> wrote {written} "
            f"event(s) on {len(result.streams_affected)} stream(s), attempt {result.attempts}</div>"
        )
        self.output.value = summary + events_table(result.events_written, css_class="ec-written")
        for callback in self.callbacks:
            callback(result)
        return result
