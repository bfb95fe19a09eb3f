"""Identifiers: stream ids (validated strings) and event ids (monotonic UUIDv7)."""

from __future__ import annotations

import os
import random
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

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
        if type(value) is str and cls is StreamId:
            known = _validated.get(value)
            if known is not None:
                return known
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
        result = super().__new__(cls, text)
        if type(value) is str and cls is StreamId:
            if len(_validated) >= _VALIDATED_MAX:
                _validated.clear()
            _validated[value] = result
        return result


# Recently validated plain strings and their StreamId: commands name their streams with plain strings, and
# every append would otherwise re-check the same few ids. Bounded; cleared wholesale when full.
_validated: dict[str, StreamId] = {}
_VALIDATED_MAX = 1 << 16


def stream_id(value: str) -> StreamId:
    """Validate ``value`` as a stream id (see :class:`StreamId`)."""
    return StreamId(value)


_id_lock = threading.Lock()
_last_ms = -1
_last_counter = 0
_COUNTER_BITS = 74  # rand_a (12 bits) and rand_b (62 bits) of RFC 9562, used as one counter
_RAND_B_MASK = (1 << 62) - 1


def _next_id_int() -> int:
    """The 128-bit value of the next UUIDv7 (see :func:`new_event_id`)."""
    global _last_ms, _last_counter
    now_ms = time.time_ns() // 1_000_000
    with _id_lock:
        if now_ms > _last_ms:
            _last_ms = now_ms
            _last_counter = int.from_bytes(os.urandom(10)) >> (80 - _COUNTER_BITS + 1)
        else:  # same millisecond, or the clock stepped back: keep counting from the last id
            _last_counter += 1
        ms, counter = _last_ms, _last_counter
    return (ms << 80) | (0x7 << 76) | ((counter >> 62) << 64) | (0b10 << 62) | (counter & _RAND_B_MASK)


# uuid.UUID(int=...) range-checks its argument, which costs twice the rest of building the id; our values
# are 128-bit by construction, so the object is filled in directly (same fields as UUID.__init__ sets).
_UUID = uuid.UUID
_new_object = object.__new__
_set_field = object.__setattr__
_SAFE_UNKNOWN = uuid.SafeUUID.unknown


def new_event_id() -> uuid.UUID:
    """A UUIDv7 strictly greater than every id this process made before, across threads.

    Within one millisecond the 74 bits after the timestamp act as a counter that starts at a random
    value below 2**73 (RFC 9562 "monotonic random"), so ids made in a burst stay ordered. Written here
    rather than taken from a package because it must be thread-safe and sits on the append hot path.
    """
    value: uuid.UUID = _new_object(_UUID)
    _set_field(value, "int", _next_id_int())
    _set_field(value, "is_safe", _SAFE_UNKNOWN)
    return value


def new_correlation_id() -> str:
    """A fresh correlation id for a request that did not bring one (a UUIDv7 in its usual text form)."""
    h = f"{_next_id_int():032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)
_MAX_MS = (1 << 48) - 1
_MAX_COUNTER = (1 << _COUNTER_BITS) - 1


def uuid7_at(moment: datetime, counter: int) -> uuid.UUID:
    """The UUIDv7 with ``moment``'s millisecond as timestamp and ``counter`` in the 74 bits after it.

    The layout is the one :func:`new_event_id` uses, so these ids sort with its ids by time, then counter.
    ``moment`` must carry a time zone and lie between 1970 and the year 10889 (48-bit milliseconds).
    """
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise InvalidFormat(f"a UUIDv7 timestamp needs a timezone-aware datetime, got {moment!r}")
    if not 0 <= counter <= _MAX_COUNTER:
        raise InvalidFormat(f"a UUIDv7 counter must be in [0, 2**{_COUNTER_BITS}), got {counter}")
    ms = (moment - _UNIX_EPOCH) // _MILLISECOND  # exact integer arithmetic, no float rounding
    if not 0 <= ms <= _MAX_MS:
        raise InvalidFormat(f"{moment.isoformat()} is outside the UUIDv7 timestamp range (1970 onwards)")
    value: uuid.UUID = _new_object(_UUID)
    _set_field(
        value,
        "int",
        (ms << 80) | (0x7 << 76) | ((counter >> 62) << 64) | (0b10 << 62) | (counter & _RAND_B_MASK),
    )
    _set_field(value, "is_safe", _SAFE_UNKNOWN)
    return value


class RepeatableIds:
    """A source of UUIDv7 event ids that depends only on a (virtual) clock and a seed, never on real time.

    Give it to ``MemoryStore(clock=..., new_id=...)`` next to the same clock, and a rerun of a simulation
    or sample generator yields the same ids. Each call reads ``clock`` for the timestamp and takes the next
    value of one counter: it starts at 1 (no seed) or at a seeded random value below 2**73, and goes up by
    one per id, so ids are strictly increasing as long as the clock does not go back; if it does, the last
    timestamp is kept (as :func:`new_event_id` does), so the ids still increase.

    >>> from datetime import datetime, UTC
    >>> ids = RepeatableIds(lambda: datetime(2024, 1, 1, tzinfo=UTC))
    >>> str(ids()), str(ids())
    ('018cc251-f400-7000-8000-000000000001', '018cc251-f400-7000-8000-000000000002')
    """

    __slots__ = ("_clock", "_counter", "_last", "_lock")

    def __init__(self, clock: Callable[[], datetime], seed: int | None = None) -> None:
        if not callable(clock):
            raise InvalidFormat(f"clock must be a callable returning a datetime, got {clock!r}")
        self._clock = clock
        self._counter = 0 if seed is None else random.Random(seed).getrandbits(_COUNTER_BITS - 1)
        self._last: datetime | None = None
        self._lock = threading.Lock()

    def __call__(self) -> uuid.UUID:
        moment = self._clock()
        with self._lock:
            last = self._last
            if last is not None and isinstance(moment, datetime) and moment.tzinfo and moment < last:
                moment = last
            value = uuid7_at(moment, self._counter + 1)  # raises on a bad clock reading, changing nothing
            self._last = moment
            self._counter += 1
            return value
