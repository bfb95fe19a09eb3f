"""Assertions about event logs that every store and every history must satisfy.

They raise AssertionError naming the first offending event, so a failing test says what is wrong.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any

from ..core.events import StoredEvent


def _events(source: Any) -> list[StoredEvent]:
    """Accept a store (anything with ``read_all``) or a sequence of events."""
    return list(source.read_all()) if hasattr(source, "read_all") else list(source)


def _label(event: StoredEvent) -> str:
    return f"{event.event_type} at position {event.position} ({event.stream_id} v{event.version})"


def assert_events_ordered(source: Any) -> None:
    """Positions strictly increase (the global log is in commit order, without duplicates)."""
    events = _events(source)
    for before, after in itertools.pairwise(events):
        if after.position <= before.position:
            raise AssertionError(f"events out of order: {_label(after)} comes after {_label(before)}")


def assert_unique_event_ids(source: Any) -> None:
    seen: dict[object, StoredEvent] = {}
    for event in _events(source):
        if event.event_id in seen:
            raise AssertionError(
                f"event id {event.event_id} is used twice: {_label(seen[event.event_id])} and {_label(event)}"
            )
        seen[event.event_id] = event


def assert_stream_versions(source: Any, *, from_start: bool = True) -> None:
    """Within each stream, versions go 1, 2, 3, ... in position order (no gaps, no repeats).

    With ``from_start=False`` a stream may begin at any version (a read that started mid-stream).
    """
    last: dict[str, int] = {}
    for event in _events(source):
        expected = (
            last[event.stream_id] + 1 if event.stream_id in last else (1 if from_start else event.version)
        )
        if event.version != expected:
            raise AssertionError(
                f"stream {event.stream_id!r}: expected version {expected} next, got {_label(event)}"
            )
        last[event.stream_id] = event.version


def assert_valid_log(source: Any) -> None:
    """All three: ordered positions, unique ids, gap-free versions from 1."""
    events = _events(source)
    assert_events_ordered(events)
    assert_unique_event_ids(events)
    assert_stream_versions(events)


def assert_stream_contains(source: Any, stream_id: str, payloads: Sequence[object]) -> None:
    """The stream holds exactly these payloads, in order."""
    if hasattr(source, "read_stream"):
        actual = [e.payload for e in source.read_stream(stream_id)]
    else:
        actual = [e.payload for e in _events(source) if e.stream_id == stream_id]
    if actual != list(payloads):
        lines = "\n".join(f"    {p!r}" for p in actual) or "    (nothing)"
        wanted = "\n".join(f"    {p!r}" for p in payloads) or "    (nothing)"
        raise AssertionError(f"stream {stream_id!r} holds:\n{lines}\n  expected:\n{wanted}")


def event_types(events: Iterable[StoredEvent]) -> list[str]:
    """The type names of ``events``, the shortest readable summary of a history."""
    return [e.event_type for e in events]
