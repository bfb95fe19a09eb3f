"""The recorder's chart follows the lab's plot house style: title, both axes labelled, and one legend
that lists the latency line on the twin axis as well as the rates."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from eventcore_lab.core.executor import Executor
from eventcore_lab.display import plot_problems
from eventcore_lab.examples.banking import Deposit, OpenAccount
from eventcore_lab.observability import Recorder
from eventcore_lab.stores import MemoryStore


def test_recorder_plot_labels_both_axes_and_has_one_legend_for_every_line() -> None:
    recorder = Recorder()
    executor = Executor(MemoryStore(), observers=[recorder])
    executor.execute(OpenAccount("account-a", owner="a"))
    for _ in range(3):
        executor.execute(Deposit("account-a", 100))
    ax = recorder.plot()
    try:
        assert plot_problems(ax.figure) == []
        assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
        legend = ax.get_legend()
        assert legend is not None
        labels = [text.get_text() for text in legend.get_texts()]
        assert labels[:3] == ["commands", "errors", "conflicts"]
        assert any("p95" in label for label in labels[3:])
    finally:
        plt.close(ax.figure)
