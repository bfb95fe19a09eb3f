"""The durable read model in a DuckDB store's file: a SIGKILL mid-run applies no event twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from eventcore_lab.distributed import DuckDBReadModel, ReadModelError, RetryPolicy
from eventcore_lab.distributed.demo import ApplicationCounts, FixedApplicationCounts, write
from eventcore_lab.stores.duckdb import DuckDBStore

ROOT = Path(__file__).resolve().parents[1]


def test_batches_dead_letters_and_blue_green_rebuild() -> None:
    with DuckDBStore() as store:
        write(store, events=60, streams=6, poison_every=25)
        waits: list[float] = []
        model = DuckDBReadModel(
            store, ApplicationCounts(), retry=RetryPolicy(retries=1, backoff=0.25), sleep=waits.append
        )
        assert model.run_until_caught_up(batch_size=16) == 58
        assert (model.dead, model.position()) == (2, 60)
        assert waits == [0.25, 0.25]
        dead = model.dead_letters()
        assert list(dead.position) == [25, 50] and all("poisoned tick" in e for e in dead.error)
        applications = model.frame("applications")
        assert len(applications) == 58 and set(applications.n) == {1}
        assert model.run_until_caught_up() == 0  # nothing new: nothing applied again

        assert model.rebuild(FixedApplicationCounts()) == 2
        assert model.live_generation() == 2
        assert model.query("SELECT count(*), sum(n) FROM {applications}") == [(60, 60)]
        totals = {}
        for event in store.read_all():
            totals[event.stream_id] = totals.get(event.stream_id, 0) + event.payload.amount
        frame = model.frame("streams")
        assert dict(zip(frame.stream_id, frame.total, strict=True)) == totals
        with pytest.raises(ReadModelError, match="no table 'nope'"):
            model.frame("nope")


def test_a_sigkilled_runner_resumes_without_applying_any_event_twice(tmp_path: Path) -> None:
    path = tmp_path / "events.duckdb"
    with DuckDBStore(path) as store:
        write(store, events=300, streams=20)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "eventcore_lab.distributed.demo", "duckdb", "--path", str(path)]
    runner = subprocess.Popen([*command, "--batch-size", "10"], env=env, stdout=subprocess.PIPE, text=True)
    assert runner.stdout is not None and runner.stdout.readline().strip() == "ready"
    while int(runner.stdout.readline()) < 100:  # committed progress, one line per batch
        pass
    runner.send_signal(signal.SIGKILL)  # most likely in the middle of the next batch
    runner.wait()
    with DuckDBStore(path) as store:
        model = DuckDBReadModel(store, ApplicationCounts())
        halfway = model.position()
        assert 100 <= halfway < 300
        assert len(model.frame("applications")) == halfway  # the checkpoint and the tables agree
        model.run_until_caught_up(batch_size=100)
        applications = model.frame("applications")
        assert len(applications) == 300 and set(applications.n) == {1}
        assert int(model.frame("streams").out_of_order.sum()) == 0
