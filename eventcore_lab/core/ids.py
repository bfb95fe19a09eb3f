"""Identifiers: stream ids (validated strings) and event ids (monotonic UUIDv7)."""

from __future__ import annotations

import threading
import unicodedata
import uuid

import uuid6

from .errors import EmptyValue, InvalidFormat, TooLong

MAX_STREAM_ID_LENGTH = 255


class StreamId(str):
    """The name of an event stream: a ``str`` that has passed validation.

    Surrounding whitespace is trimmed; the result must be non-empty, at most 255 characters long and free
    of control characters. Being a ``str``, it compares, hashes and prints like its text.

    >>> StreamId("  account-1 ")
    'account-1'
    """

    __slots__ = ()

    def __new__(cls, value: str) -> StreamId:
        if type(value) is cls:
            return value  # already validated
        if not isinstance(value, str):
            raise InvalidFormat(f"stream id must be a string, got {type(value).__name__}: {value!r}")
        text = value.strip()
        if not text:
            raise EmptyValue(f"stream id must not be empty or blank, got {value!r}")
        if len(text) > MAX_STREAM_ID_LENGTH:
            raise TooLong(
                f"stream id is {len(text)} characters long; the limit is {MAX_STREAM_ID_LENGTH} "
                f"(starts with {text[:20]!r})"
            )
        if not text.isprintable():  # fast path: printable text needs no closer look
            for char in text:
                category = unicodedata.category(char)
                if category == "Cc":
                    raise InvalidFormat(f"stream id {text!r} contains the control character {char!r}")
                if category == "Cs":
                    raise InvalidFormat(f"stream id {text!r} contains a lone surrogate {char!r}")
        return super().__new__(cls, text)


def stream_id(value: str) -> StreamId:
    """Validate ``value`` as a stream id (see :class:`StreamId`)."""
    return StreamId(value)


_id_lock = threading.Lock()
_last_id = 0


def new_event_id() -> uuid.UUID:
    """A UUIDv7 that is strictly greater than every id this process made before, across threads."""
    global _last_id
    with _id_lock:
        value = uuid6.uuid7().int
        if value <= _last_id:
            # Same millisecond on another thread, or the clock stepped back: keep the order anyway.
            value = _last_id + 1
        _last_id = value
    return uuid.UUID(int=value)


def new_correlation_id() -> str:
    """A fresh correlation id for a request that did not bring one."""
    return str(new_event_id())
