"""The observer hook reports every way a command can end, and store failures, exactly once."""

from __future__ import annotations

from typing import Any

import pytest

from eventcore_lab.core.errors import EventCoreError, Timeout
from eventcore_lab.core.executor import Executor
from eventcore_lab.core.retry import RetryConfig
from eventcore_lab.examples.banking import OpenAccount
from eventcore_lab.observability import (
    CommandFailed,
    CommandRetried,
    CommandStarted,
    CommandSucceeded,
    ObservedStore,
    PhaseCompleted,
    StoreOperation,
)
from eventcore_lab.observability.metrics import MetricsObserver
from eventcore_lab.stores import ChaosStore, MemoryStore


class Log:
    def __init__(self) -> None:
        self.seen: list[Any] = []

    def observe(self, observation: Any) -> None:
        self.seen.append(observation)

    def kinds(self) -> list[str]:
        return [type(o).__name__ for o in self.seen]


def test_a_success_reports_start_phases_and_end_with_one_command_id() -> None:
    log = Log()
    Executor(MemoryStore(), observers=[log]).execute(
        OpenAccount("account-1", owner="a"), correlation_id="c-1"
    )
    assert log.kinds() == [
        "CommandStarted",
        "PhaseCompleted",
        "PhaseCompleted",
        "PhaseCompleted",
        "CommandSucceeded",
    ]
    assert [o.phase for o in log.seen if isinstance(o, PhaseCompleted)] == ["read", "decide", "commit"]
    assert len({o.command_id for o in log.seen}) == 1
    assert all(o.correlation_id == "c-1" for o in log.seen)
    end = log.seen[-1]
    assert isinstance(end, CommandSucceeded) and end.events_written == 1 and end.streams == ("account-1",)


def test_a_timeout_is_reported_once_as_ce006() -> None:
    log = Log()
    store = ChaosStore(
        MemoryStore(), failure_probability=0, conflict_probability=0, latency=(0.05, 0.05), seed=1
    )
    with pytest.raises(Timeout):
        Executor(store, observers=[log]).execute(OpenAccount("account-1", owner="a"), timeout=0.01)
    ends = [o for o in log.seen if isinstance(o, CommandFailed | CommandSucceeded)]
    assert len(ends) == 1 and ends[0].error_code == "CE006"


def test_a_command_abandoned_by_its_driver_is_reported_as_abandoned() -> None:
    log = Log()
    steps = Executor(MemoryStore(), observers=[log]).steps(OpenAccount("account-1", owner="a"))
    next(steps)  # read
    steps.close()
    (end,) = [o for o in log.seen if isinstance(o, CommandFailed)]
    assert end.error_code == "abandoned"


def test_transient_store_errors_are_retried_reported_and_counted() -> None:
    log = Log()
    metrics = MetricsObserver()
    chaos = ChaosStore(MemoryStore(), failure_probability=1.0, conflict_probability=0, latency=None, seed=3)
    store = ObservedStore(chaos, [log, metrics])
    executor = Executor(store, retry=RetryConfig(max_attempts=2, initial_delay=0), observers=[log, metrics])
    with pytest.raises(EventCoreError) as caught:
        executor.execute(OpenAccount("account-1", owner="a"))
    assert caught.value.retriable and caught.value.attempts == 3
    retried = [o for o in log.seen if isinstance(o, CommandRetried)]
    assert [r.attempt for r in retried] == [1, 2] and not any(r.conflict for r in retried)
    failed_ops = [o for o in log.seen if isinstance(o, StoreOperation) and not o.ok]
    assert len(failed_ops) == 3  # three attempts, each failing on its read
    text = metrics.text()
    assert 'eventcore_event_store_errors_total{operation="read"} 3.0' in text
    code = caught.value.code
    assert f'eventcore_command_errors_total{{code="{code}",command_type="OpenAccount"}} 1.0' in text


def test_trace_context_is_not_added_without_a_tracer() -> None:
    log = Log()
    written = (
        Executor(MemoryStore(), observers=[log]).execute(OpenAccount("account-1", owner="a")).events_written
    )
    assert written[0].metadata.custom == {}
    started = log.seen[0]
    assert isinstance(started, CommandStarted) and started.carry == {}
