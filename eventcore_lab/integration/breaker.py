"""A circuit breaker: stop calling a service that keeps failing, and probe it again later.

Closed, failures are counted; ``failure_threshold`` consecutive failures open the circuit. Open, calls
fail at once with :class:`CircuitOpen` (the service is not called) until ``retry_timeout`` has passed;
the next call is then a single probe (half-open): success closes the circuit, failure opens it again.
``timeout`` bounds each call; a call that does not finish in time counts as a failure.

Differences from the manual's breaker (A54-09), on purpose: in half-open only one caller probes (the
others are refused), so a recovering service is not hit by every waiting caller at once; and the state,
counters and transitions are observable (``state``, ``snapshot()``, ``on_change``).
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from ..core.errors import InvalidFormat
from .errors import CallTimedOut, CircuitOpen

P = ParamSpec("P")
T = TypeVar("T")


class CircuitState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class CircuitSnapshot:
    """The breaker as observed at one moment (for dashboards, logs and tests)."""

    name: str
    state: CircuitState
    consecutive_failures: int
    calls: int
    failures: int
    rejected: int
    times_opened: int
    retry_in: float


class CircuitBreaker:
    """Guards calls to one dependency (a broker, another service). Thread-safe.

    ``clock`` is monotonic seconds (inject one for repeatable tests). ``on_change(old, new)`` is called
    on every state change, outside the breaker's lock.
    """

    def __init__(
        self,
        name: str = "circuit",
        *,
        failure_threshold: int = 5,
        retry_timeout: float = 5.0,
        timeout: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[CircuitState, CircuitState], None] | None = None,
    ) -> None:
        if (
            not isinstance(failure_threshold, int)
            or isinstance(failure_threshold, bool)
            or failure_threshold < 1
        ):
            raise InvalidFormat(f"failure_threshold must be an int >= 1, got {failure_threshold!r}")
        if not retry_timeout >= 0:
            raise InvalidFormat(f"retry_timeout must be >= 0 seconds, got {retry_timeout!r}")
        if timeout is not None and not timeout > 0:
            raise InvalidFormat(f"timeout must be > 0 seconds or None, got {timeout!r}")
        self.name = name
        self.failure_threshold = failure_threshold
        self.retry_timeout = retry_timeout
        self.timeout = timeout
        self._clock = clock
        self._on_change = on_change
        self._lock = threading.Lock()
        self._state = CircuitState.CLOSED
        self._consecutive = 0
        self._opened_at = 0.0
        self._probing = False
        self._calls = self._failures = self._rejected = self._times_opened = 0
        # One worker: a call that overran its timeout still runs, and the next call waits behind it, so
        # calls through one breaker never overlap (the relay relies on that to keep publish order).
        self._worker: ThreadPoolExecutor | None = None

    @property
    def state(self) -> CircuitState:
        return self._state

    def retry_in(self) -> float:
        """Seconds until an open circuit lets a probe through (0 when not open)."""
        if self._state is not CircuitState.OPEN:
            return 0.0
        return max(0.0, self._opened_at + self.retry_timeout - self._clock())

    def snapshot(self) -> CircuitSnapshot:
        with self._lock:
            return CircuitSnapshot(
                self.name,
                self._state,
                self._consecutive,
                self._calls,
                self._failures,
                self._rejected,
                self._times_opened,
                self.retry_in(),
            )

    def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn`` unless the circuit is open; count its outcome.

        Raises CircuitOpen without calling ``fn`` while open (or while another caller probes), the
        error of ``fn`` when it fails, or CallTimedOut when it overran ``timeout``.
        """
        self._admit()
        try:
            result = self._run(fn, *args, **kwargs)
        except BaseException:
            self._record(success=False)
            raise
        self._record(success=True)
        return result

    def record_failure(self) -> None:
        """Count a failure observed outside :meth:`call` (e.g. a failed reply that did not raise)."""
        with self._lock:
            self._calls += 1
        self._record(success=False)

    def reset(self) -> None:
        """Close the circuit and forget the failures (an operator's override)."""
        self._transition(CircuitState.CLOSED, consecutive=0)

    def close(self) -> None:
        """Stop the timeout worker thread, if one was started."""
        if self._worker is not None:
            self._worker.shutdown(wait=False)

    def _admit(self) -> None:
        change = None
        with self._lock:
            if self._state is CircuitState.OPEN:
                wait = self._opened_at + self.retry_timeout - self._clock()
                if wait > 0:
                    self._rejected += 1
                    raise CircuitOpen(self.name, wait)
                change = (self._state, CircuitState.HALF_OPEN)
                self._state = CircuitState.HALF_OPEN
                self._probing = True
            elif self._state is CircuitState.HALF_OPEN:
                if self._probing:
                    self._rejected += 1
                    raise CircuitOpen(self.name, 0.0)
                self._probing = True
            self._calls += 1
        if change is not None:
            self._notify(*change)

    def _run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self.timeout is None:
            return fn(*args, **kwargs)
        if self._worker is None:
            self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"breaker-{self.name}")
        future = self._worker.submit(fn, *args, **kwargs)
        try:
            return future.result(timeout=self.timeout)
        except FutureTimeout:
            raise CallTimedOut(
                f"call through circuit {self.name!r} took longer than {self.timeout} s"
            ) from None

    def _record(self, *, success: bool) -> None:
        with self._lock:
            self._probing = False
            if success:
                new, consecutive = CircuitState.CLOSED, 0
            else:
                self._failures += 1
                consecutive = self._consecutive + 1
                if self._state is CircuitState.HALF_OPEN or consecutive >= self.failure_threshold:
                    new = CircuitState.OPEN
                else:
                    new = self._state
        self._transition(new, consecutive=consecutive)

    def _transition(self, new: CircuitState, *, consecutive: int) -> None:
        with self._lock:
            old = self._state
            self._consecutive = consecutive
            if new is CircuitState.OPEN and old is not CircuitState.OPEN:
                self._opened_at = self._clock()
                self._times_opened += 1
            self._state = new
            if new is not CircuitState.HALF_OPEN:
                self._probing = False
        if old is not new:
            self._notify(old, new)

    def _notify(self, old: CircuitState, new: CircuitState) -> None:
        if self._on_change is not None:
            self._on_change(old, new)

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.name!r}, state={self._state.value}, failures={self._consecutive})"
