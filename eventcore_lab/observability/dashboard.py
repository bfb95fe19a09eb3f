"""A small live dashboard for a notebook: rates, latency percentiles and projection lag from a Recorder.

Needs the ``lab`` extra (ipywidgets, matplotlib). It reads a :class:`~.recorder.Recorder`, so it works
the same for a simulation, a notebook session or a long-running process that records observations.
"""

from __future__ import annotations

import html
import threading

import ipywidgets as widgets

from .recorder import Recorder

_LABELS = (
    ("commands", "commands", "{:.0f}"),
    ("commands_per_second", "commands/s", "{:.1f}"),
    ("error_rate", "error rate", "{:.1%}"),
    ("conflict_rate", "met a conflict", "{:.1%}"),
    ("retried_rate", "retried", "{:.1%}"),
    ("p50_ms", "p50 ms", "{:.2f}"),
    ("p95_ms", "p95 ms", "{:.2f}"),
    ("p99_ms", "p99 ms", "{:.2f}"),
    ("max_projection_lag_seconds", "worst projection lag s", "{:.1f}"),
)


def summary_html(summary: dict[str, float]) -> str:
    cells = "".join(
        f"<tr><th style='text-align:left'>{html.escape(label)}</th><td>{fmt.format(summary[key])}</td></tr>"
        for key, label, fmt in _LABELS
    )
    return f"<table class='ec-dashboard'>{cells}</table>"


class Dashboard(widgets.VBox):
    """Summary table and a per-second plot of a Recorder; :meth:`refresh` redraws, :meth:`start`
    redraws every ``interval`` seconds from a thread until :meth:`stop`."""

    def __init__(self, recorder: Recorder, *, window: float | None = 60.0) -> None:
        self.recorder = recorder
        self.window = window
        self.table = widgets.HTML()
        self.plot = widgets.Output()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        super().__init__(children=[widgets.HTML("<b>eventcore-lab</b>"), self.table, self.plot])
        self.refresh()

    def refresh(self) -> dict[str, float]:
        """Redraw from the recorder; returns the summary shown."""
        summary = self.recorder.summary(self.window)
        self.table.value = summary_html(summary)
        import matplotlib.pyplot as plt

        self.plot.clear_output(wait=True)
        with self.plot:
            if summary["commands"]:
                ax = self.recorder.plot()
                plt.show(ax.figure)
        return summary

    def start(self, interval: float = 1.0) -> Dashboard:
        if self._thread is not None and self._thread.is_alive():
            return self
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(interval):
                self.refresh()

        self._thread = threading.Thread(target=loop, name="eventcore-dashboard", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self._thread = None


__all__ = ["Dashboard", "summary_html"]
