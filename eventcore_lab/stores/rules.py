"""Every rule a store must keep, written once: every store calls these at its entry points.

A store only persists and reads; what may be written, which read arguments are valid, what a checkpoint
name is and what a closed store does are decided here, so that the memory store is never more forgiving
than the durable ones and the same bad input gets the same error everywhere.

What is written can be read back. An append or import is refused (nothing written, a
:class:`~eventcore_lab.core.errors.SerializationError` naming the event and the field) unless each payload
and each metadata decodes back from its JSON into an equal value. That refuses events that break their
own class's constraints (``Annotated[int, Meta(gt=0)]`` holding -5), non-finite floats (JSON has no NaN or
infinity: they would be stored as ``null``) and values of untyped (``Any``) fields that JSON would change
(bytes, tuples, sets, datetimes, non-string keys). Refusing is chosen over keeping such values exactly
because every store, and every export file, then holds plain JSON that any reader understands.

Tags (:mod:`eventcore_lab.core.tags`) are derived and checked here, in :func:`prepare_append`, so every
store keeps the same tags for the same write; queries and append conditions are checked by
:func:`check_query` and :func:`check_condition`, and a condition is enforced by
:func:`check_condition_holds` (in-process stores) or by the database in the same transaction.
"""

from __future__ import annotations

import dataclasses
import math
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from itertools import compress, count, repeat
from operator import attrgetter, is_
from typing import Any, cast

import msgspec

from ..core.errors import (
    AppendConditionFailed,
    EmptyValue,
    EventCoreError,
    EventTypeMismatch,
    InvalidArgument,
    InvalidFormat,
    SerializationError,
    StoreClosed,
    TooLong,
    VersionConflict,
)
from ..core.events import EventToWrite, ExpectedVersion, Metadata, StoredEvent
from ..core.ids import StreamId
from ..core.query import AppendCondition, Query
from ..core.registry import EventRegistry, UnknownEvent
from ..core.tags import check_tag, check_tags, tags_of
from .filters import LogFilter

#: Payloads larger than this (as JSON) are refused, so one bad event cannot bloat or stall a store.
MAX_PAYLOAD_BYTES = 1 << 20

#: Longest event type name a store keeps.
MAX_EVENT_TYPE_LENGTH = 255

_json_encoder = msgspec.json.Encoder()
_metadata_decoder = msgspec.json.Decoder(Metadata)


class PreparedEvent(msgspec.Struct, frozen=True):
    """A write that passed validation: its stream id, type name, payload and metadata, and their JSON."""

    stream_id: StreamId
    event_type: str
    payload: object
    payload_json: bytes
    metadata: Metadata
    metadata_json: bytes
    tags: tuple[str, ...] = ()


class PreparedImport(msgspec.Struct, frozen=True):
    """An import that passed validation, ready for a store to number and persist.

    ``events`` are the input events with validated stream ids and UTC timestamps; ``payloads`` and
    ``metadata`` their JSON, index for index. ``first_versions`` / ``last_versions`` give each stream's
    first and last imported version: the store checks under its lock (:func:`check_follows`) that each
    first version follows the stream's current version.
    """

    events: list[StoredEvent]
    payloads: list[bytes]
    metadata: list[bytes]
    first_versions: dict[str, int]
    last_versions: dict[str, int]
    #: The events' fields as columns, when validation built them (a columnar store inserts them as is).
    columns: ImportColumns | None = None


class ImportColumns(msgspec.Struct, frozen=True):
    """The fields of validated import events, one list per field, index for index with the events."""

    event_ids: list[uuid.UUID]
    streams: list[str]
    versions: list[int]
    types: list[str]
    payloads: list[Any]
    recorded: list[datetime]
    tags: list[tuple[str, ...]]


# -- appends -----------------------------------------------------------------------------------------


def prepare_append(
    events: Sequence[EventToWrite],
    expected: Mapping[str, ExpectedVersion] | None,
    registry: EventRegistry,
    max_payload_bytes: int = MAX_PAYLOAD_BYTES,
) -> tuple[list[PreparedEvent], dict[StreamId, ExpectedVersion]]:
    """Validate an append before anything is written; raise a clear error on the first bad item."""
    if type(events) is not list and (isinstance(events, str | bytes) or not isinstance(events, Sequence)):
        raise InvalidArgument(f"append expects a list of EventToWrite, got {type(events).__name__}")
    prepared = []
    metadata_seen: dict[int, bytes] = {}
    for write in events:
        if type(write) is not EventToWrite and not isinstance(write, EventToWrite):
            raise InvalidFormat(f"append expects EventToWrite items, got {type(write).__name__}")
        sid = StreamId(write.stream_id)
        event_type, data = encode_payload(registry, write.event, max_payload_bytes, sid)
        metadata = write.metadata or Metadata()
        meta = metadata_seen.get(id(metadata))
        if meta is None:  # the events of one command share their metadata
            meta = metadata_seen[id(metadata)] = encode_metadata(metadata, sid)
        tags = tags_of(write.event, write.tags, _ForStream(sid))
        prepared.append(PreparedEvent(sid, event_type, write.event, data, metadata, meta, tags))
    checks: dict[StreamId, ExpectedVersion] = {}
    if expected:
        if type(expected) is not dict and not isinstance(expected, Mapping):
            raise InvalidArgument(
                f"expected must map stream ids to ExpectedVersion, got {type(expected).__name__}"
            )
        for name, exp in expected.items():
            if type(exp) is not ExpectedVersion:
                raise InvalidArgument(
                    f"expected version for {name!r} must be an ExpectedVersion, got {exp!r}"
                )
            checks[name if type(name) is StreamId else StreamId(name)] = exp
    elif expected is not None and not isinstance(expected, Mapping):
        raise InvalidArgument(
            f"expected must map stream ids to ExpectedVersion, got {type(expected).__name__}"
        )
    return prepared, checks


def encode_payload(
    registry: EventRegistry, event: object, max_payload_bytes: int, where: str | _At
) -> tuple[str, bytes]:
    """``event``'s type name and JSON, after checking that the JSON reads back as an equal event.

    ``where`` says which event this is in messages: a stream id (as "for stream ...") or a phrase.
    """
    event_type = registry.type_name(event)
    try:
        data = registry.encode(event)
    except SerializationError as exc:
        raise SerializationError(
            f"the {event_type} event {_place(where)} cannot be stored: {_unencodable(event)}"
        ) from exc
    if len(data) > max_payload_bytes:
        raise TooLong(
            f"{event_type} payload {_place(where)} is {len(data)} bytes as JSON; "
            f"the limit is {max_payload_bytes}"
        )
    try:
        back = registry.decode(event_type, data)
    except SerializationError as exc:
        raise SerializationError(
            f"the {event_type} event {_place(where)} cannot be stored: it would not read back ({exc.message})"
        ) from exc
    try:  # _equal, inline: this runs once per event written
        same = bool(back == event)
    except Exception:  # a signalling Decimal NaN, for one, refuses to compare
        same = False
    if not same:
        raise SerializationError(
            f"the {event_type} event {_place(where)} cannot be stored exactly: {_difference(event, back)}. "
            "Floats must be finite and untyped (Any) fields must hold JSON values (str, int, float, bool, "
            "None, list, dict with str keys); give the field a precise type or convert the value"
        )
    return event_type, data


class _At:
    """Where an imported event is, for messages: built cheaply, formatted only when an error needs it."""

    __slots__ = ("stream_id", "version")

    def __init__(self, stream_id: str, version: object) -> None:
        self.stream_id, self.version = stream_id, version

    def __str__(self) -> str:
        return f"in stream {self.stream_id!r} at version {self.version!r}"


class _ForStream:
    """ "for stream ..." in messages, formatted only when an error names it."""

    __slots__ = ("stream_id",)

    def __init__(self, stream_id: str) -> None:
        self.stream_id = stream_id

    def __str__(self) -> str:
        return f"for stream {self.stream_id!r}"


def _place(where: str | _At) -> str:
    """``where`` for a message: a bare stream id reads "for stream ...", anything else as itself."""
    return f"for stream {where!r}" if type(where) is StreamId else str(where)


def encode_metadata(metadata: Metadata, where: str | _At) -> bytes:
    """``metadata`` as JSON, after checking it is a Metadata that reads back equal.

    ``where`` says whose metadata this is in messages: a stream id (as "for stream ...") or a phrase.
    """
    if type(metadata) is not Metadata:
        raise InvalidFormat(f"metadata must be a Metadata, got {type(metadata).__name__}")
    try:
        data = _json_encoder.encode(metadata)
        if _plain_metadata(metadata):
            return data  # strings and None only: they encode exactly or not at all
        back = _metadata_decoder.decode(data)
    except (TypeError, ValueError, OverflowError, msgspec.DecodeError) as exc:
        raise SerializationError(f"the metadata {_place(where)} cannot be stored: {exc}") from exc
    if not _equal(back, metadata):
        raise SerializationError(
            f"the metadata {_place(where)} cannot be stored exactly: {_difference(metadata, back)}; "
            "custom metadata must hold JSON values with finite floats"
        )
    return data


def _plain_metadata(metadata: Metadata) -> bool:
    """Whether ``metadata`` holds strings and None only (one expression: it runs once per append)."""
    causation, user = metadata.causation_id, metadata.user_id
    return (
        not metadata.custom
        and type(metadata.correlation_id) is str
        and (causation is None or type(causation) is str)
        and (user is None or type(user) is str)
    )


def _equal(a: object, b: object) -> bool:
    try:
        return bool(a == b)
    except Exception:  # a signalling Decimal NaN, for one, refuses to compare
        return False


def _fields(value: object) -> dict[str, Any] | None:
    if isinstance(value, msgspec.Struct):
        return {name: getattr(value, name) for name in value.__struct_fields__}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    return None


def _unencodable(event: object) -> str:
    """Name the first field JSON cannot encode (a lone surrogate, a value nested too deep...)."""
    for name, value in (_fields(event) or {}).items():
        try:
            _json_encoder.encode(value)
        except (TypeError, ValueError, OverflowError, RecursionError) as exc:
            return f"field {name!r} cannot be encoded as JSON ({exc})"
    return "it cannot be encoded as JSON"


def _difference(original: object, back: object, path: str = "") -> str:
    """Name the first field whose value does not survive the JSON round trip."""
    mine, theirs = _fields(original), _fields(back)
    if mine is not None and theirs is not None:
        for name, value in mine.items():
            if not _equal(value, theirs.get(name)):
                return _difference(value, theirs.get(name), f"{path}.{name}" if path else name)
    if isinstance(original, Mapping) and isinstance(back, Mapping):
        for key, value in original.items():
            if not isinstance(key, str):
                return f"field {path!r} has the non-string key {key!r}, which JSON turns into a string"
            if not _equal(value, back.get(key)):
                return _difference(value, back.get(key), f"{path}[{key!r}]")
    if isinstance(original, list) and isinstance(back, list) and len(original) == len(back):
        for i, (a, b) in enumerate(zip(original, back, strict=True)):
            if not _equal(a, b):
                return _difference(a, b, f"{path}[{i}]")
    if isinstance(original, float) and not math.isfinite(original):
        return f"field {path!r} holds the non-finite float {original!r}, which JSON cannot represent"
    return f"field {path!r} holds {original!r} ({type(original).__name__}), which reads back as {back!r}"


def check_expected(checks: Mapping[StreamId, ExpectedVersion], version_of: Callable[[str], int]) -> None:
    """Raise VersionConflict naming every stream whose expectation fails."""
    conflicts: dict[str, tuple[str, int]] = {}
    for sid, exp in checks.items():
        actual = version_of(sid)
        if not exp.holds_for(actual):
            conflicts[sid] = (str(exp), actual)
    if conflicts:
        raise VersionConflict(conflicts)


def stamp_events(
    prepared: Sequence[PreparedEvent],
    version_of: Callable[[str], int],
    first_position: int,
    now: datetime,
    new_id: Callable[[], uuid.UUID],
) -> tuple[list[StoredEvent], dict[str, int]]:
    """Number validated writes: the next version of each stream and consecutive positions.

    Returns the stored events and each written stream's new version. Stores that number events in
    process call this under their write lock, after :func:`check_expected`.
    """
    versions: dict[str, int] = {}
    stored = []
    position = first_position
    for item in prepared:
        sid = item.stream_id
        version = versions.get(sid) or version_of(sid)
        versions[sid] = version = version + 1
        stored.append(
            StoredEvent(
                event_id=new_id(),
                stream_id=sid,
                version=version,
                position=position,
                event_type=item.event_type,
                payload=item.payload,
                metadata=item.metadata,
                recorded_at=now,
                tags=item.tags,
            )
        )
        position += 1
    return stored, versions


# -- imports ------------------------------------------------------------------------------------------


def check_event_type(name: object) -> str:
    """An event type name a store can keep: a non-empty str of printable, encodable text."""
    if not isinstance(name, str):
        raise InvalidFormat(f"an event type name is a string, got {type(name).__name__}: {name!r}")
    if not name.strip():
        raise EmptyValue(f"an event type name must not be empty or blank, got {name!r}")
    if len(name) > MAX_EVENT_TYPE_LENGTH:
        raise TooLong(f"event type name is {len(name)} characters; the limit is {MAX_EVENT_TYPE_LENGTH}")
    if not name.isprintable():
        raise InvalidFormat(f"event type name {name!r} contains a control or unprintable character")
    try:
        name.encode()
    except UnicodeEncodeError:
        raise InvalidFormat(f"event type name {name!r} contains a lone surrogate") from None
    return name


def prepare_import(
    events: Iterable[StoredEvent], registry: EventRegistry, max_payload_bytes: int = MAX_PAYLOAD_BYTES
) -> PreparedImport:
    """Validate already stored events (another store's export) before any is imported.

    Each item is a StoredEvent whose ``event_type`` is its payload's registered name (or an
    :class:`UnknownEvent` of that name), whose payload and metadata read back exactly, whose event id
    is a UUID not repeated in the import, whose ``recorded_at`` is timezone-aware, and whose version
    continues its stream's previous imported version. Positions are ignored: stores assign new ones.
    The checks run column by column (:func:`_prepare_import_columns`); when that finds anything to
    refuse, they run again event by event, so that the error names the first refused event.
    """
    if isinstance(events, str | bytes | Mapping) or not isinstance(events, Iterable):
        raise InvalidArgument(f"import expects an iterable of StoredEvent, got {type(events).__name__}")
    items = events if isinstance(events, list) else _materialise(events, registry, max_payload_bytes)
    fast = _prepare_import_columns(items, registry, max_payload_bytes)
    return fast if fast is not None else _prepare_import_rows(items, registry, max_payload_bytes)


def _materialise(
    events: Iterable[StoredEvent], registry: EventRegistry, max_payload_bytes: int
) -> list[StoredEvent]:
    """The events as a list. When reading them fails (a damaged file, say), an event read before the
    failure that would be refused is reported instead, as checking event by event while reading would."""
    items: list[StoredEvent] = []
    try:
        items.extend(events)
    except Exception:
        _prepare_import_rows(items, registry, max_payload_bytes)
        raise
    return items


def _prepare_import_rows(
    events: list[StoredEvent], registry: EventRegistry, max_payload_bytes: int
) -> PreparedImport:
    """:func:`prepare_import` event by event: the reference, and what names the first refused event."""
    kept: list[StoredEvent] = []
    payloads: list[bytes] = []
    metadata_json: list[bytes] = []
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    ids: set[uuid.UUID] = set()
    valid_ids: dict[str, StreamId] = {}
    valid_types: set[str] = set()
    metadata_seen: dict[int, bytes] = {}
    for event in events:
        if type(event) is not StoredEvent:
            raise InvalidFormat(f"import expects StoredEvent items, got {type(event).__name__}")
        sid = valid_ids.get(event.stream_id)
        if sid is None:
            sid = valid_ids[event.stream_id] = StreamId(event.stream_id)
        where = _At(sid, event.version)  # formatted only if an error names it
        event_id = event.event_id
        if not isinstance(event_id, uuid.UUID):
            raise InvalidFormat(f"the event {where} has the event id {event_id!r}, which is not a UUID")
        if event_id in ids:
            raise InvalidFormat(f"the event id {event_id} appears twice in the import (again {where})")
        ids.add(event_id)
        version = event.version
        if type(version) is not int or version < 1:
            raise InvalidFormat(f"event versions are ints >= 1, got {version!r} in stream {sid!r}")
        previous = last.get(sid)
        if previous is None:
            first[sid] = version
        elif version != previous + 1:
            raise VersionConflict({sid: (f"version {version - 1} (the import is not consecutive)", previous)})
        last[sid] = version
        event_type = event.event_type
        if event_type not in valid_types:
            check_event_type(event_type)
            valid_types.add(event_type)
        payload = event.payload
        if isinstance(payload, UnknownEvent):  # also a RetiredEvent: kept as stored, at its version
            data = _unknown_payload(payload, event_type, registry, max_payload_bytes, where)
        else:
            named, data = encode_payload(registry, payload, max_payload_bytes, where)
            if named != event_type:
                raise EventTypeMismatch(
                    f"the event {where} says its type is {event_type!r} but its payload is a "
                    f"{type(payload).__qualname__}, registered as {named!r}"
                )
        metadata = event.metadata
        meta = metadata_seen.get(id(metadata))
        if meta is None:
            meta = metadata_seen[id(metadata)] = encode_metadata(metadata, where)
        recorded = event.recorded_at
        if not isinstance(recorded, datetime) or recorded.tzinfo is None or recorded.utcoffset() is None:
            raise InvalidFormat(
                f"recorded_at of the event {where} must be a timezone-aware datetime, got {recorded!r}"
            )
        if recorded.tzinfo is not UTC:
            recorded = recorded.astimezone(UTC)
        tags = event.tags
        if tags:
            tags = check_tags(tags, where)
            if len(tags) != len(event.tags):
                raise InvalidFormat(f"the event {where} carries a tag twice: {list(event.tags)!r}")
        elif type(tags) is not tuple:
            tags = ()
        if sid != event.stream_id or recorded is not event.recorded_at or tags is not event.tags:
            event = msgspec.structs.replace(event, stream_id=sid, recorded_at=recorded, tags=tags)
        kept.append(event)
        payloads.append(data)
        metadata_json.append(meta)
    return PreparedImport(kept, payloads, metadata_json, first, last)


def _prepare_import_columns(
    events: list[StoredEvent], registry: EventRegistry, max_payload_bytes: int
) -> PreparedImport | None:
    """:func:`prepare_import` column by column: each rule runs once per distinct value (stream id, type
    name, payload class, metadata, timestamp) or as one pass over a column in C, and the payloads of a
    class are encoded and read back in one call each, which costs a fraction of doing it event by event.

    Returns None when anything would be refused (or is unusual, such as a stream id to trim): then
    :func:`_prepare_import_rows` checks again event by event and names the first refused event.
    """
    try:
        return _import_columns(events, registry, max_payload_bytes)
    except (EventCoreError, TypeError, ValueError, OverflowError, RecursionError, msgspec.DecodeError):
        return None  # RecursionError: a payload nested too deep for msgspec; the row check reports it


def _column(events: list[StoredEvent], name: str) -> list[Any]:
    return list(map(attrgetter(name), events))


def _import_columns(
    events: list[StoredEvent], registry: EventRegistry, max_payload_bytes: int
) -> PreparedImport | None:
    if not events:
        return PreparedImport([], [], [], {}, {})
    if type(registry).encode is not EventRegistry.encode or type(registry).decode is not EventRegistry.decode:
        return None  # payloads are encoded here as the registry's own methods would
    if set(map(type, events)) != {StoredEvent}:
        return None
    streams: list[str] = _column(events, "stream_id")
    if any(StreamId(raw) != raw for raw in dict.fromkeys(streams)):
        return None  # trimmed stream ids: rare, left to the row-by-row check
    ids = _column(events, "event_id")
    if not all(issubclass(kind, uuid.UUID) for kind in set(map(type, ids))):
        return None
    if len(set(map(attrgetter("int"), ids))) != len(ids):
        return None
    versions = _column(events, "version")
    if set(map(type, versions)) != {int} or min(versions) < 1:
        return None
    last = dict(zip(streams, versions, strict=True))
    first_seen = dict(zip(reversed(streams), reversed(versions), strict=True))
    first = {sid: first_seen[sid] for sid in last}  # in order of first appearance, as row by row
    counters = {sid: count(version) for sid, version in first.items()}
    if list(map(next, map(counters.__getitem__, streams))) != versions:
        return None  # a stream's versions are not consecutive in import order
    types = _column(events, "event_type")
    for name in set(types):
        check_event_type(name)
    payload_objects = _column(events, "payload")
    payloads = _import_payloads(payload_objects, types, streams, versions, registry, max_payload_bytes)
    if payloads is None:
        return None
    metadata = _column(events, "metadata")
    keys = list(map(id, metadata))
    distinct = dict(zip(keys, metadata, strict=True))  # an export shares few Metadata objects, a history one
    encoded = {key: encode_metadata(meta, "") for key, meta in distinct.items()}
    if len(encoded) == 1:
        metadata_json = [encoded[keys[0]]] * len(keys)
    else:
        metadata_json = list(map(encoded.__getitem__, keys))
    recorded = _column(events, "recorded_at")
    if all(map(is_, recorded, repeat(recorded[0]))):
        moments: Iterable[object] = recorded[:1]
    else:
        moments = dict(zip(map(id, recorded), recorded, strict=True)).values()
    for at in moments:
        if not isinstance(at, datetime) or at.tzinfo is not UTC:
            return None  # naive or another zone: refused or converted row by row
    tags = _column(events, "tags")
    if any(tags) or set(map(type, tags)) != {tuple}:
        return None  # tagged events: checked (and their tags copied) row by row
    columns = ImportColumns(ids, streams, versions, types, payload_objects, recorded, tags)
    return PreparedImport(list(events), payloads, metadata_json, first, last, columns)


_line_decoders: dict[type, msgspec.json.Decoder[Any]] = {}


def _import_payloads(
    payloads: list[object],
    types: list[str],
    streams: list[str],
    versions: list[int],
    registry: EventRegistry,
    max_payload_bytes: int,
) -> list[bytes] | None:
    """The payloads' JSON, in one encoding pass, read back class by class; None when one would be
    refused (see :func:`encode_payload`)."""
    kinds = list(map(type, payloads))
    classes = list(dict.fromkeys(kinds))
    if any(issubclass(kind, UnknownEvent) for kind in classes):
        return _import_payloads_with_unknown(payloads, types, streams, versions, registry, max_payload_bytes)
    names = {kind: registry.name_of(kind) for kind in classes}
    if list(map(names.__getitem__, kinds)) != types:
        return None  # an event whose type is not its payload's registered name
    encoded = _json_encoder.encode_lines(payloads).split(b"\n")  # JSON text holds no raw newline
    encoded.pop()  # after the last newline
    if len(encoded) != len(payloads) or max(map(len, encoded)) > max_payload_bytes:
        return None
    for kind in classes:
        of_kind, lines = payloads, encoded
        if len(classes) > 1:
            mask = list(map(is_, kinds, repeat(kind)))
            of_kind, lines = list(compress(payloads, mask)), list(compress(encoded, mask))
        if not _reads_back(registry.event_class(names[kind]), of_kind, lines):
            return None
    return encoded


def _reads_back(cls: type, payloads: list[object], lines: list[bytes]) -> bool:
    """Whether the JSON ``lines`` of payloads of one registered class decode to equal payloads."""
    decoder = _line_decoders.get(cls)
    if decoder is None:
        decoder = _line_decoders[cls] = msgspec.json.Decoder(cls)
    return _equal(decoder.decode_lines(b"\n".join(lines)), payloads)


def _import_payloads_with_unknown(
    payloads: list[object],
    types: list[str],
    streams: list[str],
    versions: list[int],
    registry: EventRegistry,
    max_payload_bytes: int,
) -> list[bytes] | None:
    """:func:`_import_payloads` when some payloads are of types unknown where they were read: those are
    kept byte for byte (checked one by one), the others encoded class by class."""
    kinds = list(map(type, payloads))
    lines_of: dict[type, Iterator[bytes]] = {}
    for kind in dict.fromkeys(kinds):
        mask = list(map(is_, kinds, repeat(kind)))
        if issubclass(kind, UnknownEvent):
            rows = compress(range(len(payloads)), mask)
            encoded = [
                _unknown_payload(
                    cast(UnknownEvent, payloads[row]),
                    types[row],
                    registry,
                    max_payload_bytes,
                    _At(streams[row], versions[row]),
                )
                for row in rows
            ]
        else:
            of_kind, types_of_kind = list(compress(payloads, mask)), list(compress(types, mask))
            encoded_or_none = _import_payloads(
                of_kind, types_of_kind, streams, versions, registry, max_payload_bytes
            )
            if encoded_or_none is None:
                return None
            encoded = encoded_or_none
        lines_of[kind] = iter(encoded)
    return list(map(next, map(lines_of.__getitem__, kinds)))  # back in import order


def _unknown_payload(
    payload: UnknownEvent, event_type: str, registry: EventRegistry, max_payload_bytes: int, where: _At
) -> bytes:
    """The raw JSON of an event whose type was not registered where it was read; kept byte for byte."""
    if payload.event_type != event_type:
        raise EventTypeMismatch(
            f"the event {where} says its type is {event_type!r} but holds an unknown "
            f"{payload.event_type!r} payload"
        )
    data = payload.raw
    if len(data) > max_payload_bytes:
        raise TooLong(f"{event_type} payload {where} is {len(data)} bytes; the limit is {max_payload_bytes}")
    try:
        is_object = isinstance(msgspec.json.decode(data), dict)
    except msgspec.DecodeError:
        is_object = False
    if not is_object:
        raise SerializationError(f"the unknown {event_type} event {where} does not hold a JSON object")
    if event_type in registry:  # registered since it was read: it must fit its class now
        try:
            registry.decode(event_type, data)
        except SerializationError as exc:
            raise SerializationError(
                f"the {event_type} event {where} does not fit its class: {exc.message}"
            ) from exc
    return data


def check_follows(first_versions: Mapping[str, int], version_of: Callable[[str], int]) -> None:
    """Refuse an import whose first event of a stream does not follow that stream's version."""
    conflicts = {}
    for sid, version in first_versions.items():
        current = version_of(sid)
        if version != current + 1:
            conflicts[sid] = (f"version {version - 1}", current)
    if conflicts:
        raise VersionConflict(conflicts)


# -- queries and append conditions -------------------------------------------------------------------


def check_query(query: object) -> Query:
    """A ``read_query`` argument: a Query whose tags are tags a store could hold."""
    if type(query) is not Query:
        raise InvalidArgument(f"read_query expects a Query (eventcore_lab.core.query), got {query!r}")
    for item in query.items:
        for tag in item.tags:
            check_tag(tag, "in a query")
    return query


def check_condition(condition: object) -> AppendCondition | None:
    """An ``append(condition=...)`` argument: None or an AppendCondition with a valid query."""
    if condition is None:
        return None
    if type(condition) is not AppendCondition:
        raise InvalidArgument(
            f"append(condition=...) expects an AppendCondition (eventcore_lab.core.query), got {condition!r}"
        )
    check_query(condition.fail_if_events_match)
    return condition


def check_condition_holds(
    condition: AppendCondition | None, first_match: Callable[[Query, int], int | None]
) -> None:
    """Raise AppendConditionFailed when an event matching the condition's query lies above its position.

    ``first_match(query, after)`` is the store's lookup: the lowest matching position above ``after``
    (None when there is none). Stores call this under the same lock/transaction as :func:`check_expected`,
    after it: a stream conflict is reported before a condition failure.
    """
    if condition is None:
        return
    query, after = condition.fail_if_events_match, condition.after
    found = first_match(query, after or 0)
    if found is not None:
        raise AppendConditionFailed(query, after, found)


# -- reads, checkpoints, lifecycle ------------------------------------------------------------------


def check_position(value: object, name: str = "after") -> int:
    """A position or version argument: an int >= 0 (not a bool)."""
    if type(value) is not int:
        if isinstance(value, int) and not isinstance(value, bool):
            return check_position(int(value), name)
        raise InvalidArgument(f"{name} must be an int >= 0, got {type(value).__name__}: {value!r}")
    if value < 0:
        raise InvalidArgument(f"{name} must be an int >= 0, got {value}")
    return value


def check_limit(value: object) -> int | None:
    """A ``limit`` argument: None (no limit) or an int >= 0 (not a bool)."""
    if value is None:
        return None
    return check_position(value, "limit")


# -- filtered reads (one rule for every store's read_all, read_stream, read_filtered and subscribe) ---


def check_log_filter(event_types: object, categories: object, registry: EventRegistry) -> LogFilter | None:
    """Read filters: None (read everything) or a :class:`~.filters.LogFilter`.

    ``event_types`` is None or a non-empty collection of type names or registered event classes;
    ``categories`` is None or a non-empty collection of stream categories (the part of a stream id
    before its first ``-``). A bare string is refused: it is a collection of characters, rarely meant.
    """
    types = _filter_items(event_types, "event_types", lambda item: _type_name(item, registry))
    cats = _filter_items(categories, "categories", _category)
    if types is None and cats is None:
        return None
    return LogFilter(types, cats)


def _filter_items(value: object, name: str, check: Callable[[object], str]) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise InvalidArgument(
            f"{name} must be None or a collection of names, got {type(value).__name__}: {value!r}"
        )
    items = frozenset(check(item) for item in value)
    if not items:
        raise InvalidArgument(f"{name} is empty, so nothing would match; pass None to read every one")
    return items


def _type_name(item: object, registry: EventRegistry) -> str:
    if isinstance(item, type):
        return registry.name_of(item)
    if not isinstance(item, str):
        raise InvalidArgument(f"event_types holds type names or event classes, got {item!r}")
    return check_event_type(item)


def _category(item: object) -> str:
    if not isinstance(item, str) or not item.strip() or "-" in item or not item.isprintable():
        raise InvalidArgument(
            f"a stream category is a non-empty printable string without '-' (the part of a stream id "
            f"before its first '-'), got {item!r}"
        )
    return item


def check_backwards(value: object) -> bool:
    """A ``backwards`` argument: True or False."""
    if type(value) is not bool:
        raise InvalidArgument(f"backwards must be True or False, got {value!r}")
    return value


def check_checkpoint_name(name: object) -> str:
    """A checkpoint name: a non-empty str without control characters or lone surrogates, at most 255."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidArgument(f"a checkpoint name is a non-empty string, got {name!r}")
    if len(name) > 255:
        raise InvalidArgument(f"a checkpoint name is at most 255 characters, got {len(name)}")
    if not name.isprintable():
        raise InvalidArgument(f"checkpoint name {name!r} contains a control or unprintable character")
    try:
        name.encode()
    except UnicodeEncodeError:
        raise InvalidArgument(f"checkpoint name {name!r} contains a lone surrogate") from None
    return name


def check_open(closed: bool, store: str) -> None:
    """Raise StoreClosed (naming ``store``) when ``closed``: the one error every store gives after
    ``close()``, for every call but ``close()`` itself."""
    if closed:
        raise StoreClosed(store)
