"""pandas read models: projections whose state is tables, and the event log itself as a DataFrame.

Rows are kept as plain dicts while events are applied (a keyed upsert is one dict update) and turned into
DataFrames only when asked: building a DataFrame per event would be a thousand times slower.
"""

from __future__ import annotations

import fnmatch
import typing
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, time
from decimal import Decimal
from types import UnionType
from typing import Any, ClassVar

import msgspec
import pandas as pd
import pyarrow as pa

from .._gc import gc_paused
from ..core.errors import InvalidFormat, ProjectionError
from ..core.events import StoredEvent
from ..stores.base import EventStore, StreamListing, TableAccess
from ._columns import EnvelopeColumns, PayloadColumns, arrow_frame
from ._progress import progress_bar
from .base import Projection

#: The envelope columns of :func:`events_frame`, in order; payload fields follow.
ENVELOPE_COLUMNS = (
    "position",
    "stream_id",
    "version",
    "event_type",
    "recorded_at",
    "event_id",
    "correlation_id",
    "causation_id",
    "user_id",
)

_KEEP = (datetime, date, time, uuid.UUID, Decimal)


class FrameProjection(Projection):
    """A projection whose read model is one or more tables, read with :meth:`to_frame`.

    Declare the tables as ``tables = {"tasks": "task_id", "history": None}``: a table with a key column
    takes keyed upserts (:meth:`upsert`, :meth:`delete`), a table with ``None`` takes appends. Columns
    appear in the order their fields were first written.
    """

    tables: ClassVar[Mapping[str, str | None]] = {}

    def __init__(self) -> None:
        self._keyed: dict[str, dict[Any, dict[str, Any]]] = {}
        self._appended: dict[str, list[dict[str, Any]]] = {}
        for table, key in self.tables.items():
            if key is None:
                self._appended[table] = []
            else:
                self._keyed[table] = {}

    # -- writing (from handlers) -------------------------------------------------------------------

    def upsert(self, table: str, key: Any, **fields: Any) -> None:
        """Create the row ``key`` or update the given fields of it (other fields keep their values)."""
        try:
            rows = self._keyed[table]
        except KeyError:
            raise self._unknown(table, keyed=True) from None
        row = rows.get(key)
        if row is None:
            rows[key] = fields
        else:
            row.update(fields)

    def delete(self, table: str, key: Any) -> None:
        """Remove the row ``key`` if present."""
        try:
            self._keyed[table].pop(key, None)
        except KeyError:
            raise self._unknown(table, keyed=True) from None

    def append(self, table: str, **fields: Any) -> None:
        """Add a row to an append-only table."""
        try:
            self._appended[table].append(fields)
        except KeyError:
            raise self._unknown(table, keyed=False) from None

    def row(self, table: str, key: Any) -> dict[str, Any] | None:
        """A copy of one keyed row, or None (handlers use it to read what they wrote)."""
        try:
            found = self._keyed[table].get(key)
        except KeyError:
            raise self._unknown(table, keyed=True) from None
        return None if found is None else dict(found)

    def _unknown(self, table: str, *, keyed: bool) -> ProjectionError:
        kind = "keyed" if keyed else "append-only"
        declared = ", ".join(f"{t} (key {k})" if k else f"{t} (append)" for t, k in self.tables.items())
        return ProjectionError(
            f"{type(self).__name__} has no {kind} table {table!r}; declared: {declared or '(none)'}"
        )

    # -- reading -----------------------------------------------------------------------------------

    def to_frame(self, table: str | None = None) -> pd.DataFrame:
        """One table as a DataFrame (keyed tables are indexed by their key, sorted); the only table if
        ``table`` is left out."""
        if table is None:
            if len(self.tables) != 1:
                raise ProjectionError(
                    f"{type(self).__name__} has {len(self.tables)} tables; name one: {', '.join(self.tables)}"
                )
            table = next(iter(self.tables))
        if table in self._keyed:
            key = self.tables[table]
            rows = self._keyed[table]
            frame = pd.DataFrame.from_records(list(rows.values()), index=pd.Index(list(rows), name=key))
            return frame.sort_index() if len(frame) else frame
        if table in self._appended:
            return pd.DataFrame.from_records(self._appended[table])
        raise self._unknown(table, keyed=True)

    def frames(self) -> dict[str, pd.DataFrame]:
        """Every table as a DataFrame."""
        return {table: self.to_frame(table) for table in self.tables}


# -- the log as a DataFrame -----------------------------------------------------------------------


def _matcher(streams: Iterable[str] | str | None) -> Callable[[str], bool] | None:
    if streams is None:
        return None
    patterns = [streams] if isinstance(streams, str) else list(streams)
    exact = {p for p in patterns if not any(c in p for c in "*?[")}
    globs = [p for p in patterns if p not in exact]
    if not globs:
        return exact.__contains__
    return lambda sid: sid in exact or any(fnmatch.fnmatchcase(sid, g) for g in globs)


def _type_names(types: Iterable[type | str] | type | str | None, registry: Any) -> set[str] | None:
    if types is None:
        return None
    items = [types] if isinstance(types, type | str) else list(types)
    names = set()
    for item in items:
        if isinstance(item, str):
            names.add(item)
        else:
            names.add(_name_of(item, registry))
    return names


def _name_of(cls: type, registry: Any) -> str:
    declared = cls.__dict__.get("event_type")
    if isinstance(declared, str):
        return declared
    for name in registry:
        if registry.event_class(name) is cls:
            return str(name)
    raise InvalidFormat(f"{cls.__qualname__} is not a registered event class")


def _limit_for(until: int | datetime | None) -> tuple[int | None, datetime | None]:
    if until is None:
        return None, None
    if isinstance(until, datetime):
        if until.tzinfo is None:
            raise InvalidFormat(f"until= needs a timezone-aware datetime, got {until!r}")
        return None, until
    if isinstance(until, int) and not isinstance(until, bool) and until >= 0:
        return until, None
    raise InvalidFormat(f"until= is a position (int >= 0) or an aware datetime, got {until!r}")


def iter_events(
    store: EventStore,
    *,
    after: int = 0,
    until: int | datetime | None = None,
    batch_size: int = 10_000,
    progress: bool | None = None,
    description: str = "read",
) -> Iterable[list[StoredEvent]]:
    """The log in batches, up to position ``until`` or the last event recorded at or before ``until``.

    A timestamp limit ends the history at the first event recorded later: the result is always a
    prefix of the log, a state a checkpointed runner could have been in.
    """
    stop_position, stop_time = _limit_for(until)
    target = store.head() if stop_position is None else min(stop_position, store.head())
    position = after
    with progress_bar(max(target - after, 0), description, progress) as bar:
        while position < target:
            batch = store.read_all(after=position, limit=batch_size)
            if not batch:
                return
            if batch[-1].position > target:
                batch = [e for e in batch if e.position <= target]
            if stop_time is not None and batch[-1].recorded_at > stop_time:
                cut = next(i for i, e in enumerate(batch) if e.recorded_at > stop_time)
                if cut:
                    yield batch[:cut]
                return
            yield batch
            bar.update(batch[-1].position - position)
            position = batch[-1].position


def events_frame(
    store: EventStore,
    *,
    types: Iterable[type | str] | type | str | None = None,
    streams: Iterable[str] | str | None = None,
    after: int = 0,
    until: int | datetime | None = None,
    payload: bool = True,
    batch_size: int = 50_000,
    progress: bool | None = None,
) -> pd.DataFrame:
    """The log (or part of it) as a DataFrame: envelope columns, then one column per payload field.

    ``types`` are event classes or type names; ``streams`` are stream ids or glob patterns
    (``"task-*"``); ``until`` is a position or an aware datetime (see :func:`iter_events`). A payload
    field named like an envelope column is prefixed ``payload_``. Strings stay Python objects (no
    conversion cost); ``event_id`` holds each id's text, ``str(event.event_id)``, as ``causation_id``
    and ``correlation_id`` do, so the columns join (made from the ids' bytes by array operations: a
    ``uuid.UUID`` per event was the slowest column of a million-event frame).

    A store with a columnar path of its own (``store.events_table``, e.g. DuckDB) builds the frame
    there when the payload fields are plain scalars; the result is the same either way.
    """
    registry = store.registry
    wanted_types = _type_names(types, registry)
    _limit_for(until)  # refuse a bad limit whichever path runs
    with gc_paused():
        native = _native_frame(store, wanted_types, streams, after, until, payload)
        if native is not None:
            return native
        return _python_frame(store, wanted_types, streams, after, until, payload, batch_size, progress)


def _python_frame(
    store: EventStore,
    wanted_types: set[str] | None,
    streams: Iterable[str] | str | None,
    after: int,
    until: int | datetime | None,
    payload: bool,
    batch_size: int,
    progress: bool | None,
) -> pd.DataFrame:
    """The events frame built from the store's StoredEvents, column by column (any store)."""
    wanted_stream = _matcher(streams)
    envelope = EnvelopeColumns()
    fields = PayloadColumns(store.registry)
    batches = iter_events(
        store, after=after, until=until, batch_size=batch_size, progress=progress, description="events_frame"
    )
    for batch in batches:
        if wanted_types is not None:
            batch = [e for e in batch if e.event_type in wanted_types]
        if wanted_stream is not None:
            batch = [e for e in batch if wanted_stream(e.stream_id)]
        if batch:
            envelope.extend(batch)
            if payload:
                fields.extend([e.payload for e in batch])
    frame = envelope.frame()
    if payload:
        frame = pd.concat([frame, fields.frame(ENVELOPE_COLUMNS)], axis=1)
    return frame


# ints as HUGEINT: msgspec also writes unsigned 64-bit ints; ``arrow_frame`` narrows them to int64 and
# gives up (the Python path runs) if one does not fit
_SQL_TYPES = {int: "HUGEINT", float: "DOUBLE", str: "VARCHAR", bool: "BOOLEAN"}


def _scalar(annotation: Any) -> tuple[str | None, bool]:
    """The DuckDB type that reads a plain scalar field back as msgspec would, and whether it is
    optional; None for any other field."""
    options = (
        set(typing.get_args(annotation))
        if typing.get_origin(annotation) in (typing.Union, UnionType)
        else {annotation}
    )
    optional = type(None) in options
    options.discard(type(None))
    return (_SQL_TYPES.get(options.pop()) if len(options) == 1 else None), optional


def _payload_fields(
    registry: Any, type_names: list[str]
) -> tuple[dict[str, str], dict[str, dict[str, Any]]] | None:
    """The payload fields of these event types as DuckDB types, and the defaults that fill a field
    missing from an older event's JSON (field -> type name -> default); None when a field cannot be
    read natively (not a msgspec Struct, renamed, non-scalar or clashing fields, omitted defaults)."""
    fields: dict[str, str] = {}
    defaults: dict[str, dict[str, Any]] = {}
    for name in type_names:
        if name not in registry:
            return None
        cls = registry.event_class(name)
        if not isinstance(cls, type) or not issubclass(cls, msgspec.Struct):
            return None
        if cls.__struct_config__.omit_defaults:
            return None
        for info in msgspec.structs.fields(cls):
            sql, optional = _scalar(info.type)
            if sql is None or info.encode_name != info.name or info.name in ENVELOPE_COLUMNS:
                return None
            if fields.setdefault(info.name, sql) != sql or info.default_factory is not msgspec.NODEFAULT:
                return None
            if info.default is not msgspec.NODEFAULT and info.default is not None:
                if optional:  # null and missing would read back differently: leave it to Python
                    return None
                defaults.setdefault(info.name, {})[name] = info.default
    return fields, defaults


def _native_frame(
    store: EventStore,
    wanted_types: set[str] | None,
    streams: Iterable[str] | str | None,
    after: int,
    until: int | datetime | None,
    payload: bool,
) -> pd.DataFrame | None:
    """The events frame from the store's own columnar path (``store.events_table``), when it has one
    and the payloads are plain scalars; None otherwise. DuckDB filters and expands the JSON payloads,
    which is several times faster than building columns from Python objects."""
    if not isinstance(store, TableAccess) or not isinstance(after, int) or after < 0:
        return None  # the Python path reports a bad ``after`` as every store does
    events_table = store.events_table
    stream_ids: list[str] | None = None
    if streams is not None:
        patterns = [streams] if isinstance(streams, str) else list(streams)
        if any(c in p for p in patterns for c in "*?["):
            if not isinstance(store, StreamListing):
                return None
            match = _matcher(patterns)
            stream_ids = [sid for sid in store.stream_ids() if match is not None and match(sid)]
        else:
            stream_ids = patterns
    chosen: list[str] = []
    defaults: dict[str, dict[str, Any]] = {}

    def fields(present: list[str]) -> dict[str, str] | None:
        found = _payload_fields(store.registry, present) if payload else ({}, {})
        if found is None:
            return None
        chosen.extend(found[0])
        defaults.update(found[1])
        return found[0]

    table = events_table(
        after=after,
        until=until,
        stream_ids=stream_ids,
        event_types=None if wanted_types is None else sorted(wanted_types),
        fields=fields,
    )
    if table is None:
        return None
    try:
        return arrow_frame(table, chosen, ENVELOPE_COLUMNS, defaults)
    except pa.ArrowInvalid:  # an int beyond int64
        return None


# -- vectorised projections -----------------------------------------------------------------------


def replay_frame(
    store: EventStore,
    projection: Callable[[pd.DataFrame], pd.DataFrame],
    *,
    types: Iterable[type | str] | type | str | None = None,
    streams: Iterable[str] | str | None = None,
    until: int | datetime | None = None,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Run a vectorised projection (a function from the events frame to a read model frame)."""
    events = events_frame(store, types=types, streams=streams, until=until, progress=progress)
    return projection(events)


def sql_frame(
    store_or_events: Any,
    query: str,
    *,
    types: Iterable[type | str] | type | str | None = None,
    streams: Iterable[str] | str | None = None,
    until: int | datetime | None = None,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Run DuckDB SQL over the events frame, visible to the query as the table ``events``.

    Pass a store (its events frame is built first) or an events frame you already have.
    """
    import duckdb

    if isinstance(store_or_events, pd.DataFrame):
        events = store_or_events
    else:
        events = events_frame(store_or_events, types=types, streams=streams, until=until, progress=progress)
    connection = duckdb.connect()
    try:
        connection.register("events", events)
        try:
            return connection.execute(query).df()
        except duckdb.Error as exc:
            raise ProjectionError(f"SQL projection failed: {exc}") from exc
    finally:
        connection.close()
