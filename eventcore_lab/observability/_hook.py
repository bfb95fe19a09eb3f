"""The small piece the executor, stores and runners call: it builds observations and hands them out.

Kept apart from the observers themselves so that the core imports nothing heavy, and so that the cost
with no observers is one ``if`` per phase.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any

from .events import (
    CommandFailed,
    CommandRetried,
    CommandStarted,
    CommandSucceeded,
    Observation,
    Observer,
    PhaseCompleted,
)

log = logging.getLogger("eventcore_lab.observability")
_serial = itertools.count(1)


def notify(observers: Sequence[Observer], observation: Observation) -> None:
    """Give ``observation`` to every observer; an observer that raises is logged, never propagated."""
    for observer in observers:
        try:
            observer.observe(observation)
        except Exception:
            log.exception("observer %r failed on %s", observer, type(observation).__name__)


def _wants_phases(observers: Sequence[Observer]) -> bool:
    """Whether any observer wants command starts and phases: observers that only count command ends
    and store calls (metrics) say ``wants_phases = False``, which spares every command four
    observations they would ignore."""
    return any(getattr(observer, "wants_phases", True) for observer in observers)


def _conflict(error: BaseException) -> bool:
    return getattr(error, "code", None) == "CE003"


class CommandWatch:
    """Reports one command's life to observers; created by the executor only when it has observers."""

    __slots__ = ("_done", "_observers", "_phases", "_started", "command_id", "command_type", "correlation_id")

    def __init__(self, observers: Sequence[Observer], command: object) -> None:
        self._observers = observers
        self.command_type = type(command).__name__
        self.correlation_id = ""
        self._started = time.perf_counter()
        self._done = False
        self.command_id = next(_serial)
        self._phases = _wants_phases(observers)

    def begin(self, metadata: Any) -> Any:
        """Announce the command; return its metadata, with what observers asked to carry in ``custom``."""
        self.correlation_id = metadata.correlation_id
        if not self._phases:  # only observers of command ends (metrics): nobody to tell, nothing to carry
            return metadata
        started = CommandStarted(
            self.command_type,
            metadata.correlation_id,
            metadata.causation_id,
            metadata.custom,
            time.time_ns(),
            command_id=self.command_id,
        )
        notify(self._observers, started)
        if not started.carry:
            return metadata
        import msgspec

        return msgspec.structs.replace(metadata, custom={**metadata.custom, **started.carry})

    def phase(self, phase: str, attempt: int, start_ns: int, streams: Iterable[str], ok: bool = True) -> None:
        if not self._phases:
            return
        notify(
            self._observers,
            PhaseCompleted(
                self.command_type,
                self.correlation_id,
                phase,
                attempt,
                start_ns,
                time.time_ns(),
                tuple(streams),
                ok,
                self.command_id,
            ),
        )

    def retried(self, attempt: int, delay: float, error: BaseException) -> None:
        notify(
            self._observers,
            CommandRetried(
                self.command_type,
                self.correlation_id,
                attempt,
                delay,
                getattr(error, "code", type(error).__name__),
                _conflict(error),
                tuple(getattr(error, "streams", ())),
                time.time_ns(),
                self.command_id,
            ),
        )

    def succeeded(self, attempts: int, events_written: int, streams: tuple[str, ...]) -> None:
        self._done = True
        notify(
            self._observers,
            CommandSucceeded(
                self.command_type,
                self.correlation_id,
                attempts,
                time.perf_counter() - self._started,
                events_written,
                streams,
                time.time_ns(),
                self.command_id,
            ),
        )

    def failed(self, error: BaseException | None, attempts: int) -> None:
        """Report the end with an error; only the first end counts (a timeout then closes the phases)."""
        if self._done:
            return
        self._done = True
        code = getattr(error, "code", None) or ("abandoned" if error is None else type(error).__name__)
        notify(
            self._observers,
            CommandFailed(
                self.command_type,
                self.correlation_id,
                attempts,
                time.perf_counter() - self._started,
                code,
                "abandoned" if error is None else type(error).__name__,
                "the caller stopped driving the command" if error is None else str(error),
                error is not None and _conflict(error),
                time.time_ns(),
                self.command_id,
            ),
        )
