"""Consistency boundaries by query: which events a decision depends on, named by type and tag.

A stream is one way to name the facts a rule depends on; a query is the other (the dcb.events model).
A :class:`Query` is a union of :class:`QueryItem` s; an item matches an event whose type is one of the
item's types (any type when it names none) and which carries *every* tag of the item. An
:class:`AppendCondition` turns a query into an optimistic check: "fail this append if an event matching
the query was committed after position ``after``".

>>> q = Query.of(QueryItem(types=("StudentJoinedCourse",), tags=("course:7",)))
>>> q.matches("StudentJoinedCourse", ("student:42", "course:7"))
True
>>> q.matches("StudentJoinedCourse", ("course:8",))
False
>>> Query.all().matches("Anything", ())
True
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

import msgspec

from .errors import InvalidArgument


def _strings(value: Iterable[str], what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        raise InvalidArgument(f"{what} must be a list of strings, not the single string {value!r}")
    items = tuple(value)
    for item in items:
        if not isinstance(item, str) or not item:
            raise InvalidArgument(f"{what} must be non-empty strings, got {item!r}")
    return tuple(dict.fromkeys(items))


class QueryItem(msgspec.Struct, frozen=True):
    """Events of any of ``types`` (any type if empty) carrying all of ``tags``."""

    types: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        types, tags = _strings(self.types, "query item types"), _strings(self.tags, "query item tags")
        if not types and not tags:
            raise InvalidArgument(
                "a query item needs at least one type or tag; use Query.all() to match every event"
            )
        msgspec.structs.force_setattr(self, "types", types)
        msgspec.structs.force_setattr(self, "tags", tags)

    def matches(self, event_type: str, tags: Collection[str]) -> bool:
        return (not self.types or event_type in self.types) and all(t in tags for t in self.tags)


class Query(msgspec.Struct, frozen=True):
    """Any of ``items``; no items means every event (build it with :meth:`all`)."""

    items: tuple[QueryItem, ...] = ()

    @classmethod
    def of(cls, *items: QueryItem) -> Query:
        """A query matching any of ``items`` (at least one)."""
        if not items:
            raise InvalidArgument("Query.of() needs at least one QueryItem; use Query.all() for every event")
        for item in items:
            if not isinstance(item, QueryItem):
                raise InvalidArgument(f"Query.of() takes QueryItem objects, got {item!r}")
        return cls(tuple(items))

    @classmethod
    def all(cls) -> Query:
        """The query every event matches."""
        return cls(())

    @property
    def matches_all(self) -> bool:
        return not self.items

    def matches(self, event_type: str, tags: Collection[str]) -> bool:
        return not self.items or any(item.matches(event_type, tags) for item in self.items)


class AppendCondition(msgspec.Struct, frozen=True):
    """Fail the append if an event matching ``fail_if_events_match`` has a position above ``after``.

    ``after`` is the position the decision was read at (the head of the query read); None means the
    append fails if any matching event exists at all (e.g. "this username was never claimed").
    """

    fail_if_events_match: Query
    after: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.fail_if_events_match, Query):
            raise InvalidArgument(f"an append condition needs a Query, got {self.fail_if_events_match!r}")
        if self.after is not None and (
            isinstance(self.after, bool) or not isinstance(self.after, int) or self.after < 0
        ):
            raise InvalidArgument(f"an append condition's position must be an int >= 0, got {self.after!r}")
