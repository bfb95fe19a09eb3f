"""The benchmark runner: ``python -m benchmarks [--quick] [--repeats N] [--out DIR] [--only TEXT]``.

Runs every case once per repeat (pairs back to back), keeps medians, measures the memory of a large
in-memory store in a subprocess, evaluates the targets, and writes ``results-<mode>.json`` and
``results-<mode>.md`` to the output directory. A full run also refreshes the table in
``benchmarks/README.md`` (between the ``results`` markers).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from pathlib import Path
from typing import Any

from .cases import Backends, Case, ReplayFixture, Sizes, build_cases, replay_cases
from .environment import describe_machine, find_postgres
from .harness import Sample, summarize
from .report import evaluate_targets, markdown

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
START, END = "<!-- results:start -->", "<!-- results:end -->"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_cases(cases: list[Case], repeats: int) -> dict[str, Any]:
    """Every case once per repeat; a failing case is recorded with its error and not run again."""
    samples: dict[str, list[Sample]] = {case.key: [] for case in cases}
    errors: dict[str, str] = {}
    for repeat in range(repeats):
        for case in cases:
            if case.key in errors:
                continue
            tag = f"r{repeat}-{uuid.uuid4().hex[:6]}"
            try:
                sample = case.run(tag)
            except Exception as exc:  # keep going: one broken store must not hide the other figures
                errors[case.key] = f"{type(exc).__name__}: {exc}"
                log(f"  {case.key}: FAILED {errors[case.key]}")
                log(traceback.format_exc(limit=4))
                continue
            samples[case.key].append(sample)
            log(
                f"  [{repeat + 1}/{repeats}] {case.key}: {sample.rate:,.0f} {case.unit} "
                f"({sample.ops} in {sample.seconds:.2f} s)"
            )
    out: dict[str, Any] = {}
    for case in cases:
        entry: dict[str, Any] = {"unit": case.unit, "note": case.note}
        if samples[case.key]:
            entry.update(summarize(samples[case.key]))
        if case.key in errors:
            entry["error"] = errors[case.key]
        out[case.key] = entry
    return out


def measure_rss(events: int) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.rss", str(events)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def update_readme(table: str) -> None:
    readme = HERE / "README.md"
    text = readme.read_text()
    if START in text and END in text:
        head, rest = text.split(START, 1)
        tail = rest.split(END, 1)[1]
        readme.write_text(f"{head}{START}\n{table}{END}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of seconds")
    parser.add_argument("--repeats", type=int, default=None, help="repeats per case (default 3, quick 1)")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="directory for the results files")
    parser.add_argument(
        "--only", default=None, help="run only cases whose key contains one of these comma-separated texts"
    )
    parser.add_argument("--no-readme", action="store_true", help="do not refresh benchmarks/README.md")
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "full"
    sizes = Sizes.quick() if args.quick else Sizes()
    repeats = args.repeats or (1 if args.quick else 3)
    started = time.perf_counter()

    machine = describe_machine()
    dsn, how = find_postgres(REPO)
    log(
        f"benchmarks ({mode}): {machine['cores']} cores {machine['cpu']}, Python {machine['python']}; "
        f"PostgreSQL: {how}"
    )
    results: dict[str, Any] = {"mode": mode, "repeats": repeats, "machine": machine, "sizes": vars(sizes)}
    if dsn:
        from .baselines import pg_server_facts

        results["postgres"] = {"how": how, "server": pg_server_facts(dsn)}
    else:
        results["postgres"] = {"how": how, "server": None}

    with tempfile.TemporaryDirectory(prefix="eventcore-bench-") as workdir:
        backends = Backends(dsn, Path(workdir))
        results["backends"] = backends.available
        fixture = ReplayFixture(backends, sizes)
        cases = build_cases(backends, sizes) + replay_cases(backends, fixture)
        if args.only:
            parts = args.only.split(",")
            cases = [c for c in cases if any(part in c.key for part in parts)]
        log(f"{len(cases)} cases x {repeats} repeats")
        try:
            results["cases"] = run_cases(cases, repeats)
        finally:
            fixture.close()
    if not args.only or "rss" in args.only:
        log(f"peak RSS of a MemoryStore with {sizes.rss_events:,} events (subprocess)")
        results["rss"] = measure_rss(sizes.rss_events)
    results["targets"] = evaluate_targets(results)
    results["seconds"] = round(time.perf_counter() - started, 1)

    args.out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = args.out / f"results-{mode}.json", args.out / f"results-{mode}.md"
    json_path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    table = markdown(results)
    md_path.write_text(table)
    if mode == "full" and not args.only and not args.no_readme:
        update_readme(table)
    log(f"wrote {os.path.relpath(json_path)} and {os.path.relpath(md_path)} in {results['seconds']} s")
    print(table)
    return 0
