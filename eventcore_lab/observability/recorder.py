"""Observations kept in memory as a table: what a notebook plots and what the dashboard widget shows.

A bounded ring buffer (``maxlen`` rows), so it can stay attached to a long simulation.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

import pandas as pd

from .events import (
    CommandFailed,
    CommandRetried,
    CommandSucceeded,
    Observation,
    ProjectionProgress,
    StoreOperation,
)

_COLUMNS = (
    "time",
    "kind",
    "name",
    "ok",
    "conflicts",
    "code",
    "attempts",
    "duration",
    "events",
    "lag_seconds",
)


class Recorder:
    """An observer that records command ends, store calls and projection progress as rows.

    ``conflicts`` counts the concurrency conflicts a command met, retried or final.
    """

    def __init__(self, maxlen: int = 100_000) -> None:
        self._rows: deque[tuple[Any, ...]] = deque(maxlen=maxlen)
        self._lock = threading.Lock()
        self._conflicts: dict[int, int] = {}  # command id -> conflicts met so far

    def observe(self, observation: Observation) -> None:
        now = time.time()
        kind = type(observation)
        o: Any = observation
        if kind is CommandRetried:
            if o.conflict:
                with self._lock:
                    self._conflicts[o.command_id] = self._conflicts.get(o.command_id, 0) + 1
            return
        if kind is CommandSucceeded:
            met = self._met(o.command_id)
            row = (
                now,
                "command",
                o.command_type,
                True,
                met,
                "",
                o.attempts,
                o.duration,
                o.events_written,
                None,
            )
        elif kind is CommandFailed:
            met = self._met(o.command_id) + int(o.conflict)
            row = (now, "command", o.command_type, False, met, o.error_code, o.attempts, o.duration, 0, None)
        elif kind is StoreOperation:
            row = (now, "store", o.operation, o.ok, 0, "", 1, o.duration, o.events, None)
        elif kind is ProjectionProgress:
            row = (now, "projection", o.projection, True, 0, "", 1, 0.0, o.events, o.lag_seconds)
        else:
            return
        with self._lock:
            self._rows.append(row)

    def _met(self, command_id: int) -> int:
        with self._lock:
            return self._conflicts.pop(command_id, 0)

    def frame(self) -> pd.DataFrame:
        """Every recorded row, oldest first, with ``time`` as UTC timestamps."""
        with self._lock:
            rows = list(self._rows)
        frame = pd.DataFrame(rows, columns=list(_COLUMNS))
        frame["time"] = pd.to_datetime(frame["time"], unit="s", utc=True)
        return frame

    def summary(self, window: float | None = None) -> dict[str, float]:
        """Commands/s, error and conflict rates, latency percentiles (ms) and the worst projection lag,
        over the last ``window`` seconds (default: everything recorded)."""
        frame = self.frame()
        if window is not None and not frame.empty:
            frame = frame[frame["time"] >= frame["time"].max() - pd.Timedelta(seconds=window)]
        commands = frame[frame["kind"] == "command"]
        lags = frame[frame["kind"] == "projection"]
        span = (commands["time"].max() - commands["time"].min()).total_seconds() if len(commands) > 1 else 0.0
        count = len(commands)
        latency = commands["duration"] * 1000
        return {
            "commands": float(count),
            "commands_per_second": count / span if span > 0 else float(count),
            "error_rate": float((~commands["ok"].astype(bool)).mean()) if count else 0.0,
            "conflict_rate": float((commands["conflicts"] > 0).mean()) if count else 0.0,
            "retried_rate": float((commands["attempts"] > 1).mean()) if count else 0.0,
            "p50_ms": float(latency.quantile(0.5)) if count else 0.0,
            "p95_ms": float(latency.quantile(0.95)) if count else 0.0,
            "p99_ms": float(latency.quantile(0.99)) if count else 0.0,
            "max_projection_lag_seconds": float(lags.groupby("name")["lag_seconds"].last().max())
            if len(lags)
            else 0.0,
        }

    def per_second(self) -> pd.DataFrame:
        """Commands, errors, conflicts, p95 latency (ms) and projection lag per second, for plotting."""
        frame = self.frame()
        if frame.empty:
            return pd.DataFrame(columns=["commands", "errors", "conflicts", "p95_ms", "lag_seconds"])
        frame = frame.set_index("time")
        commands = frame[frame["kind"] == "command"]
        per = pd.DataFrame(
            {
                "commands": commands["ok"].resample("1s").count(),
                "errors": (~commands["ok"].astype(bool)).resample("1s").sum(),
                "conflicts": commands["conflicts"].resample("1s").sum(),
                "p95_ms": (commands["duration"] * 1000).resample("1s").quantile(0.95),
            }
        )
        lags = frame[frame["kind"] == "projection"]["lag_seconds"]
        if len(lags):
            per = per.join(lags.astype(float).resample("1s").max().rename("lag_seconds"), how="outer")
        else:
            per["lag_seconds"] = 0.0
        return per.fillna(0.0)

    def plot(self, ax: Any = None) -> Any:
        """Commands/s, errors/s and p95 latency over time (matplotlib)."""
        import matplotlib.pyplot as plt

        per = self.per_second()
        if ax is None:
            _, ax = plt.subplots(figsize=(8, 3))
        # x_compat: matplotlib's date axis; pandas' own takes minutes to draw a recording of one second
        per[["commands", "errors", "conflicts"]].plot(ax=ax, legend=False, x_compat=True)
        ax.set_ylabel("per second")
        ax.set_xlabel("time (one point per second)")
        ax.set_title("commands, errors and conflicts per second; p95 latency")
        right = ax.twinx()
        per["p95_ms"].plot(
            ax=right, color="grey", style="--", label="p95 latency (ms, right axis)", x_compat=True
        )
        right.set_ylabel("p95 latency (ms)")
        # one legend for both axes: a twin axis's lines are otherwise left out of it
        lines = ax.get_lines() + right.get_lines()
        ax.legend(lines, [line.get_label() for line in lines], loc="upper left", fontsize="small")
        return ax

    def clear(self) -> None:
        with self._lock:
            self._rows.clear()
