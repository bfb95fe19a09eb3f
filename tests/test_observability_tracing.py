"""OpenTelemetry: one span per command with child spans per phase; the trace crosses OS processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from _ops_helpers import Interloper
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from eventcore_lab.core.errors import ValidationFailed
from eventcore_lab.core.executor import Executor
from eventcore_lab.core.retry import RetryConfig
from eventcore_lab.examples.banking import Deposit, OpenAccount
from eventcore_lab.observability import caused_by
from eventcore_lab.observability.tracing import TracingObserver
from eventcore_lab.stores import MemoryStore

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


def tracer_for(exporter: InMemorySpanExporter) -> TracingObserver:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return TracingObserver(tracer_provider=provider)


def children(spans: Any, parent: Any) -> list[str]:
    return [s.name for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


def test_one_span_per_command_with_a_child_per_phase(exporter: InMemorySpanExporter) -> None:
    executor = Executor(MemoryStore(), observers=[tracer_for(exporter)])
    executor.execute(OpenAccount("account-1", owner="a"))
    executor.execute(Deposit("account-1", amount=3))
    with pytest.raises(ValidationFailed):
        executor.execute(Deposit("account-1", amount=0))
    spans = exporter.get_finished_spans()
    commands = [s for s in spans if s.name.startswith("command ")]
    assert [s.name for s in commands] == ["command OpenAccount", "command Deposit", "command Deposit"]
    assert len({s.context.trace_id for s in commands}) == 3  # each a trace of its own
    opened, deposited, refused = commands
    assert children(spans, opened) == ["read", "decide", "commit"]
    assert children(spans, refused) == ["read"]  # handle raised: no decide, no commit
    assert opened.attributes["command.success"] is True
    assert opened.attributes["events.count"] == 1
    assert refused.attributes["command.success"] is False
    assert refused.attributes["error.code"] == "CE001"
    phases = [s for s in spans if s.parent is not None and s.parent.span_id == deposited.context.span_id]
    assert all(deposited.start_time <= p.start_time <= p.end_time <= deposited.end_time for p in phases)


def test_a_retried_command_has_a_backoff_span_between_attempts(exporter: InMemorySpanExporter) -> None:
    store = Interloper(MemoryStore())
    executor = Executor(
        store, retry=RetryConfig(initial_delay=0.001, jitter=False), observers=[tracer_for(exporter)]
    )
    executor.execute(OpenAccount("account-1", owner="a"))
    store.races = 1
    result = executor.execute(Deposit("account-1", amount=3))
    assert result.attempts == 2
    spans = exporter.get_finished_spans()
    command = next(s for s in spans if s.name == "command Deposit")
    assert children(spans, command) == ["read", "decide", "commit", "backoff", "read", "decide", "commit"]
    assert command.attributes["command.attempts"] == 2
    assert [e.name for e in command.events] == ["retry"]


def test_written_events_carry_the_trace_and_a_follow_up_continues_it(exporter: InMemorySpanExporter) -> None:
    store = MemoryStore()
    executor = Executor(store, observers=[tracer_for(exporter)])
    first = executor.execute(OpenAccount("account-1", owner="a")).events_written[0]
    assert first.metadata.custom["traceparent"].startswith("00-")
    executor.execute(Deposit("account-1", amount=1), metadata=caused_by(first))
    spans = [s for s in exporter.get_finished_spans() if s.name.startswith("command ")]
    opened, deposit = spans
    assert deposit.context.trace_id == opened.context.trace_id
    assert deposit.parent.span_id == opened.context.span_id
    assert deposit.attributes["causation_id"] == str(first.event_id)


CHILD = textwrap.dedent(
    """
    import json, sys
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from eventcore_lab.core.executor import Executor
    from eventcore_lab.examples.banking import Deposit
    from eventcore_lab.observability import caused_by
    from eventcore_lab.observability.tracing import TracingObserver
    from eventcore_lab.stores.postgres import PostgresStore

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    store = PostgresStore(sys.argv[1], schema=sys.argv[2])
    opened = store.read_stream("account-1")[0]
    Executor(store, observers=[TracingObserver(tracer_provider=provider)]).execute(
        Deposit("account-1", amount=2), metadata=caused_by(opened)
    )
    store.close()
    span = [s for s in exporter.get_finished_spans() if s.name == "command Deposit"][0]
    print(json.dumps({"trace": span.context.trace_id, "parent": span.parent.span_id}))
    """
)


def test_a_command_in_another_os_process_continues_the_trace(
    exporter: InMemorySpanExporter, pg_url: str, pg_schema: str
) -> None:
    from eventcore_lab.stores.postgres import PostgresStore

    store = PostgresStore(pg_url, schema=pg_schema)
    try:
        Executor(store, observers=[tracer_for(exporter)]).execute(OpenAccount("account-1", owner="a"))
    finally:
        store.close()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, pg_url, pg_schema],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=True,
    )
    child = json.loads(out.stdout.strip().splitlines()[-1])
    opened = next(s for s in exporter.get_finished_spans() if s.name == "command OpenAccount")
    assert child["trace"] == opened.context.trace_id
    assert child["parent"] == opened.context.span_id
