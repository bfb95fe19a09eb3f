"""Tags on events: the rule for a valid tag, and tags derived from an event's fields.

A tag (``student:42``, ``course:7``) names something an event is about, for queries
(:mod:`.query`) to select on. An event class may declare templates built from its fields::

    class StudentJoinedCourse(Event):
        tags_from = ("student:{student_id}", "course:{course_id}")
        student_id: str
        course_id: str

Each ``{field}`` is replaced by ``str()`` of that field's value; a template one of whose fields holds
None gives no tag (an optional reference). ``emit(..., tags=...)`` adds explicit tags; the store keeps
the union, derived first, in order, without duplicates (:func:`tags_of`).
"""

from __future__ import annotations

import dataclasses
import string
import threading
from collections.abc import Iterable

import msgspec

from .errors import EmptyValue, InvalidArgument, InvalidFormat, TooLong

#: Longest tag a store keeps.
MAX_TAG_LENGTH = 256

#: Most tags one event may carry.
MAX_TAGS_PER_EVENT = 32

#: The class attribute holding an event class's tag templates.
TAGS_ATTRIBUTE = "tags_from"

# one template: literal pieces and the field names between them, e.g. ("student:", "student_id", "")
_Template = tuple[tuple[str, ...], tuple[str, ...]]

_compiled: dict[type, tuple[_Template, ...]] = {}
_lock = threading.Lock()


def check_tag(tag: object, where: object) -> str:
    """A tag a store can keep: a non-empty printable string without whitespace, at most 256 characters.

    ``where`` names the event or query in messages (e.g. "for stream 'order-1'"); it is formatted with
    ``str()`` only when an error is raised.
    """
    if not isinstance(tag, str):
        raise InvalidFormat(f"a tag is a string, got {type(tag).__name__} {tag!r} {where}")
    if not tag:
        raise EmptyValue(f"a tag must not be empty {where}")
    if len(tag) > MAX_TAG_LENGTH:
        raise TooLong(
            f"the tag {tag[:40]!r}... {where} is {len(tag)} characters; the limit is {MAX_TAG_LENGTH}"
        )
    if not tag.isprintable() or any(c.isspace() for c in tag):
        raise InvalidFormat(f"the tag {tag!r} {where} contains whitespace or an unprintable character")
    try:
        tag.encode()
    except UnicodeEncodeError:
        raise InvalidFormat(f"the tag {tag!r} {where} contains a lone surrogate") from None
    return tag


def check_tags(tags: Iterable[str], where: object) -> tuple[str, ...]:
    """Valid, distinct tags (order kept), at most :data:`MAX_TAGS_PER_EVENT`."""
    if isinstance(tags, str):
        raise InvalidFormat(f"tags are a list of strings, not the single string {tags!r} {where}")
    kept = tuple(dict.fromkeys(check_tag(t, where) for t in tags))
    if len(kept) > MAX_TAGS_PER_EVENT:
        raise TooLong(f"an event carries {len(kept)} tags {where}; the limit is {MAX_TAGS_PER_EVENT}")
    return kept


def tags_of(event: object, explicit: tuple[str, ...], where: object) -> tuple[str, ...]:
    """The tags an event is stored with: those its class derives from its fields, then ``explicit``."""
    cls = type(event)
    templates = _compiled.get(cls)
    if templates is None:
        templates = _templates(cls)
    if not templates:
        return check_tags(explicit, where) if explicit else ()
    derived = []
    for literals, names in templates:
        values = [getattr(event, name) for name in names]
        if any(v is None for v in values):
            continue
        pieces = [literals[0]]
        for value, literal in zip(values, literals[1:], strict=True):
            pieces += (str(value), literal)
        derived.append("".join(pieces))
    return check_tags([*derived, *explicit], where)


def template_fields(cls: type) -> set[str]:
    """The fields ``cls``'s tag templates are built from."""
    return {name for _, names in _templates(cls) for name in names}


def _templates(cls: type) -> tuple[_Template, ...]:
    found = _compiled.get(cls)
    if found is None:
        found = compile_templates(cls)
        with _lock:
            _compiled[cls] = found
    return found


def compile_templates(cls: type) -> tuple[_Template, ...]:
    """``cls``'s tag templates, checked: each names only fields of the class, as ``{field}``."""
    declared = getattr(cls, TAGS_ATTRIBUTE, ())
    if not declared:
        return ()
    if isinstance(declared, str) or not isinstance(declared, tuple | list):
        raise InvalidArgument(
            f"{cls.__qualname__}.{TAGS_ATTRIBUTE} must be a tuple of templates such as "
            f"('student:{{student_id}}',), got {declared!r}"
        )
    fields = _field_names(cls)
    compiled = []
    for template in declared:
        if not isinstance(template, str) or not template:
            raise InvalidArgument(f"{cls.__qualname__}.{TAGS_ATTRIBUTE} holds {template!r}, not a template")
        literals, names = [], []
        try:
            parsed = list(string.Formatter().parse(template))
        except ValueError as exc:
            raise InvalidArgument(f"tag template {template!r} of {cls.__qualname__}: {exc}") from None
        pending = ""
        for literal, name, spec, conversion in parsed:
            pending += literal
            if name is None:
                continue
            if spec or conversion or name not in fields:
                raise InvalidArgument(
                    f"tag template {template!r} of {cls.__qualname__}: {{{name}}} must name one of its "
                    f"fields ({', '.join(sorted(fields)) or 'none'}), without format spec or conversion"
                )
            literals.append(pending)
            names.append(name)
            pending = ""
        literals.append(pending)
        compiled.append((tuple(literals), tuple(names)))
    return tuple(compiled)


def _field_names(cls: type) -> set[str]:
    if issubclass(cls, msgspec.Struct):
        return set(cls.__struct_fields__)
    if dataclasses.is_dataclass(cls):
        return {f.name for f in dataclasses.fields(cls)}
    return set(getattr(cls, "__annotations__", {}))
