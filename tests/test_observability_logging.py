"""Structured logs carry correlation and causation ids; the core never imports Prometheus or OTel."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

from _ops_helpers import Interloper

from eventcore_lab.core.events import Metadata
from eventcore_lab.core.executor import Executor
from eventcore_lab.core.retry import RetryConfig
from eventcore_lab.examples.banking import Deposit, OpenAccount
from eventcore_lab.observability import LoggingObserver, configure_logging
from eventcore_lab.stores import MemoryStore

ROOT = Path(__file__).resolve().parents[1]


def test_json_log_records_of_a_command_carry_its_ids() -> None:
    out = io.StringIO()
    handler = configure_logging("debug", "json", stream=out)
    try:
        store = Interloper(MemoryStore())
        executor = Executor(
            store, retry=RetryConfig(initial_delay=0, jitter=False), observers=[LoggingObserver()]
        )
        executor.execute(OpenAccount("account-1", owner="a"), correlation_id="corr-1")
        store.races = 1
        meta = Metadata(correlation_id="corr-2", causation_id="cause-2")
        executor.execute(Deposit("account-1", amount=4), metadata=meta)
        with contextlib.suppress(Exception):
            executor.execute(Deposit("account-1", amount=-4), correlation_id="corr-3")
    finally:
        logging.getLogger("eventcore_lab").removeHandler(handler)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    messages = [(r["message"].split(":")[0], r["correlation_id"]) for r in records]
    assert messages == [
        ("command started", "corr-1"),
        ("command executed", "corr-1"),
        ("command started", "corr-2"),
        ("command retried after CE003", "corr-2"),
        ("command executed", "corr-2"),
        ("command started", "corr-3"),
        ("command failed", "corr-3"),
    ]
    assert all(r["causation_id"] == "cause-2" for r in records if r["correlation_id"] == "corr-2")
    retried = records[3]
    assert retried["level"] == "warning" and retried["conflicting_streams"] == ["account-1"]
    assert records[4]["attempts"] == 2 and records[4]["events_written"] == 1
    assert records[6]["error_code"] == "CE001" and records[6]["level"] == "error"


def test_text_format_shows_the_correlation_id() -> None:
    out = io.StringIO()
    handler = configure_logging("info", "text", stream=out)
    try:
        Executor(MemoryStore(), observers=[LoggingObserver()]).execute(
            OpenAccount("account-1", owner="a"), correlation_id="corr-t"
        )
        logging.getLogger("eventcore_lab.other").info("no ids here")
    finally:
        logging.getLogger("eventcore_lab").removeHandler(handler)
    lines = out.getvalue().splitlines()
    assert "[corr-t]" in lines[0] and "command executed" in lines[0]
    assert "[None]" in lines[1]


def test_the_core_and_observers_import_neither_prometheus_nor_opentelemetry() -> None:
    script = textwrap.dedent(
        """
        import sys
        import eventcore_lab
        from eventcore_lab.core.executor import Executor
        from eventcore_lab.observability import ObservedStore, Recorder, LoggingObserver
        from eventcore_lab.examples.banking import OpenAccount
        from eventcore_lab.stores import MemoryStore
        rec = Recorder()
        Executor(ObservedStore(MemoryStore(), [rec]), observers=[rec, LoggingObserver()]).execute(
            OpenAccount("account-1", owner="a"))
        assert rec.summary()["commands"] == 1
        heavy = sorted(m for m in sys.modules if m.startswith(("prometheus_client", "opentelemetry")))
        print(heavy)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert out.stdout.strip() == "[]"
