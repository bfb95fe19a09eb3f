"""The HTTP benchmark runs end to end at a tiny size (its figures are reported in benchmarks/README.md,
never asserted here)."""

from __future__ import annotations

from benchmarks.http import markdown, run


def test_http_benchmark_runs_both_paths_for_each_client_count() -> None:
    rows = run("memory", commands=5, repeats=1, client_counts=(1, 2))
    assert sorted((r["mode"], r["clients"]) for r in rows) == [
        ("http", 1),
        ("http", 2),
        ("in-process", 1),
        ("in-process", 2),
    ]
    assert all(r["ops"] == 5 * r["clients"] and r["rate"] > 0 and r["p99_ms"] >= r["p50_ms"] for r in rows)
    table = markdown(rows, "memory", 5, 1)
    assert table.count("\n| http |") == 2 and "| in-process | 1 |" in table
