"""Event classes map to stable names and round-trip exactly through JSON."""

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

import pytest

from eventcore_lab import Event, EventRegistry
from eventcore_lab.core.registry import default_registry
from eventcore_lab.errors import SerializationError, UnknownEventType


class Shipped(Event):
    order_id: UUID
    when: datetime
    total: Decimal
    lines: list[tuple[str, int]]
    note: str | None = None


class Renamed(Event):
    event_type = "orders.renamed.v2"
    name: str


def test_event_subclasses_register_themselves() -> None:
    assert default_registry.type_name(Renamed(name="x")) == "orders.renamed.v2"
    assert default_registry.event_class("Shipped") is Shipped


def test_exact_json_round_trip() -> None:
    event = Shipped(
        order_id=UUID(int=7),
        when=datetime(2026, 3, 1, 12, 0, 0, 1, tzinfo=UTC),
        total=Decimal("10.10"),
        lines=[("a", 1), ("b", 2)],
    )
    data = default_registry.encode(event)
    assert default_registry.decode("Shipped", data) == event
    assert default_registry.from_dict("Shipped", default_registry.to_dict(event)) == event


def test_dataclasses_can_be_registered() -> None:
    registry = EventRegistry()

    @dataclasses.dataclass(frozen=True)
    class Plain:
        x: int

    registry.register(Plain, "plain")
    assert registry.decode("plain", registry.encode(Plain(3))) == Plain(3)


def test_unknown_type_name_is_a_clear_error() -> None:
    with pytest.raises(UnknownEventType, match="unknown event type 'Nope'"):
        default_registry.decode("Nope", b"{}")


def test_payload_that_does_not_fit_names_the_field() -> None:
    with pytest.raises(SerializationError, match=r"Renamed|orders.renamed.v2") as error:
        default_registry.decode("orders.renamed.v2", b'{"name": 5}')
    assert "$.name" in str(error.value)


def test_unserializable_payload_is_a_clear_error() -> None:
    class Holder(Event):
        event_type = "test.holder"
        value: object

    with pytest.raises(SerializationError, match=r"cannot serialize .*Holder event"):
        default_registry.encode(Holder(value=object()))


def test_a_taken_name_is_refused_for_another_class() -> None:
    registry = EventRegistry()

    class A:
        pass

    class B:
        pass

    registry.register(A, "same")
    with pytest.raises(SerializationError, match="already used"):
        registry.register(B, "same")
