"""Every progress bar says what it measures: a description of the work and the unit it counts."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventcore_lab import EventToWrite, MemoryStore
from eventcore_lab.examples.banking import AccountOpened
from eventcore_lab.projections import events_frame
from eventcore_lab.simulation import banking_workload, simulate
from eventcore_lab.simulation.concurrent import run_threads
from eventcore_lab.stores import bulk


def _store(count: int) -> MemoryStore:
    store = MemoryStore()
    for i in range(count):
        store.append([EventToWrite(f"account-{i}", AccountOpened(owner=f"owner {i}"))])
    return store


def test_the_simulator_counts_commands(capsys: pytest.CaptureFixture[str]) -> None:
    simulate(banking_workload(clients=2, commands=10), progress=True)
    err = capsys.readouterr().err
    assert "simulating commands" in err and "command/s" in err


def test_threads_count_commands(capsys: pytest.CaptureFixture[str]) -> None:
    run_threads(banking_workload(clients=2, commands=10), MemoryStore(), progress=True)
    err = capsys.readouterr().err
    assert "commands on threads" in err and "command/s" in err


def test_bulk_files_count_events(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "events.parquet"
    bulk.write_parquet(_store(5).read_all(), path, progress=True)
    err = capsys.readouterr().err
    assert "write events.parquet" in err and "event/s" in err


def test_replays_count_events(capsys: pytest.CaptureFixture[str]) -> None:
    events_frame(_store(5), progress=True)
    err = capsys.readouterr().err
    assert "events_frame: replay" in err and "event/s" in err
