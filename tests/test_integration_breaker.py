"""The circuit breaker (manual A54-09): thresholds, open timeout, half-open probing, call timeout."""

from __future__ import annotations

import threading

import pytest

from eventcore_lab.core.errors import InvalidFormat
from eventcore_lab.integration import CallTimedOut, CircuitBreaker, CircuitOpen, CircuitState


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Boom(Exception):
    pass


def fail() -> None:
    raise Boom("service down")


def test_exactly_threshold_consecutive_failures_open_the_circuit() -> None:
    breaker = CircuitBreaker("svc", failure_threshold=3, retry_timeout=10, clock=FakeClock())
    for expected in (1, 2):
        with pytest.raises(Boom):
            breaker.call(fail)
        assert breaker.state is CircuitState.CLOSED
        assert breaker.snapshot().consecutive_failures == expected
    with pytest.raises(Boom):
        breaker.call(fail)
    assert breaker.state is CircuitState.OPEN
    assert breaker.snapshot().times_opened == 1


def test_a_success_while_closed_resets_the_count() -> None:
    breaker = CircuitBreaker("svc", failure_threshold=2, clock=FakeClock())
    with pytest.raises(Boom):
        breaker.call(fail)
    assert breaker.call(lambda: 7) == 7
    with pytest.raises(Boom):
        breaker.call(fail)
    assert breaker.state is CircuitState.CLOSED


def test_open_circuit_refuses_without_calling_until_the_retry_timeout() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("svc", failure_threshold=1, retry_timeout=5, clock=clock)
    with pytest.raises(Boom):
        breaker.call(fail)
    calls: list[int] = []
    clock.now += 4.9
    with pytest.raises(CircuitOpen) as refused:
        breaker.call(calls.append, 1)
    assert calls == []
    assert refused.value.code == "IN002" and refused.value.retry_in == pytest.approx(0.1)
    assert breaker.snapshot().rejected == 1
    clock.now += 0.2
    breaker.call(calls.append, 1)  # the probe runs and, succeeding, closes the circuit
    assert calls == [1]
    assert breaker.state is CircuitState.CLOSED


def test_a_failed_probe_opens_the_circuit_again_for_a_full_retry_timeout() -> None:
    clock = FakeClock()
    changes: list[tuple[str, str]] = []
    breaker = CircuitBreaker(
        "svc",
        failure_threshold=2,
        retry_timeout=5,
        clock=clock,
        on_change=lambda old, new: changes.append((old.value, new.value)),
    )
    for _ in range(2):
        with pytest.raises(Boom):
            breaker.call(fail)
    clock.now += 5
    with pytest.raises(Boom):
        breaker.call(fail)  # half-open: one failure is enough
    assert breaker.state is CircuitState.OPEN
    assert breaker.retry_in() == pytest.approx(5)
    assert changes == [("closed", "open"), ("open", "half_open"), ("half_open", "open")]


def test_half_open_lets_a_single_probe_through() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("svc", failure_threshold=1, retry_timeout=1, clock=clock)
    with pytest.raises(Boom):
        breaker.call(fail)
    clock.now += 1
    entered, release = threading.Event(), threading.Event()

    def slow_probe() -> str:
        entered.set()
        release.wait(5)
        return "ok"

    results: list[str] = []
    probe = threading.Thread(target=lambda: results.append(breaker.call(slow_probe)))
    probe.start()
    assert entered.wait(5)
    assert breaker.state is CircuitState.HALF_OPEN
    with pytest.raises(CircuitOpen):
        breaker.call(lambda: "second caller")
    release.set()
    probe.join(5)
    assert results == ["ok"] and breaker.state is CircuitState.CLOSED


def test_a_call_over_the_timeout_is_a_failure_and_calls_never_overlap() -> None:
    breaker = CircuitBreaker("svc", failure_threshold=1, retry_timeout=0, timeout=0.05)
    running = threading.Lock()
    overlaps: list[bool] = []
    release = threading.Event()

    def call(wait_for_release: bool) -> bool:
        overlaps.append(not running.acquire(blocking=False))
        try:
            if wait_for_release:
                release.wait(10)
        finally:
            if not overlaps[-1]:
                running.release()
        return wait_for_release

    with pytest.raises(CallTimedOut) as timed_out:
        breaker.call(call, True)
    assert timed_out.value.code == "IN003"
    assert breaker.state is CircuitState.OPEN
    release.set()  # the overrunning call is still running on the breaker's single worker; let it end
    breaker.timeout = 10.0
    assert breaker.call(call, False) is False  # queued behind it, never beside it
    assert overlaps == [False, False]
    breaker.close()


def test_reset_and_bad_configuration() -> None:
    breaker = CircuitBreaker("svc", failure_threshold=1, clock=FakeClock())
    with pytest.raises(Boom):
        breaker.call(fail)
    breaker.reset()
    assert breaker.state is CircuitState.CLOSED and breaker.snapshot().consecutive_failures == 0
    with pytest.raises(InvalidFormat, match="failure_threshold"):
        CircuitBreaker(failure_threshold=0)
    with pytest.raises(InvalidFormat, match="retry_timeout"):
        CircuitBreaker(retry_timeout=-1)
    with pytest.raises(InvalidFormat, match="timeout"):
        CircuitBreaker(timeout=0)
