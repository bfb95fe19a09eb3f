"""Streaming reads: iterate a stream or the log page by page, never holding more than one page.

A stream of a million events, or the whole log, can be folded or exported with constant memory: each
page is one ``read_stream``/``read_filtered`` call with a ``limit`` (a ``LIMIT`` in SQL on the durable
stores), and the next page continues after the last event of the previous one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from ..core.errors import InvalidArgument
from ..core.events import StoredEvent
from .rules import check_backwards, check_position


def _page_size(value: object) -> int:
    if type(value) is not int or value < 1:
        raise InvalidArgument(f"page_size must be an int >= 1, got {value!r}")
    return value


def iter_stream(
    store: Any,
    stream_id: str,
    *,
    after_version: int = 0,
    page_size: int = 1000,
    event_types: Iterable[str | type] | None = None,
    backwards: bool = False,
) -> Iterator[StoredEvent]:
    """The events of one stream with version > ``after_version`` (newest first when ``backwards``), read
    ``page_size`` at a time. Going forwards it follows the stream as it grows; backwards it starts at the
    version the stream had when iteration began."""
    page_size, after_version = _page_size(page_size), check_position(after_version, "after_version")
    types = None if event_types is None else list(event_types)
    if not check_backwards(backwards):
        while page := store.read_stream(
            stream_id, after_version=after_version, limit=page_size, event_types=types
        ):
            yield from page
            after_version = page[-1].version
        return
    top = store.stream_version(stream_id)
    while top > after_version:
        low = max(after_version, top - page_size)
        page = store.read_stream(stream_id, after_version=low, limit=top - low, event_types=types)
        yield from reversed([event for event in page if event.version <= top])
        top = low


def iter_events(
    store: Any,
    *,
    after: int = 0,
    page_size: int = 1000,
    event_types: Iterable[str | type] | None = None,
    categories: Iterable[str] | None = None,
) -> Iterator[StoredEvent]:
    """Every event after ``after`` (only the matching ones when filtered), in position order, read
    ``page_size`` at a time, up to the head as the last page found it."""
    page_size, after = _page_size(page_size), check_position(after)
    types = None if event_types is None else list(event_types)
    cats = None if categories is None else list(categories)
    while True:
        read = store.read_filtered(after=after, limit=page_size, event_types=types, categories=cats)
        yield from read.events
        if read.position <= after:
            return
        after = read.position
