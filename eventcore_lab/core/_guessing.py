"""Reads that guess: a store may treat streams it has never seen as empty, and the executor confirms.

A command appends with the exact version of every stream it read, so a decision made on a wrong guess
can never be committed: the append's version check refuses it. Only two outcomes escape that check, a
decision that writes nothing and an error raised before the append (a rule refusing the command, a
required stream found empty); the executor runs those again on a real read. So does a conflict on a
guessed stream, at once and without backoff: it is the guess being corrected, not contention.
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
    """What one attempt guessed, and whether it reached the append (errors after that are the store's)."""

    __slots__ = ("appending", "streams")

    def __init__(self) -> None:
        self.streams: set[str] = set()
        self.appending = False

    def wrong(self, error: BaseException | None) -> bool:
        """Whether this attempt's outcome (``error``, or None: nothing written) may rest on a wrong guess."""
        if not self.streams:
            return False
        if error is None or not self.appending:
            return True
        return not self.streams.isdisjoint(getattr(error, "streams", ()))
