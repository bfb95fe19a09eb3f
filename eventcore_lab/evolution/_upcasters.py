"""Upcasters: registered steps that bring a stored payload from schema version n to n + 1.

A step works on the payload as JSON builtins (a dict), so it never needs the old class: the code that wrote
the history may be long gone. Steps compose into chains per type; a step may give the event another type
name (a rename or the first version of a split-off type), or retire it (it then reads as a
:class:`~eventcore_lab.core.registry.RetiredEvent` tombstone, which command folds skip).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from ..core.events import StoredEvent
from ..core.registry import (
    EventRegistry,
    RetiredEvent,
    UnknownEvent,
    default_registry,
    schema_version_of,
)
from ._columnar import (
    ColumnarStep,
    CompiledChain,
    ConvertField,
    DefaultField,
    RenameField,
    RenameType,
    compile_chain,
)
from ._errors import StrictSchemaViolation, UpcasterChainGap, UpcastFailed

#: A step: the payload at version n -> the payload at n + 1, or (new type name, payload at n + 1).
Step = Callable[[dict[str, Any]], "dict[str, Any] | tuple[str, dict[str, Any]]"]

_RETIRE = object()
_encode = msgspec.json.Encoder().encode
_decode_dict = msgspec.json.Decoder(dict[str, Any]).decode


@dataclass(frozen=True)
class _Registered:
    step: Step | None  # None: the type is retired at this version
    description: str
    to_type: str | None = None  # the type name it gives, when known without running it
    columnar: ColumnarStep | None = None  # the same step as SQL, when it has an exact SQL meaning


class Upcasters:
    """The upcaster chains of one registry, and the strict/weak schema choice.

    Weak schema (the default) ignores stored fields the current class does not declare, so older code can
    read newer history; ``strict=True`` refuses such payloads with StrictSchemaViolation. Nothing happens
    on reads until :meth:`install` puts the chains on the registry.
    """

    def __init__(self, registry: EventRegistry | None = None, *, strict: bool = False) -> None:
        self.registry = registry or default_registry
        self.strict = strict
        self._steps: dict[tuple[str, int], _Registered] = {}
        self._lock = threading.Lock()

    # -- registration ------------------------------------------------------------------------------

    def add(self, event_type: str, from_version: int, step: Step, *, description: str = "") -> None:
        """Register ``step`` from (``event_type``, ``from_version``) to version ``from_version + 1``.

        Chains must stay contiguous: a step next to no existing step of the type (a gap) or a second
        step from the same version raises UpcasterChainGap naming the versions.
        """
        if not callable(step):
            raise UpcasterChainGap(f"the upcaster for {event_type!r} v{from_version} is not callable")
        self._add(event_type, from_version, _Registered(step, description or _name(step)))

    def upcaster(self, event_type: str, from_version: int) -> Callable[[Step], Step]:
        """Decorator form of :meth:`add`."""

        def register(step: Step) -> Step:
            self.add(event_type, from_version, step)
            return step

        return register

    def rename_field(self, event_type: str, from_version: int, old: str, new: str) -> None:
        """Field ``old`` is called ``new`` from ``from_version + 1`` on (upcast in SQL on DuckDB)."""
        step = _Registered(rename_field(old, new), f"rename {old} -> {new}", columnar=RenameField(old, new))
        self._add(event_type, from_version, step)

    def add_field(self, event_type: str, from_version: int, field: str, default: Any) -> None:
        """Payloads without ``field`` get ``default`` (a JSON value; upcast in SQL on DuckDB). Use it when
        old events need another value than the class default, or the new field has no default."""
        try:
            default_json = _encode(default).decode()
        except (TypeError, ValueError, OverflowError) as exc:
            raise UpcasterChainGap(f"the default of {event_type!r}.{field} is not JSON: {exc}") from exc
        step = _Registered(
            add_field(field, default), f"add {field}", columnar=DefaultField(field, default_json)
        )
        self._add(event_type, from_version, step)

    def convert_field(
        self,
        event_type: str,
        from_version: int,
        field: str,
        convert: Callable[[Any], Any],
        *,
        sql: str | None = None,
    ) -> None:
        """The value of ``field`` becomes ``convert(value)``.

        ``sql`` optionally gives the same conversion as a DuckDB expression, in which ``{value}`` is the
        stored value as JSON (e.g. ``"{value}::BIGINT * 100"`` for ``lambda v: v * 100``,
        ``"upper({value} ->> '$')"`` for ``str.upper``); the DuckDB columnar path then converts in SQL.
        It must compute what ``convert`` computes; test both on the same values (tests/test_evolution_sql.py).
        """
        columnar = None if sql is None else ConvertField(field, sql)
        step = _Registered(convert_field(field, convert), f"convert {field}", columnar=columnar)
        self._add(event_type, from_version, step)

    def split_field(
        self, event_type: str, from_version: int, field: str, split: Callable[[Any], Mapping[str, Any]]
    ) -> None:
        self._add(event_type, from_version, _Registered(split_field(field, split), f"split {field}"))

    def merge_fields(
        self,
        event_type: str,
        from_version: int,
        fields: Iterable[str],
        into: str,
        merge: Callable[..., Any],
    ) -> None:
        names = list(fields)
        step = merge_fields(names, into, merge)
        self._add(event_type, from_version, _Registered(step, f"merge {', '.join(names)} -> {into}"))

    def rename_type(self, old_type: str, from_version: int, new_type: str) -> None:
        """Events stored as ``old_type`` at ``from_version`` read as ``new_type`` at ``from_version + 1``."""
        step = _Registered(retype(new_type), f"rename type -> {new_type}", new_type, RenameType(new_type))
        self._add(old_type, from_version, step)

    def retire(self, event_type: str, from_version: int) -> None:
        """Events of ``event_type`` at ``from_version`` (after any earlier steps) read as tombstones."""
        self._add(event_type, from_version, _Registered(None, "retired"))

    def _add(self, event_type: str, from_version: int, registered: _Registered) -> None:
        if not isinstance(event_type, str) or not event_type:
            raise UpcasterChainGap(f"an upcaster needs a type name, got {event_type!r}")
        if type(from_version) is not int or from_version < 1:
            raise UpcasterChainGap(
                f"the upcaster for {event_type!r} starts at version {from_version!r}; versions are ints >= 1"
            )
        with self._lock:
            versions = sorted(v for t, v in self._steps if t == event_type)
            if from_version in versions:
                raise UpcasterChainGap(
                    f"{event_type!r} already has an upcaster from v{from_version} to v{from_version + 1}"
                )
            if versions and from_version not in (versions[0] - 1, versions[-1] + 1):
                low, high = versions[0], versions[-1] + 1
                missing = (
                    f"from v{high} to v{from_version}"
                    if from_version > high
                    else f"from v{from_version + 1} to v{low}"
                )
                raise UpcasterChainGap(
                    f"the upcaster for {event_type!r} from v{from_version} to v{from_version + 1} leaves a "
                    f"gap: its chain covers v{low} to v{high}, so nothing would upcast {missing}"
                )
            retired_at = [v for v in versions if self._steps[(event_type, v)].step is None]
            if retired_at and from_version > retired_at[0]:
                raise UpcasterChainGap(
                    f"{event_type!r} is retired at v{retired_at[0]}; no upcaster can follow it "
                    f"(v{from_version} -> v{from_version + 1})"
                )
            if registered.step is None and versions and from_version < versions[-1]:
                raise UpcasterChainGap(
                    f"{event_type!r} cannot be retired at v{from_version}: it has upcasters up to "
                    f"v{versions[-1] + 1}"
                )
            self._steps[(event_type, from_version)] = registered

    # -- installing --------------------------------------------------------------------------------

    def install(self) -> Upcasters:
        """Make every read through the registry upcast (returns self). Raises UpcasterChainGap when a
        chain of a registered class stops short of that class's current version."""
        for problem in self.chain_problems():
            raise UpcasterChainGap(problem)
        self.registry.evolution = self
        return self

    def uninstall(self) -> None:
        if self.registry.evolution is self:
            self.registry.evolution = None

    def chain_problems(self) -> list[str]:
        """Why some chain cannot reach its class's current version (empty when all can). A chain is
        followed through type renames: its end is the type and version it finally gives."""
        starts: dict[str, int] = {}
        for event_type, version in self._steps:
            starts[event_type] = min(starts.get(event_type, version), version)
        problems: dict[str, str] = {}
        for event_type, version in starts.items():
            while (registered := self._steps.get((event_type, version))) is not None:
                if registered.step is None:
                    break
                event_type = registered.to_type or event_type  # versions grow, so this ends
                version += 1
            if registered is not None or not self.registry.knows(event_type):
                continue  # retired, or renamed away / not defined here: checked per stored event
            current = _class_version(self.registry.event_class(event_type))
            if version < current:
                problems[event_type] = (
                    f"the upcasters of {event_type!r} stop at v{version} but its class is at v{current}: "
                    f"register one from v{version} to v{version + 1}"
                )
        return list(problems.values())

    def steps(self) -> list[tuple[str, int, str]]:
        """Every registered step as (type, from version, description), sorted."""
        return sorted((t, v, r.description) for (t, v), r in self._steps.items())

    def chain_length(self, event_type: str, schema_version: int) -> int:
        """How many steps a payload stored as (type, version) goes through (following type renames
        made with :meth:`rename_type`; a retirement counts as a step)."""
        steps = 0
        while (registered := self._steps.get((event_type, schema_version))) is not None:
            steps += 1
            if registered.step is None:
                break
            event_type = registered.to_type or event_type
            schema_version += 1
        return steps

    def compile_columnar(self, event_type: str, schema_version: int) -> CompiledChain | None:
        """The chain of payloads stored as (type, version) as SQL column expressions, or None when some
        step has no SQL form, the chain retires the type, does not reach a registered class's current
        version, or the schema is strict: those rows are upcast in Python."""
        if self.strict:
            return None
        steps: list[ColumnarStep] = []
        final_type, version = event_type, schema_version
        while (registered := self._steps.get((final_type, version))) is not None:
            if registered.columnar is None:
                return None
            steps.append(registered.columnar)
            final_type = registered.to_type or final_type
            version += 1
        if not steps or not self.registry.knows(final_type):
            return None
        cls = self.registry.event_class(final_type)
        if version < _class_version(cls):
            return None
        return compile_chain(steps, event_type, schema_version, cls, final_type)

    # -- upcasting ---------------------------------------------------------------------------------

    def upcast_payload(self, event_type: str, schema_version: int, data: bytes | str) -> tuple[str, Any]:
        """The current (type, payload) of a stored payload, upcast whether or not it needs it."""
        try:
            payload = _decode_dict(data)
        except msgspec.DecodeError as exc:
            raise UpcastFailed(
                f"the stored {event_type!r} v{schema_version} payload is not a JSON object"
            ) from exc
        return self._finish(event_type, schema_version, payload)

    def needs_upcast(self, event_type: str, schema_version: int) -> bool:
        """Whether a payload stored as (type, version) goes through at least one step."""
        return (event_type, schema_version) in self._steps

    def upcast(
        self, event_type: str, schema_version: int, data: dict[str, Any]
    ) -> tuple[str, int, dict[str, Any], bool]:
        """Run the chain: (type, version, payload, retired) at the end of it."""
        steps = self._steps
        data = dict(data)  # the steps change it in place
        while True:
            registered = steps.get((event_type, schema_version))
            if registered is None:
                return event_type, schema_version, data, False
            if registered.step is None:
                return event_type, schema_version, data, True
            try:
                out = registered.step(data)
            except Exception as exc:
                raise UpcastFailed(
                    f"the upcaster of {event_type!r} from v{schema_version} ({registered.description}) "
                    f"failed: {exc!r}"
                ) from exc
            if isinstance(out, tuple):
                event_type, data = out
            else:
                data = out
            if not isinstance(data, dict):
                raise UpcastFailed(
                    f"the upcaster of {event_type!r} from v{schema_version} returned {type(data).__name__}, "
                    "not a dict"
                )
            schema_version += 1

    # -- the registry hook (PayloadEvolution) ----------------------------------------------------

    def is_current(self, type_name: str, schema_version: int) -> bool:
        if (type_name, schema_version) in self._steps or self.strict:
            return False
        registry = self.registry
        # current, or newer than this code (weak schema: extra fields are ignored)
        if not registry.knows(type_name):
            return True
        return _class_version(registry.event_class(type_name)) <= schema_version

    def read(self, type_name: str, schema_version: int, data: bytes | str) -> tuple[str, Any] | None:
        # is_current inlined: this runs once per event read
        if (type_name, schema_version) not in self._steps and not self.strict:
            registry = self.registry
            if not registry.knows(type_name):
                return None
            if _class_version(registry.event_class(type_name)) <= schema_version:
                return None
        return self.upcast_payload(type_name, schema_version, data)

    def current(self, event: StoredEvent) -> StoredEvent:
        payload = event.payload
        registry = self.registry
        if type(payload) is RetiredEvent:
            return event
        if type(payload) is UnknownEvent:
            event_type, version, data = payload.event_type, payload.schema_version, payload.data
            if not self.needs_upcast(event_type, version) and not registry.knows(event_type):
                return event
        else:
            cls = type(payload)
            if (
                not self.strict
                and registry.knows(event.event_type)
                and registry.event_class(event.event_type) is cls
                and (event.event_type, schema_version_of(payload)) not in self._steps
            ):
                return event  # written by the current class
            event_type, version = event.event_type, schema_version_of(payload)
            if (event_type, version) not in self._steps and not registry.knows(event_type):
                return event
            data = registry.to_dict(payload)
        new_type, new_payload = self._finish(event_type, version, data)
        return msgspec.structs.replace(event, event_type=new_type, payload=new_payload)

    def _finish(self, type_name: str, schema_version: int, data: dict[str, Any]) -> tuple[str, Any]:
        registry = self.registry
        event_type, version, data, retired = self.upcast(type_name, schema_version, data)
        raw = _encode(data)
        if retired:
            return event_type, RetiredEvent(event_type, raw, version)
        if not registry.knows(event_type):
            return event_type, UnknownEvent(event_type, raw, version)
        cls = registry.event_class(event_type)
        current = _class_version(cls)
        if version < current:
            via = f" (stored as {type_name!r} v{schema_version})" if version != schema_version else ""
            raise UpcastFailed(
                f"no upcaster brings {event_type!r} from v{version} to v{current}{via}; "
                f"register one from v{version} to v{version + 1}"
            )
        if self.strict:
            extra = sorted(set(data) - set(_field_names(cls)))
            if extra:
                raise StrictSchemaViolation(
                    f"strict schema: the stored {event_type!r} v{version} payload has fields its class "
                    f"does not declare: {', '.join(extra)}"
                )
        return event_type, registry.decode(event_type, raw)


# -- step builders -----------------------------------------------------------------------------------


def rename_field(old: str, new: str) -> Step:
    """A step that moves ``old`` to ``new`` (absent stays absent)."""

    def step(data: dict[str, Any]) -> dict[str, Any]:
        if old in data:
            data[new] = data.pop(old)
        return data

    return step


def add_field(field: str, default: Any) -> Step:
    """A step that gives ``field`` the value ``default`` (as JSON has it) where it is absent."""
    encoded = _encode(default)

    def step(data: dict[str, Any]) -> dict[str, Any]:
        if field not in data:
            data[field] = msgspec.json.decode(encoded)  # a fresh copy each time, as stored JSON gives
        return data

    return step


def convert_field(field: str, convert: Callable[[Any], Any]) -> Step:
    """A step that replaces the value of ``field`` by ``convert(value)`` (absent stays absent)."""

    def step(data: dict[str, Any]) -> dict[str, Any]:
        if field in data:
            data[field] = convert(data[field])
        return data

    return step


def split_field(field: str, split: Callable[[Any], Mapping[str, Any]]) -> Step:
    """A step that replaces ``field`` by the fields ``split(value)`` returns."""

    def step(data: dict[str, Any]) -> dict[str, Any]:
        if field in data:
            data.update(split(data.pop(field)))
        return data

    return step


def merge_fields(fields: list[str], into: str, merge: Callable[..., Any]) -> Step:
    """A step that replaces ``fields`` by one field ``into`` = ``merge(*values)``."""

    def step(data: dict[str, Any]) -> dict[str, Any]:
        values = [data.pop(name, None) for name in fields]
        data[into] = merge(*values)
        return data

    return step


def retype(new_type: str) -> Step:
    """A step that gives the event the type name ``new_type``."""

    def step(data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return new_type, data

    return step


def _class_version(cls: type) -> int:
    version = getattr(cls, "schema_version", 1)
    if type(version) is not int or version < 1:
        raise UpcasterChainGap(f"{cls.__qualname__}.schema_version must be an int >= 1, got {version!r}")
    return version


def _field_names(cls: type) -> tuple[str, ...]:
    fields = getattr(cls, "__struct_encode_fields__", None)
    if fields is not None:
        return tuple(fields)
    return tuple(getattr(cls, "__dataclass_fields__", {}) or getattr(cls, "__annotations__", {}))


def _name(step: Callable[..., Any]) -> str:
    return getattr(step, "__qualname__", None) or repr(step)
