"""The time a running command has left, for the store calls it makes.

The executor knows a command's budget; a store call it makes (a read, an append) should not outlive it,
and a database can only enforce that server-side if it is told. The deadline travels in a context
variable rather than in every store method's signature, so that store wrappers written against the
plain protocol keep working; stores that can bound a call (PostgreSQL) read :func:`remaining`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar, Token

_deadline: ContextVar[float | None] = ContextVar("eventcore_deadline", default=None)


def set_deadline(at: float | None) -> Token[float | None]:
    """Store calls made from now on should finish by ``at`` (a ``time.monotonic()`` value; None: no
    limit). Pass the token to :func:`reset_deadline` when done."""
    return _deadline.set(at)


def reset_deadline(token: Token[float | None]) -> None:
    _deadline.reset(token)


@contextlib.contextmanager
def deadline_at(at: float | None) -> Iterator[None]:
    """Store calls made inside the block should finish by ``at``."""
    token = set_deadline(at)
    try:
        yield
    finally:
        reset_deadline(token)


def remaining() -> float | None:
    """Seconds left before the current deadline (zero or less once passed), or None without one."""
    at = _deadline.get()
    return None if at is None else at - time.monotonic()
