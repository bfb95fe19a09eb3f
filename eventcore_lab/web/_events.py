"""Reading the log over HTTP: one stream by version, the whole log by position, and live events (SSE).

Pages carry a ``next_cursor`` (the last version or position sent) until the end is reached. The live
endpoint follows the store's subscription (which PostgreSQL wakes with LISTEN/NOTIFY); each event's SSE
id is its position, so a client that reconnects with ``Last-Event-ID`` continues right after the last
event it received, never missing or repeating one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from ..core.events import StoredEvent
from .errors import RequestInvalid

DEFAULT_LIMIT = 100


def _plain(value: Any) -> Any:
    if isinstance(value, str):  # str subclasses such as StreamId
        return str(value)
    raise NotImplementedError(f"cannot encode {type(value).__name__} as JSON")


def json_values(value: Any) -> Any:
    """Any event, read-model answer or dataclass as plain JSON values (times and ids as strings)."""
    return msgspec.to_builtins(value, str_keys=True, enc_hook=_plain)


def event_json(event: StoredEvent) -> dict[str, Any]:
    """A stored event as JSON values (the payload under ``payload``, ids and times as strings)."""
    data: dict[str, Any] = json_values(event)
    return data


def check_limit(limit: int, max_limit: int) -> int:
    if limit < 1:
        raise RequestInvalid("limit must be at least 1", {"limit": ["must be at least 1"]})
    if limit > max_limit:
        raise RequestInvalid(f"Limit cannot exceed {max_limit}", {"limit": [f"must be at most {max_limit}"]})
    return limit


def parse_cursor(cursor: str | None, what: str) -> int:
    """A cursor is the decimal version or position to continue after."""
    if cursor is None or cursor == "":
        return 0
    if not cursor.isascii() or not cursor.isdigit() or len(cursor) > 18:
        raise RequestInvalid(
            f"invalid cursor {cursor[:40]!r}: expected a {what} as returned in next_cursor",
            {"cursor": ["not a cursor from this API"]},
        )
    return int(cursor)


def page_body(events: Sequence[StoredEvent], limit: int, key: str) -> dict[str, Any]:
    last = getattr(events[-1], key) if events else None
    return {
        "events": [event_json(e) for e in events],
        "next_cursor": str(last) if len(events) == limit and last is not None else None,
    }
