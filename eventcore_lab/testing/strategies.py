"""Hypothesis strategies for the things event-sourced code handles: stream ids, metadata, events of
registered classes, and sequences of commands."""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
from hypothesis import strategies as st

from ..core.command import Command
from ..core.errors import InvalidFormat
from ..core.events import Metadata
from ..core.ids import MAX_STREAM_ID_LENGTH
from ..core.registry import EventRegistry, default_registry

# Printable text without surrounding whitespace: exactly what StreamId keeps unchanged.
_ID_CHARS = st.characters(exclude_categories=("Cc", "Cs", "Zs", "Zl", "Zp"))


def stream_ids(prefix: str = "", *, max_size: int = 40) -> st.SearchStrategy[str]:
    """Valid stream ids (``prefix`` + printable text, already in the form StreamId keeps)."""
    if max_size + len(prefix) > MAX_STREAM_ID_LENGTH:
        raise InvalidFormat(f"prefix + max_size must fit in {MAX_STREAM_ID_LENGTH} characters")
    return st.text(_ID_CHARS, min_size=0 if prefix.strip() else 1, max_size=max_size).map(
        lambda s: prefix + s
    )


def invalid_stream_ids() -> st.SearchStrategy[Any]:
    """Values StreamId must refuse: blank, too long, with control characters, or not strings."""
    blank = st.text(st.sampled_from(" \t\n\r"), max_size=5)
    too_long = st.integers(MAX_STREAM_ID_LENGTH + 1, MAX_STREAM_ID_LENGTH + 50).map(lambda n: "x" * n)
    control = (
        st.tuples(stream_ids(max_size=10), st.characters(categories=["Cc"]), stream_ids(max_size=10))
        .map(lambda t: t[0] + t[1] + t[2])
        .filter(lambda s: s.strip() == s)
    )
    not_text = st.one_of(
        st.none(), st.integers(), st.binary(max_size=5), st.lists(st.text(max_size=3), max_size=2)
    )
    return st.one_of(blank, too_long, control, not_text)


def metadata() -> st.SearchStrategy[Metadata]:
    """Metadata with arbitrary (JSON-safe) ids and custom fields."""
    short = st.text(_ID_CHARS, min_size=1, max_size=20)
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53), st.text(max_size=20))
    return st.builds(
        Metadata,
        correlation_id=short,
        causation_id=st.none() | short,
        user_id=st.none() | short,
        custom=st.dictionaries(st.text(max_size=10), scalars, max_size=4),
    )


def _field_strategy(annotation: Any) -> st.SearchStrategy[Any]:
    """``from_type``, but with timezone-aware datetimes (what stores keep) and JSON-safe integers."""
    if annotation is datetime:
        return st.datetimes(timezones=st.just(UTC))
    if annotation is int:
        return st.integers(-(2**63), 2**63 - 1)
    args = typing.get_args(annotation)
    if args and type(None) in args:
        return st.none() | st.one_of([_field_strategy(a) for a in args if a is not type(None)])
    return st.from_type(annotation)


def events(cls: type, **overrides: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Instances of the event class ``cls`` with every field drawn (defaulted ones too).

    ``msgspec`` Structs are built from their fields; other classes through ``hypothesis.from_type``.
    Pass a strategy per field name to narrow it, e.g. ``events(MoneyDeposited, amount=st.integers(1, 100))``.
    """
    if isinstance(cls, type) and issubclass(cls, msgspec.Struct):
        hints = typing.get_type_hints(cls)
        fields = msgspec.structs.fields(cls)
        unknown = set(overrides) - {f.name for f in fields}
        if unknown:
            raise InvalidFormat(f"{cls.__name__} has no field(s) {', '.join(sorted(unknown))}")
        kwargs = {
            f.name: overrides[f.name] if f.name in overrides else _field_strategy(hints.get(f.name, f.type))
            for f in fields
        }
        return st.builds(cls, **kwargs)
    return st.from_type(cls)


def any_event(
    registry: EventRegistry | None = None, *, classes: Sequence[type] | None = None
) -> st.SearchStrategy[Any]:
    """An event of any class registered in ``registry`` (or of ``classes``)."""
    reg = registry or default_registry
    chosen = list(classes) if classes is not None else [reg.event_class(name) for name in reg]
    if not chosen:
        raise InvalidFormat("no event classes to draw from")
    return st.one_of([events(c) for c in chosen])


def command_sequences(
    commands: Mapping[str, st.SearchStrategy[Command[Any]]] | Sequence[st.SearchStrategy[Command[Any]]],
    *,
    min_size: int = 0,
    max_size: int = 30,
) -> st.SearchStrategy[list[Command[Any]]]:
    """Lists of commands, each drawn from one of the given command strategies (shrinks toward short
    lists of the first strategy)."""
    pool = list(commands.values()) if isinstance(commands, Mapping) else list(commands)
    if not pool:
        raise InvalidFormat("command_sequences needs at least one command strategy")
    return st.lists(st.one_of(pool), min_size=min_size, max_size=max_size)
