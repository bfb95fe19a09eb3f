"""Upcasting in SQL: upcaster chains compiled into DuckDB column expressions for the columnar read path.

A chain compiles when every step has a meaning SQL can compute exactly: a field rename, a type rename, a
field default, or a conversion registered together with its SQL. The payload is modelled as a map from
field name to a JSON expression over the stored payload (SQL NULL: the field is absent), so each step does
to that map what its Python function does to the dict. Anything else (a Python-only function, a
retirement, strict schema, a class whose fields are not plain scalars) is not compiled, and its rows are
upcast in Python. Rows a compiled chain would turn into a payload the current class cannot decode are
found by :meth:`CompiledChain.invalid` and also left to Python, which raises the error the per-event path
raises.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass

import msgspec


@dataclass(frozen=True)
class RenameField:
    """``old`` is called ``new`` (absent stays absent; a value already under ``new`` is replaced)."""

    old: str
    new: str


@dataclass(frozen=True)
class RenameType:
    """The event reads as ``new_type``; the payload is unchanged."""

    new_type: str


@dataclass(frozen=True)
class DefaultField:
    """``field`` gets the default where it is absent (a stored null stays null)."""

    field: str
    default_json: str  # the default, as JSON text


@dataclass(frozen=True)
class ConvertField:
    """``field``, where present, becomes the value of the SQL expression."""

    field: str
    sql: str  # a DuckDB expression of ``{value}``, the stored value as JSON


ColumnarStep = RenameField | RenameType | DefaultField | ConvertField

#: The JSON types (``json_type``) msgspec decodes into each plain scalar annotation, and the DuckDB type
#: the columnar path reads it as (the same as ``projections.frames`` uses for current rows).
_SCALARS: dict[type, tuple[str, tuple[str, ...]]] = {
    int: ("HUGEINT", ("BIGINT", "UBIGINT", "HUGEINT")),
    float: ("DOUBLE", ("DOUBLE", "BIGINT", "UBIGINT", "HUGEINT")),
    str: ("VARCHAR", ("VARCHAR",)),
    bool: ("BOOLEAN", ("BOOLEAN",)),
}


@dataclass(frozen=True)
class _Field:
    name: str
    json_types: tuple[str, ...]
    optional: bool  # JSON null is allowed
    required: bool  # absent is refused (no default)


@dataclass(frozen=True)
class CompiledChain:
    """The upcast of every row stored as (``stored_type``, ``stored_version``), as SQL over ``payload``."""

    stored_type: str
    stored_version: int
    event_type: str
    schema_version: int
    #: fields the steps changed: name -> JSON expression, None when the field is absent
    touched: Mapping[str, str | None]
    #: the JSON type (``json_type``) of each changed field, over ``__t``, the types of the stored fields
    #: in :attr:`slots` (one parse per row); None when the field is absent
    kinds: Mapping[str, str | None]
    #: stored fields whose type ``kinds`` use: name -> index in ``__t`` (from 1)
    slots: Mapping[str, int]
    #: the current class's fields, for :meth:`validation`
    fields: tuple[_Field, ...]
    #: conditions under which a conversion's SQL gave no value for a value that was there
    failed_conversions: tuple[str, ...] = ()

    def value(self, name: str) -> str:
        """The current value of field ``name`` as a JSON expression (SQL NULL when absent)."""
        if name in self.touched:
            return self.touched[name] or "NULL::JSON"
        return _pointer(name)

    def matches(self) -> str:
        """The condition selecting this chain's stored rows."""
        return f"(event_type = {_literal(self.stored_type)} and schema_version = {int(self.stored_version)})"

    def payload_struct(self, structure: Mapping[str, str]) -> str:
        """A struct of the fields in ``structure`` (name -> DuckDB type), typed as ``json_transform`` of
        a current payload with that structure gives them; fields the class does not have are NULL."""
        own = {f.name for f in self.fields}
        parts = [
            f"{_identifier(name)} := "
            + (
                f"json_transform({self.value(name)}, {_literal(_json(sql_type))})"
                if name in own
                else f"NULL::{sql_type}"
            )
            for name, sql_type in structure.items()
        ]
        return f"struct_pack({', '.join(parts)})"

    def validation(self) -> tuple[str, str]:
        """(``__t``, a condition over ``__t`` and ``payload``): the types of the stored fields the check
        needs, parsed once per row, and what is true for a row whose upcast payload the current class
        would refuse (a required field absent, a null or a value of another JSON type) or whose
        conversion SQL gave no value for a value that was there."""
        slots = dict(self.slots)
        checks = ["false", *self.failed_conversions]
        for info in self.fields:
            if info.name in self.kinds:
                kind = self.kinds[info.name] or "NULL::VARCHAR"
            else:
                kind = f"__t[{slots.setdefault(info.name, len(slots) + 1)}]"
            allowed = [
                *info.json_types,
                *(["NULL"] if info.optional else []),
                *([] if info.required else ["-"]),
            ]
            checks.append(f"coalesce({kind}, '-') not in ({', '.join(map(_literal, allowed))})")
        pointers = ", ".join(_literal(_path(name)) for name in slots)
        types = f"json_type(payload, [{pointers}])" if slots else "[]::VARCHAR[]"
        return types, " or ".join(checks)


def compile_chain(
    steps: list[ColumnarStep], stored_type: str, stored_version: int, cls: type, final_type: str
) -> CompiledChain | None:
    """The chain of ``steps`` (from ``stored_version`` on) ending at ``cls``, or None when its class has
    fields the columnar path cannot check (it then runs in Python)."""
    fields = _fields(cls)
    if fields is None:
        return None
    touched: dict[str, str | None] = {}
    kinds: dict[str, str | None] = {}
    slots: dict[str, int] = {}
    failed: list[str] = []

    def value(name: str) -> str | None:
        return touched[name] if name in touched else _pointer(name)

    def kind(name: str) -> str | None:
        return kinds[name] if name in kinds else f"__t[{slots.setdefault(name, len(slots) + 1)}]"

    for step in steps:
        if isinstance(step, RenameField):
            if step.old != step.new:
                touched[step.new] = _coalesce(value(step.old), value(step.new))
                kinds[step.new] = _coalesce(kind(step.old), kind(step.new))
                touched[step.old] = kinds[step.old] = None
        elif isinstance(step, DefaultField):
            default = f"{_literal(step.default_json)}::JSON"
            touched[step.field] = _coalesce(value(step.field), default)
            kinds[step.field] = _coalesce(kind(step.field), f"json_type({default})")
        elif isinstance(step, ConvertField):
            current, current_kind = value(step.field), kind(step.field)
            if current is not None:
                converted = f"to_json({step.sql.replace('{value}', f'({current})')})"
                touched[step.field] = f"(case when {current} is null then null else {converted} end)"
                kinds[step.field] = (
                    f"(case when {current_kind} is null then null else json_type({converted}) end)"
                )
                failed.append(f"({current} is not null and {converted} is null)")
    return CompiledChain(
        stored_type,
        stored_version,
        final_type,
        stored_version + len(steps),
        touched,
        kinds,
        slots,
        fields,
        tuple(failed),
    )


def _coalesce(first: str | None, then: str | None) -> str | None:
    """The first of two SQL values that is not NULL; None stands for a value known to be absent."""
    if first is None or then is None:
        return then if first is None else first
    return f"coalesce({first}, {then})"


def _fields(cls: type) -> tuple[_Field, ...] | None:
    if not isinstance(cls, type) or not issubclass(cls, msgspec.Struct):
        return None
    config = cls.__struct_config__
    if config.forbid_unknown_fields or config.tag is not None or config.array_like:
        return None  # decoding them takes more than the fields' types: leave it to Python
    if hasattr(cls, "__post_init__"):
        return None  # it may refuse a payload whatever its types
    found = []
    for info in msgspec.structs.fields(cls):
        options = (
            set(typing.get_args(info.type))
            if typing.get_origin(info.type) in (typing.Union, types.UnionType)
            else {info.type}
        )
        optional = type(None) in options
        options.discard(type(None))
        scalar = _SCALARS.get(options.pop()) if len(options) == 1 else None
        if scalar is None or info.encode_name != info.name:
            return None
        found.append(_Field(info.name, scalar[1], optional, info.required))
    return tuple(found)


def _pointer(name: str) -> str:
    """A field of the stored payload."""
    return f"json_extract(payload, {_literal(_path(name))})"


def _path(name: str) -> str:
    """A top-level field as a JSON pointer (no JSONPath quoting rules to get wrong)."""
    return "/" + name.replace("~", "~0").replace("/", "~1")


def _json(sql_type: str) -> str:
    return msgspec.json.encode(sql_type).decode()


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
