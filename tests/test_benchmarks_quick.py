"""The benchmark runner in quick mode, so that the benchmarks never rot.

Checks that the results are well-formed and that every workload ran and measured something; it never
judges speed (performance figures live in benchmarks/README.md, not in assertions).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.cases import Sizes
from benchmarks.harness import Sample, percentile, summarize
from benchmarks.report import TARGETS

REPO = Path(__file__).resolve().parent.parent

COMMAND_WORKLOADS = ("single_stream_create", "single_stream_update", "two_stream_transfer", "hot_read")


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--out", str(out), "--no-readme"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((out / "results-quick.json").read_text())
    results["_markdown"] = (out / "results-quick.md").read_text()
    return results


def test_every_case_ran_and_measured_a_positive_rate(quick: dict) -> None:
    cases = quick["cases"]
    assert cases, "no cases ran"
    for key, case in cases.items():
        assert "error" not in case, f"{key} failed: {case.get('error')}"
        assert case["rate"] > 0, key
        assert case["ops"] > 0, key
        assert len(case["rates"]) == quick["repeats"], key


def test_memory_and_peer_workloads_are_all_present(quick: dict) -> None:
    cases = quick["cases"]
    for workload in COMMAND_WORKLOADS:
        assert f"{workload}/eventcore-lab/memory" in cases
        assert f"{workload}/eventsourcing/popo" in cases
    for clients in Sizes.quick().client_counts:
        assert f"clients_update_{clients}/eventcore-lab/memory" in cases
    for key in (
        "bulk_import/eventcore-lab/memory",
        "bulk_import/eventsourcing/popo",
        "bulk_import/baseline/duckdb",
        "replay_per_event/eventcore-lab/memory",
        "replay_per_event/eventsourcing/popo",
        "replay_vectorised/eventcore-lab/memory",
        "read_all_pages/eventcore-lab/memory",
        "read_all_pages/eventsourcing/popo",
    ):
        assert key in cases


def test_available_durable_stores_ran_every_workload(quick: dict) -> None:
    cases, available = quick["cases"], quick["backends"]
    if os.environ.get("EVENTCORE_DATABASE_URL"):  # CI provides a server: PostgreSQL must not be skipped
        assert available["postgres"] == "ok", available["postgres"]
    ran_any = False
    for backend in ("duckdb", "postgres"):
        if available[backend] != "ok":
            continue
        ran_any = True
        for workload in (*COMMAND_WORKLOADS, "bulk_import", "read_all_pages"):
            assert f"{workload}/eventcore-lab/{backend}" in cases
        assert f"read_all_pages/baseline/{backend}" in cases
    assert ran_any or available["duckdb"] != "ok"
    if available["postgres"] == "ok":
        assert "single_stream_update/baseline/postgres" in cases
        assert "single_stream_update/eventsourcing/postgres" in cases
        assert "clients_transfer_8/eventcore-lab/postgres" in cases


def test_command_latencies_are_ordered_percentiles(quick: dict) -> None:
    for key, case in quick["cases"].items():
        if "p50_ms" in case:
            assert 0 < case["p50_ms"] <= case["p95_ms"] <= case["p99_ms"], key
    assert "p50_ms" in quick["cases"]["two_stream_transfer/eventcore-lab/memory"]


def test_targets_memory_and_report(quick: dict) -> None:
    targets = quick["targets"]
    assert [t["name"] for t in targets] == [t.name for t in TARGETS]
    for target in targets:
        assert target["met"] in (True, False, None)
        if target["met"] is not None:
            assert target["value"] is not None and target["value"] > 0
    measured = {t["name"] for t in targets if t["value"] is not None}
    assert "in-memory two-stream transfer vs eventsourcing POPO" in measured
    assert "replay, per-event projection" in measured
    rss = quick["rss"]
    assert rss["events"] == Sizes.quick().rss_events
    assert rss["peak_rss_mib"] > 0
    machine = quick["machine"]
    assert machine["cores"] and machine["python"] and machine["packages"]["eventsourcing"]
    table = quick["_markdown"]
    assert "| workload | backend | eventcore-lab | eventsourcing |" in table
    assert "| target | measured | threshold | met |" in table


def test_percentiles_and_medians() -> None:
    values = [i / 1000 for i in range(1, 101)]  # 1 ms .. 100 ms
    assert percentile(values, 50) == 0.05
    assert percentile(values, 99) == 0.099
    assert percentile([], 50) == 0.0
    summary = summarize([Sample(10, 1.0, values), Sample(10, 2.0, values), Sample(10, 0.5, values)])
    assert summary["rate"] == 10.0  # median of 10, 5 and 20 ops/s
    assert summary["p95_ms"] == pytest.approx(95.0)
