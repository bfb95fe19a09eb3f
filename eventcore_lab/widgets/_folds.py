"""States of a read model along a log, for time travel: folds read the log by position range and resume
from copies kept every ``CHECKPOINT_EVENTS`` events, so no state needs the whole log in memory and a
state near a kept one costs at most one page of events."""

from __future__ import annotations

import bisect
import copy
import threading
from collections.abc import Callable, Sequence
from typing import Any

#: events between two kept states: a state is folded from the nearest kept one before it, reading and
#: folding at most this many events (one page of the log: about 10 ms from DuckDB at a million events)
CHECKPOINT_EVENTS = 1_000

#: ``read(after, limit)``: at most ``limit`` events with a position above ``after``, in position order
Reader = Callable[[int, int], Sequence[Any]]


def store_reader(store: Any) -> Reader:
    """Pages of ``store``'s log, read as the store's ``read_all(after=, limit=)`` reads them."""
    return lambda after, limit: store.read_all(after=after, limit=limit)


def list_reader(events: Sequence[Any]) -> Reader:
    """Pages of ``events`` (sorted by position)."""

    def read(after: int, limit: int) -> Sequence[Any]:
        start = bisect.bisect_right(events, after, key=_position)
        return events[start : start + limit]

    return read


class Folds:
    """The state of a read model (made by ``factory``, fed with ``apply(event)``) after every event of
    a log up to a position, for positions up to ``head``. Thread-safe: a background fold can run ahead
    while another thread asks for states."""

    def __init__(self, factory: Callable[[], Any], read: Reader, head: int) -> None:
        self.factory = factory
        self.read = read
        self.head = head
        self._positions: list[int] = []  # the position of each kept state, ascending
        self._kept: list[Any] = []  # the state after CHECKPOINT_EVENTS * (i + 1) events; never changed
        self._copyable = True
        self._complete = False  # fewer than CHECKPOINT_EVENTS events follow the last kept state
        self._lock = threading.Lock()

    @property
    def folded(self) -> int:
        """The position of the last kept state (0 before the first)."""
        with self._lock:
            return self._positions[-1] if self._positions else 0

    def near(self, position: int) -> bool:
        """Whether the state at ``position`` folds at most ``CHECKPOINT_EVENTS`` events, or has to be
        folded from the start anyway (a model that cannot be copied keeps no state)."""
        if not self._copyable or self._complete:
            return True
        return min(position, self.head) - self.folded <= CHECKPOINT_EVENTS

    @property
    def done(self) -> bool:
        """Whether every state up to the head is near a kept one (or none can be kept)."""
        return self.near(self.head)

    def state_at(self, position: int) -> Any:
        """A new model that has applied every event with a position up to ``position`` (up to the
        head); states kept on the way past the last kept one are kept."""
        position = min(position, self.head)
        after, model, keep = self._resume(position)
        while after < position:
            page = self.read(after, min(CHECKPOINT_EVENTS, position - after))
            for event in page:
                if event.position > position:
                    return model
                model.apply(event)
            if len(page) < min(CHECKPOINT_EVENTS, position - after):
                return model  # the log ends before ``position``
            after = page[-1].position
            if keep and len(page) == CHECKPOINT_EVENTS:
                state = self._copy(model)
                keep = state is not None
                if keep:
                    self._keep(after, state)
        return model

    def fold_ahead(self, each: Callable[[], None], stop: threading.Event) -> None:
        """Fold on from the last kept state to the head, keeping a state every ``CHECKPOINT_EVENTS``
        events and calling ``each()`` after each, until done or ``stop`` is set."""
        while not self.done and not stop.is_set():
            self._advance()
            each()

    def _advance(self) -> None:
        """Fold the page of events after the last kept state and keep the state after it."""
        after, model, keep = self._resume(self.head)
        if not keep:
            return  # the model cannot be copied: nothing to keep
        page = [event for event in self.read(after, CHECKPOINT_EVENTS) if event.position <= self.head]
        for event in page:
            model.apply(event)
        if len(page) < CHECKPOINT_EVENTS:
            self._complete = True  # every later state is at most a page away from the last kept one
        else:
            self._keep(page[-1].position, model)  # a model of its own: kept as it is

    def _resume(self, position: int) -> tuple[int, Any, bool]:
        """Where a fold up to ``position`` starts: the position and a copy of the last state kept at or
        before it (else 0 and a new model), and whether states it passes are new ones to keep."""
        with self._lock:
            index = bisect.bisect_right(self._positions, position) - 1
            last = index == len(self._positions) - 1
            after, kept = (self._positions[index], self._kept[index]) if index >= 0 else (0, None)
        model = None if kept is None else self._copy(kept)
        if model is None:
            return 0, self.factory(), last and self._copyable
        return after, model, last

    def _copy(self, model: Any) -> Any:
        """A deep copy of ``model``; None, and no state kept from then on, when it cannot be copied."""
        try:
            return copy.deepcopy(model)
        except Exception:  # a model holding a lock, a connection...: fold from the start instead
            with self._lock:
                self._copyable = False
                self._positions.clear()
                self._kept.clear()
            return None

    def _keep(self, position: int, state: Any) -> None:
        """Keep ``state`` (changed by no one any more) as the state at ``position``."""
        with self._lock:
            if self._copyable and (not self._positions or self._positions[-1] < position):
                self._positions.append(position)
                self._kept.append(state)
            # else another fold kept it first (the same state: the same events from the same one)


def _position(event: Any) -> int:
    return int(event.position)
