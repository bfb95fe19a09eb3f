"""How long a process waits before it tries a timed-out step again.

These policies are for *process* retries, measured in minutes and days of business time (a payment
reminder, a second booking attempt), not for the executor's millisecond retries of a conflicting append
(that is :class:`~eventcore_lab.core.retry.RetryConfig`). They have no jitter: the next attempt's time is
recorded in the process's stream, so it must be a pure function of the retry count.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ..core.errors import InvalidFormat

#: The longest delay any policy returns; keeps ``now + delay`` inside ``datetime``'s range.
MAX_DELAY = timedelta(days=3650)


def _check_delay(name: str, value: object, *, allow_zero: bool = True) -> timedelta:
    if not isinstance(value, timedelta):
        raise InvalidFormat(f"{name} must be a datetime.timedelta, got {value!r}")
    if value < timedelta(0) or (not allow_zero and value == timedelta(0)):
        raise InvalidFormat(f"{name} must be {'>=' if allow_zero else '>'} 0, got {value}")
    return value


def _check_retries(retries: object) -> int:
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        raise InvalidFormat(f"the number of retries done must be an int >= 0, got {retries!r}")
    return retries


@dataclass(frozen=True)
class FixedDelay:
    """The same wait before every retry."""

    delay: timedelta

    def __post_init__(self) -> None:
        _check_delay("delay", self.delay)

    def delay_for(self, retries: int) -> timedelta:
        _check_retries(retries)
        return min(self.delay, MAX_DELAY)


@dataclass(frozen=True)
class ExponentialBackoff:
    """``base_delay * 2**retries``, capped at ``max_delay``.

    Computed without ever forming ``2**retries`` for large counts, so a process that retried a million
    times still gets ``max_delay`` instead of an OverflowError.
    """

    base_delay: timedelta
    max_delay: timedelta

    def __post_init__(self) -> None:
        _check_delay("base_delay", self.base_delay)
        _check_delay("max_delay", self.max_delay)
        if self.max_delay < self.base_delay:
            raise InvalidFormat(
                f"max_delay ({self.max_delay}) is shorter than base_delay ({self.base_delay})"
            )

    def delay_for(self, retries: int) -> timedelta:
        _check_retries(retries)
        cap = min(self.max_delay, MAX_DELAY)
        if self.base_delay == timedelta(0):
            return timedelta(0)
        # the smallest n with base * 2**n >= cap; beyond it the answer is the cap
        ratio = cap / self.base_delay
        if retries >= max(int(ratio).bit_length(), 1) + 1:
            return cap
        return min(self.base_delay * (1 << retries), cap)


@dataclass(frozen=True)
class LinearBackoff:
    """``initial_delay + increment * retries`` (the manual has no cap; this one stops at ``MAX_DELAY``)."""

    initial_delay: timedelta
    increment: timedelta

    def __post_init__(self) -> None:
        _check_delay("initial_delay", self.initial_delay)
        _check_delay("increment", self.increment)

    def delay_for(self, retries: int) -> timedelta:
        _check_retries(retries)
        if self.increment > timedelta(0) and retries > (MAX_DELAY - self.initial_delay) / self.increment:
            return MAX_DELAY
        return min(self.initial_delay + self.increment * retries, MAX_DELAY)


RetryPolicy = FixedDelay | ExponentialBackoff | LinearBackoff


@dataclass(frozen=True)
class ProcessTimeout:
    """A timeout that may be retried ``max_retries`` times, waiting as ``policy`` says between tries."""

    policy: RetryPolicy
    max_retries: int

    def __post_init__(self) -> None:
        if not isinstance(self.policy, FixedDelay | ExponentialBackoff | LinearBackoff):
            raise InvalidFormat(
                f"policy must be FixedDelay, ExponentialBackoff or LinearBackoff, got {self.policy!r}"
            )
        if (
            not isinstance(self.max_retries, int)
            or isinstance(self.max_retries, bool)
            or self.max_retries < 0
        ):
            raise InvalidFormat(f"max_retries must be an int >= 0, got {self.max_retries!r}")

    def should_retry(self, retries_done: int) -> bool:
        """Whether a timeout after ``retries_done`` retries gets another try (else the process fails)."""
        return _check_retries(retries_done) < self.max_retries

    def next_attempt(self, now: datetime, retries_done: int) -> datetime:
        """When the next try is due, counted from ``now``."""
        return now + self.policy.delay_for(retries_done)
