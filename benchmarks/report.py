"""Targets, ratios, and the JSON and Markdown outputs of a run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

OURS, PEER, BASELINE = "eventcore-lab", "eventsourcing", "baseline"
PEER_BACKEND = {"memory": "popo", "postgres": "postgres"}
BASELINE_OF = {"postgres": "postgres", "duckdb": "duckdb"}
GIB_MIB = 1024.0


@dataclass(frozen=True)
class Target:
    name: str
    kind: str  # "ratio" (value is a ratio) or "absolute"
    threshold: float
    compute: Callable[[dict[str, Any]], float | None]
    unit: str = ""
    below: bool = False  # met when the value is below the threshold (memory)


def _rate(cases: dict[str, Any], key: str) -> float | None:
    case = cases.get(key)
    if not case or case.get("error") or not case.get("rate"):
        return None
    return float(case["rate"])


def _ratio(a: str, b: str) -> Callable[[dict[str, Any]], float | None]:
    def compute(results: dict[str, Any]) -> float | None:
        top, bottom = _rate(results["cases"], a), _rate(results["cases"], b)
        return top / bottom if top is not None and bottom else None

    return compute


def _absolute(key: str) -> Callable[[dict[str, Any]], float | None]:
    return lambda results: _rate(results["cases"], key)


def _rss(results: dict[str, Any]) -> float | None:
    rss = results.get("rss") or {}
    return rss.get("peak_rss_mib")


TARGETS = [
    Target(
        "in-memory single-stream update vs eventsourcing POPO",
        "ratio",
        10.0,
        _ratio("single_stream_update/eventcore-lab/memory", "single_stream_update/eventsourcing/popo"),
        "x",
    ),
    Target(
        "in-memory single-stream create vs eventsourcing POPO",
        "ratio",
        10.0,
        _ratio("single_stream_create/eventcore-lab/memory", "single_stream_create/eventsourcing/popo"),
        "x",
    ),
    Target(
        "in-memory two-stream transfer vs eventsourcing POPO",
        "ratio",
        20.0,
        _ratio("two_stream_transfer/eventcore-lab/memory", "two_stream_transfer/eventsourcing/popo"),
        "x",
    ),
    Target(
        "PostgreSQL single-stream update, 1 client, vs bare INSERT",
        "ratio",
        0.5,
        _ratio("single_stream_update/eventcore-lab/postgres", "single_stream_update/baseline/postgres"),
        "x",
    ),
    Target(
        "PostgreSQL single-stream update, 1 client, vs eventsourcing PostgreSQL",
        "ratio",
        3.0,
        _ratio("single_stream_update/eventcore-lab/postgres", "single_stream_update/eventsourcing/postgres"),
        "x",
    ),
    Target(
        "PostgreSQL two-stream transfer, 1 client, vs bare INSERT",
        "ratio",
        0.4,
        _ratio("two_stream_transfer/eventcore-lab/postgres", "single_stream_update/baseline/postgres"),
        "x",
    ),
    Target(
        "PostgreSQL transfers, 8 clients vs 1 client",
        "ratio",
        2.0,
        _ratio("clients_transfer_8/eventcore-lab/postgres", "clients_transfer_1/eventcore-lab/postgres"),
        "x",
    ),
    Target(
        "DuckDB single-stream commands, 32 clients",
        "absolute",
        10_000,
        _absolute("clients_update_32/eventcore-lab/duckdb"),
        "commands/s",
    ),
    Target(
        "bulk import into PostgreSQL",
        "absolute",
        100_000,
        _absolute("bulk_import/eventcore-lab/postgres"),
        "events/s",
    ),
    Target(
        "bulk import into DuckDB, from Python objects",
        "absolute",
        500_000,
        _absolute("bulk_import/eventcore-lab/duckdb"),
        "events/s",
    ),
    Target(
        "bulk import into DuckDB, from a Parquet file",
        "absolute",
        500_000,
        _absolute("bulk_import_file/eventcore-lab/duckdb"),
        "events/s",
    ),
    Target(
        "replay, per-event projection",
        "absolute",
        200_000,
        _absolute("replay_per_event/eventcore-lab/memory"),
        "events/s",
    ),
    Target(
        "replay, vectorised (DuckDB SQL)",
        "absolute",
        1_000_000,
        _absolute("replay_vectorised/eventcore-lab/duckdb"),
        "events/s",
    ),
    Target(
        "replay, vectorised (pandas, from the memory store)",
        "absolute",
        1_000_000,
        _absolute("replay_vectorised/eventcore-lab/memory"),
        "events/s",
    ),
    Target("peak RSS with 1,000,000 events in memory", "absolute", GIB_MIB, _rss, "MiB", below=True),
]


def evaluate_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for target in TARGETS:
        value = target.compute(results)
        met = (
            None
            if value is None
            else (value < target.threshold if target.below else value >= target.threshold)
        )
        out.append(
            {
                "name": target.name,
                "value": value,
                "threshold": target.threshold,
                "unit": target.unit,
                "below": target.below,
                "met": met,
            }
        )
    return out


# -- Markdown -----------------------------------------------------------------------------------------------


def _num(value: float | None, unit: str = "") -> str:
    if value is None:
        return "–"
    if unit == "x":
        return f"{value:.2f}x"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:,.1f}"


def _latency(case: dict[str, Any]) -> str:
    if "p50_ms" not in case:
        return "one call"
    return f"{case['p50_ms']:.3f} / {case['p95_ms']:.3f} / {case['p99_ms']:.3f}"


def markdown(results: dict[str, Any]) -> str:
    machine = results["machine"]
    cases: dict[str, Any] = results["cases"]
    packages = ", ".join(f"{k} {v}" for k, v in machine["packages"].items() if v)
    lines = [
        f"Run {machine['date']} ({results['mode']} mode, {results['repeats']} repeats, medians), "
        f"{machine['cores']} cores {machine['cpu']}, {machine['memory_gib']} GiB RAM, {machine['os']}, "
        f"Python {machine['python']}; {packages}. Load average at start: {machine['load_average_at_start']}.",
        "",
    ]
    pg = results.get("postgres") or {}
    if pg.get("server"):
        server = pg["server"]
        lines += [
            f"PostgreSQL {server.get('server_version')} found via {pg.get('how')} "
            f"(fsync {server.get('fsync')}, synchronous_commit {server.get('synchronous_commit')}, "
            f"shared_buffers {server.get('shared_buffers')}).",
            "",
        ]
    lines += [
        "| workload | backend | eventcore-lab | eventsourcing | baseline | ours / peer | ours / baseline "
        "| ours p50 / p95 / p99 ms | peer p50 / p95 / p99 ms |",
        "|---|---|---:|---:|---:|---:|---:|---|---|",
    ]
    seen = []
    for key in cases:
        workload, system, backend = key.split("/")
        if system == OURS and (workload, backend) not in seen:
            seen.append((workload, backend))
    for workload, backend in seen:
        ours = cases[f"{workload}/{OURS}/{backend}"]
        peer = cases.get(f"{workload}/{PEER}/{PEER_BACKEND.get(backend, '-')}")
        if workload.startswith("two_stream") or workload.startswith("clients_transfer"):
            base = cases.get(f"single_stream_update/{BASELINE}/{backend}")
        else:
            base = cases.get(f"{workload}/{BASELINE}/{BASELINE_OF.get(backend, '-')}")
        rate = _rate(cases, f"{workload}/{OURS}/{backend}")
        prate = peer.get("rate") if peer and not peer.get("error") else None
        brate = base.get("rate") if base and not base.get("error") else None
        lines.append(
            f"| {workload} | {backend} | {_num(rate) if rate else ours.get('error', '–')} | {_num(prate)} | "
            f"{_num(brate)} | {_num(rate / prate if rate and prate else None, 'x')} | "
            f"{_num(rate / brate if rate and brate else None, 'x')} | {_latency(ours)} | "
            f"{_latency(peer) if peer else '–'} |"
        )
    lines += [
        "",
        "Units: commands/s for commands, events/s for bulk import and replay, rows/s or "
        "transactions/s for baselines.",
        "",
    ]
    rss = results.get("rss")
    if rss:
        lines += [
            f"Memory: {rss.get('events', 0):,} events in a MemoryStore: "
            f"peak RSS {rss.get('peak_rss_mib', 0):.0f} MiB "
            f"(process), {rss.get('bytes_per_event', 0):.0f} bytes per event above the empty interpreter.",
            "",
        ]
    lines += ["| target | measured | threshold | met |", "|---|---:|---:|---|"]
    for target in results["targets"]:
        unit = target["unit"]
        sign = "<" if target["below"] else ">="
        met = {True: "yes", False: "**no**", None: "not measured"}[target["met"]]
        lines.append(
            f"| {target['name']} | {_num(target['value'], unit)} {'' if unit == 'x' else unit} | "
            f"{sign} {_num(target['threshold'], unit)} {'' if unit == 'x' else unit} | {met} |"
        )
    errors = {k: v["error"] for k, v in cases.items() if v.get("error")}
    if errors:
        lines += ["", "Errors:", ""] + [f"- `{k}`: {v}" for k, v in errors.items()]
    return "\n".join(lines) + "\n"
