"""Tags derived from an event's fields (``tags_from``) and given at ``emit``: one rule for every store."""

from __future__ import annotations

import dataclasses

import msgspec
import pytest

from eventcore_lab import Event, MemoryStore
from eventcore_lab.core.command import emit
from eventcore_lab.core.errors import InvalidArgument, InvalidFormat
from eventcore_lab.core.tags import tags_of


class Booked(Event):
    registration = "on_first_use"
    tags_from = ("room:{room}", "guest:{guest}-{night}")
    room: int
    guest: str
    night: str | None = None


class PlainStruct(msgspec.Struct, frozen=True):
    tags_from = ("plain:{key}",)
    key: str


@dataclasses.dataclass(frozen=True)
class PlainDataclass:
    tags_from = ("dc:{key}",)
    key: str


class Typo(Event):
    registration = "on_first_use"
    tags_from = ("room:{rom}",)
    room: int


class Formatted(Event):
    registration = "on_first_use"
    tags_from = ("room:{room:03d}",)
    room: int


def test_templates_fill_fields_and_skip_a_template_with_a_none_field() -> None:
    assert tags_of(Booked(room=7, guest="ann", night="mon"), (), "here") == ("room:7", "guest:ann-mon")
    assert tags_of(Booked(room=7, guest="ann"), ("vip", "room:7"), "here") == ("room:7", "vip")


def test_plain_structs_and_dataclasses_declare_tags_the_same_way() -> None:
    assert tags_of(PlainStruct(key="k"), (), "here") == ("plain:k",)
    assert tags_of(PlainDataclass(key="k"), (), "here") == ("dc:k",)


@pytest.mark.parametrize("event", [Typo(room=1), Formatted(room=1)])
def test_a_template_naming_no_field_is_refused_at_the_first_append(event: Event) -> None:
    store = MemoryStore()
    with pytest.raises(InvalidArgument, match="must name one of its fields"):
        store.append([emit("r-1", event)])
    assert store.head() == 0


def test_emit_takes_tags_as_a_list_not_a_string() -> None:
    assert emit("r-1", Booked(room=1, guest="g"), tags=["a", "b"]).tags == ("a", "b")
    with pytest.raises(InvalidArgument, match="single string"):
        emit("r-1", Booked(room=1, guest="g"), tags="ab")


def test_a_field_value_that_makes_a_bad_tag_is_refused_naming_the_stream() -> None:
    store = MemoryStore()
    with pytest.raises(InvalidFormat, match="'r-1'"):
        store.append([emit("r-1", Booked(room=1, guest="two words", night="mon"))])
    assert store.head() == 0
