"""Which event fields hold personal data, and whose: read once per class from its annotations.

``Annotated[str, PersonalData(subject="customer_id")]`` marks a field as personal data of the subject
whose id is in the event's ``customer_id`` field. Only plain ``str`` (or ``str | None``) fields can be
marked: the ciphertext replaces the value in the same field, so the stored event still fits its class,
and a constraint such as a maximum length would refuse the ciphertext.
"""

from __future__ import annotations

import dataclasses
import threading
import types
import typing
from dataclasses import dataclass
from typing import Any, Union

import msgspec

from ._errors import PersonalDataError


@dataclass(frozen=True)
class PersonalData:
    """Marks a ``str`` field as personal data of the subject named by the ``subject`` field."""

    subject: str


@dataclass(frozen=True)
class PersonalFields:
    """The personal-data fields of one event class, as (field name, subject field name)."""

    fields: tuple[tuple[str, str], ...]

    def subject_of(self, event: object, field_name: str) -> str:
        subject_field = dict(self.fields)[field_name]
        return str(getattr(event, subject_field))


_cache: dict[type, PersonalFields | None] = {}
_lock = threading.Lock()


_UNSEEN = PersonalFields(())


def personal_fields(cls: type) -> PersonalFields | None:
    """The class's personal-data fields, or None when it has none (cached: this is on every append and
    on every event read, so a known class costs one dictionary lookup)."""
    found = _cache.get(cls, _UNSEEN)
    if found is not _UNSEEN:
        return found
    found = _inspect(cls)
    with _lock:
        _cache[cls] = found
    return found


def _field_names(cls: type) -> tuple[str, ...]:
    if isinstance(cls, type) and issubclass(cls, msgspec.Struct):
        return tuple(cls.__struct_fields__)
    if dataclasses.is_dataclass(cls):
        return tuple(f.name for f in dataclasses.fields(cls))
    return ()


def _inspect(cls: type) -> PersonalFields | None:
    names = _field_names(cls)
    if not names:
        return None
    try:
        hints = typing.get_type_hints(cls, include_extras=True)
    except Exception:  # unresolvable annotations cannot carry our marker in a usable way
        return None
    found = []
    for name in names:
        hint = hints.get(name)
        if typing.get_origin(hint) is not typing.Annotated:
            continue
        base, *extras = typing.get_args(hint)
        marks = [e for e in extras if isinstance(e, PersonalData)]
        if not marks:
            continue
        where = f"{cls.__qualname__}.{name}"
        if len(extras) > 1:
            raise PersonalDataError(
                f"{where} is personal data and also has {len(extras) - 1} other annotation(s); "
                "constraints would refuse the ciphertext stored in its place, so check them in the command"
            )
        if base is not str and not _is_optional_str(base):
            raise PersonalDataError(
                f"{where} is personal data but typed {base!r}; only str or str | None can be"
            )
        subject = marks[0].subject
        if subject not in names:
            raise PersonalDataError(
                f"{where} names subject field {subject!r}, which {cls.__qualname__} lacks"
            )
        if subject == name:
            raise PersonalDataError(f"{where} cannot be its own subject: the subject id is kept in clear")
        found.append((name, subject))
    return PersonalFields(tuple(found)) if found else None


def _is_optional_str(hint: Any) -> bool:
    origin = typing.get_origin(hint)
    return origin in (Union, types.UnionType) and set(typing.get_args(hint)) == {str, type(None)}
