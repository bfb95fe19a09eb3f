"""Reads that guess: a store may treat streams it has never seen as empty, and the executor confirms.

A command appends with the exact version of every stream it read, so a decision made on a wrong guess
can never be committed: the append's version check refuses it. Every other outcome of an attempt that
guessed (a refusal, a decision that writes nothing, a required stream found empty, the conflict itself,
an append refusing the events) is not reported: the executor runs the command again at once, without
backoff and on a real read, and reports what that run does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ..stores.base import StreamsRead


@runtime_checkable
class GuessingReads(Protocol):
    """A store whose command reads may guess (the PostgreSQL store with its stream cache)."""

    def read_streams_guessing(self, stream_ids: Iterable[str]) -> tuple[StreamsRead, frozenset[str]]:
        """Like ``read_streams``; also the streams treated as empty without asking the database."""
        ...

    def guess_missed(self, stream_ids: Iterable[str]) -> None:
        """A decision on these guessed streams had to be confirmed: do not guess them again."""
        ...


class Guesses:
    """The streams one attempt read as guesses. Any outcome but a committed write may rest on them:
    a refusal, an empty decision, a conflict, even an append refusing the events (a payload the real
    state would never have produced); the executor runs the command again on a real read."""

    __slots__ = ("streams",)

    def __init__(self) -> None:
        self.streams: set[str] = set()
