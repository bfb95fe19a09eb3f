"""What a run produced, as a DataFrame with one row per command, a summary, and plots."""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Column order of :attr:`SimulationResult.frame`.
COLUMNS = [
    "client",
    "index",
    "op",
    "command",
    "streams",
    "attempts",
    "conflicts",
    "failures",
    "outcome",
    "error",
    "conflict_streams",
    "events",
    "start",
    "end",
    "latency",
]

#: Outcomes: ``ok`` (committed), ``rejected`` (the domain said no: validation or business rule),
#: ``conflict`` (retries exhausted on conflicts), ``failed`` (any other error, e.g. store failures).
OUTCOMES = ("ok", "rejected", "conflict", "failed")


@dataclass(slots=True)
class CommandRecord:
    """One command's fate. Times are seconds since the run started (virtual or wall clock)."""

    client: int
    index: int
    op: str
    command: str
    streams: tuple[str, ...]
    attempts: int = 0
    conflicts: int = 0
    failures: int = 0
    outcome: str = "ok"
    error: str = ""
    conflict_streams: tuple[str, ...] = field(default=())
    events: int = 0
    start: float = 0.0
    end: float = 0.0

    def row(self) -> dict[str, Any]:
        # by hand, not dataclasses.asdict: that deep-copies every field, a fifth of a simulated command
        return {
            "client": self.client,
            "index": self.index,
            "op": self.op,
            "command": self.command,
            "streams": self.streams,
            "attempts": self.attempts,
            "conflicts": self.conflicts,
            "failures": self.failures,
            "outcome": self.outcome,
            "error": self.error,
            "conflict_streams": self.conflict_streams,
            "events": self.events,
            "start": self.start,
            "end": self.end,
            "latency": self.end - self.start,
        }


#: A record's fields in column order (``latency`` is computed from ``start`` and ``end``).
_FIELDS = COLUMNS[:-1]
_values = operator.attrgetter(*_FIELDS)


def records_frame(records: list[CommandRecord]) -> pd.DataFrame:
    # rows as tuples, latency and order by column: a third faster than a dict per row, same frame
    frame = pd.DataFrame([_values(r) for r in records], columns=_FIELDS)
    frame["latency"] = frame["end"] - frame["start"]
    frame = frame.sort_values(["start", "client", "index"], kind="stable").reset_index(drop=True)
    return frame.astype(
        {"client": "int64", "index": "int64", "attempts": "int64", "conflicts": "int64", "events": "int64"}
    )


@dataclass
class SimulationResult:
    """The outcome of a run. ``frame`` has one row per command (columns in :data:`COLUMNS`)."""

    frame: pd.DataFrame
    mode: str
    elapsed: float
    store: Any = field(repr=False, default=None)

    def summary(self) -> pd.Series:
        """Throughput, latency percentiles (ms, committed commands) and conflict/failure rates."""
        f = self.frame
        n = len(f)
        ok = f[f["outcome"] == "ok"]
        attempts = int(f["attempts"].sum())
        lat = ok["latency"] * 1000.0
        data = {
            "mode": self.mode,
            "commands": n,
            "succeeded": len(ok),
            "rejected": int((f["outcome"] == "rejected").sum()),
            "failed": int(f["outcome"].isin(["conflict", "failed"]).sum()),
            "success_rate": len(ok) / n if n else float("nan"),
            "failure_rate": float(f["outcome"].isin(["conflict", "failed"]).mean()) if n else float("nan"),
            "attempts": attempts,
            "mean_attempts": attempts / n if n else float("nan"),
            "conflicts": int(f["conflicts"].sum()),
            "conflict_rate": int(f["conflicts"].sum()) / attempts if attempts else 0.0,
            "elapsed_s": self.elapsed,
            "throughput_per_s": len(ok) / self.elapsed if self.elapsed > 0 else float("nan"),
            "p50_ms": float(lat.quantile(0.50)) if len(ok) else float("nan"),
            "p95_ms": float(lat.quantile(0.95)) if len(ok) else float("nan"),
            "p99_ms": float(lat.quantile(0.99)) if len(ok) else float("nan"),
        }
        return pd.Series(data, name=self.mode)

    def conflicts_by_stream(self) -> pd.Series:
        """How many conflicting attempts named each stream, hottest first."""
        exploded = self.frame[["conflict_streams"]].explode("conflict_streams").dropna()
        return exploded.value_counts("conflict_streams").rename("conflicts")

    def throughput(self, bins: int = 20) -> pd.DataFrame:
        """Committed commands and conflicts per second, in ``bins`` equal time windows."""
        f = self.frame
        end = max(float(f["end"].max()) if len(f) else 0.0, 1e-9)
        edges = pd.interval_range(0.0, end * (1 + 1e-9), periods=bins)
        width = edges[0].length
        window = pd.cut(f["end"], edges)
        grouped = f.assign(window=window, ok=f["outcome"] == "ok").groupby("window", observed=False)
        out = pd.DataFrame(
            {
                "committed_per_s": grouped["ok"].sum() / width,
                "conflicts_per_s": grouped["conflicts"].sum() / width,
            }
        )
        out.index = [iv.left for iv in out.index]
        out.index.name = "time_s"
        return out

    # -- plots (matplotlib, imported on use) -----------------------------------------------------------

    def plot_latency(self, ax: Axes | None = None) -> Axes:
        """Histogram of committed commands' latency with p50/p95/p99 marked."""
        ax = ax or _axes()
        lat = self.frame.loc[self.frame["outcome"] == "ok", "latency"] * 1000.0
        ax.hist(lat, bins=40, color="#4c72b0")
        for q, style in ((0.5, "-"), (0.95, "--"), (0.99, ":")):
            if len(lat):
                ax.axvline(lat.quantile(q), color="black", linestyle=style, label=f"p{round(q * 100)}")
        ax.set(xlabel="latency (ms)", ylabel="commands", title=f"Latency ({self.mode})")
        ax.legend()
        return ax

    def plot_conflicts(self, ax: Axes | None = None, *, bins: int = 20, top: int = 15) -> Axes:
        """Heatmap of conflicts per stream (the ``top`` hottest) over time."""
        ax = ax or _axes()
        f = self.frame[["end", "conflict_streams"]].explode("conflict_streams").dropna()
        end = max(float(self.frame["end"].max()) if len(self.frame) else 0.0, 1e-9)
        hottest = list(self.conflicts_by_stream().index[:top])
        f = f[f["conflict_streams"].isin(hottest)]
        window = (f["end"] / end * bins).astype(int).clip(upper=bins - 1)
        grid = (
            pd.crosstab(pd.Categorical(f["conflict_streams"], categories=hottest), window)
            .reindex(columns=range(bins), fill_value=0)
            .to_numpy()
        )
        image = ax.imshow(grid, aspect="auto", cmap="Reds", extent=(0, end, len(hottest) - 0.5, -0.5))
        ax.set_yticks(range(len(hottest)), hottest)
        ax.set(xlabel="time (s)", ylabel="stream", title=f"Conflicts by stream ({self.mode})")
        ax.figure.colorbar(image, ax=ax, label="conflicting attempts", fraction=0.05, pad=0.02)
        return ax

    def plot_throughput(self, ax: Axes | None = None, *, bins: int = 20) -> Axes:
        """Committed commands and conflicts per second over the run."""
        ax = ax or _axes()
        data = self.throughput(bins)
        ax.plot(data.index, data["committed_per_s"], label="committed / s")
        ax.plot(data.index, data["conflicts_per_s"], label="conflicts / s", color="#c44e52")
        ax.set(xlabel="time (s)", ylabel="per second", title=f"Throughput ({self.mode})")
        ax.legend()
        return ax

    def plot(self) -> Figure:
        """Latency and throughput side by side, conflicts by stream beneath: a Figure that fits a
        notebook's output and is displayed once, by being returned.

        It is made without pyplot, so that a notebook's inline backend does not show it a second time
        at the end of the cell.
        """
        from matplotlib.figure import Figure

        fig = Figure(figsize=(9.5, 7), layout="constrained")
        grid = fig.add_gridspec(2, 2)
        latency, heat, rates = (
            fig.add_subplot(grid[0, 0]),
            fig.add_subplot(grid[1, :]),
            fig.add_subplot(grid[0, 1]),
        )
        self.plot_latency(latency)
        self.plot_conflicts(heat)
        self.plot_throughput(rates)
        return fig


def _axes() -> Axes:
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(7, 4), layout="constrained")[1]
