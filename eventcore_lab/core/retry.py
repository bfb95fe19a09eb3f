"""When and how long to wait before running a command again."""

from __future__ import annotations

import random
from dataclasses import dataclass

from .errors import ConcurrencyConflict, DomainRefusal, EventCoreError


@dataclass(frozen=True)
class RetryConfig:
    """Exponential backoff for retriable failures.

    ``max_attempts`` counts retries after the first attempt. Concurrency conflicts are always retried
    (until attempts run out); transient store errors too when ``retry_transient`` is set. Validation and
    business-rule failures never are.
    """

    max_attempts: int = 5
    initial_delay: float = 0.05
    max_delay: float = 1.0
    multiplier: float = 2.0
    jitter: bool = True
    retry_transient: bool = True

    def __post_init__(self) -> None:
        if self.max_attempts < 0:
            raise ValueError(f"max_attempts must be >= 0, got {self.max_attempts}")
        if self.initial_delay < 0 or self.max_delay < 0:
            raise ValueError("delays must be >= 0 seconds")
        if self.multiplier < 1:
            raise ValueError(f"multiplier must be >= 1, got {self.multiplier}")

    @classmethod
    def none(cls) -> RetryConfig:
        """Never retry."""
        return cls(max_attempts=0)

    @classmethod
    def conservative(cls) -> RetryConfig:
        """Few, slow retries, of concurrency conflicts only."""
        return cls(max_attempts=3, initial_delay=0.1, max_delay=2.0, retry_transient=False)

    @classmethod
    def aggressive(cls) -> RetryConfig:
        """Many quick retries, for hot streams."""
        return cls(max_attempts=10, initial_delay=0.01, max_delay=5.0, multiplier=1.5)

    def should_retry(self, error: BaseException, retries_done: int) -> bool:
        """Whether to run again after ``error``, given ``retries_done`` retries so far."""
        if retries_done >= self.max_attempts or not isinstance(error, EventCoreError):
            return False
        if isinstance(error, DomainRefusal):  # a decision, even if a domain class sets retriable
            return False
        if isinstance(error, ConcurrencyConflict):
            return True
        return self.retry_transient and error.retriable

    def delay(self, retry_number: int, rng: random.Random) -> float:
        """Seconds to wait before retry ``retry_number`` (1-based); jitter spreads it over [d/2, d]."""
        base = min(self.max_delay, self.initial_delay * self.multiplier ** (retry_number - 1))
        return base * (0.5 + rng.random() / 2) if self.jitter else base
