"""Routing rules (the federation hub), the message envelope, and integration event contracts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import msgspec
import pytest

from eventcore_lab import Event, MemoryStore
from eventcore_lab.core.errors import InvalidFormat
from eventcore_lab.core.events import EventToWrite
from eventcore_lab.integration import (
    ContractCatalog,
    IncompatibleContract,
    IntegrationContract,
    IntegrationMessage,
    InvalidMessage,
    Router,
    RoutingRule,
    UnknownTransformation,
    compatibility_problems,
    decode_message,
    encode_message,
    message_from_event,
)


def message(
    event_type: str = "UserRegistered", service: str = "users", **payload: object
) -> IntegrationMessage:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return IntegrationMessage(
        message_id=str(uuid.uuid4()),
        event_type=event_type,
        service_id=service,
        stream_id="user-1",
        version=1,
        position=1,
        payload=dict(payload),
        occurred_at=now,
        published_at=now,
    )


# -- routing ---------------------------------------------------------------------------------------


def test_patterns_match_all_exact_or_prefix() -> None:
    router = Router(
        [
            RoutingRule("users", "User*", ("orders",)),
            RoutingRule("users", "AccountClosed", ("billing",)),
            RoutingRule("payments", "*", ("audit",)),
        ]
    )
    assert [t for t, _ in router.route(message("UserRegistered"))] == ["orders"]
    assert [t for t, _ in router.route(message("AccountClosed"))] == ["billing"]
    assert router.route(message("AccountOpened")) == []
    assert router.route(message("UserRegistered", service="payments"))[0][0] == "audit"
    assert router.route(message("Anything", service="shipping")) == []
    assert router.targets() == ("orders", "billing", "audit")


def test_a_target_reached_by_two_rules_gets_one_message_transformed_by_the_first_rule() -> None:
    router = Router(
        [
            RoutingRule("users", "User*", ("orders", "crm"), transformation="user_to_customer"),
            RoutingRule("*", "*", ("crm", "audit"), transformation="anonymize_pii"),
        ]
    )
    routed = dict(router.route(message("UserRegistered", email="a@b.c", name="Ann")))
    assert list(routed) == ["orders", "crm", "audit"]
    assert routed["crm"].event_type == "CustomerRegistered"
    assert routed["crm"].payload["email"] == "a@b.c"
    assert routed["audit"].event_type == "UserRegistered"
    assert routed["audit"].payload == {"email": "***@***.***", "name": "Ann"}
    assert len({m.message_id for m in routed.values()}) == 1


def test_user_to_customer_replaces_every_occurrence_and_anonymize_is_top_level_only() -> None:
    ((_, out),) = Router([RoutingRule("*", "*", ("x",), "user_to_customer")]).route(message("UserUserMoved"))
    assert out.event_type == "CustomerCustomerMoved"
    nested = message("X", profile={"email": "keep@me"})
    ((_, kept),) = Router([RoutingRule("*", "*", ("x",), "anonymize_pii")]).route(nested)
    assert kept.payload == {"profile": {"email": "keep@me"}}


def test_a_transformation_must_keep_the_message_id() -> None:
    def new_id(m: IntegrationMessage) -> IntegrationMessage:
        return msgspec.structs.replace(m, message_id="other")

    with pytest.raises(InvalidFormat, match="message id"):
        Router([RoutingRule("*", "*", ("x",), new_id)]).route(message())


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"transformation": "shout"}, UnknownTransformation, "unknown transformation 'shout'"),
        ({"event_pattern": "*User"}, InvalidFormat, "event pattern"),
        ({"targets": ()}, InvalidFormat, "no targets"),
        ({"targets": ("has space",)}, InvalidFormat, "target must be"),
        ({"source": ""}, InvalidFormat, "source"),
    ],
)
def test_bad_rules_are_refused_with_a_clear_error(kwargs: dict[str, object], error: type, match: str) -> None:
    args: dict[str, object] = {"source": "users", "event_pattern": "User*", "targets": ("orders",)}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        RoutingRule(**args)  # type: ignore[arg-type]


# -- envelope --------------------------------------------------------------------------------------


class ParcelShipped(Event):
    parcel: str
    weight_grams: int


def test_message_from_event_carries_id_position_and_payload_and_round_trips() -> None:
    store = MemoryStore()
    (stored,) = store.append([EventToWrite("parcel-9", ParcelShipped(parcel="p9", weight_grams=1200))])
    msg = message_from_event(stored, "shipping", schema_version=2)
    assert msg.message_id == str(stored.event_id)
    assert (msg.stream_id, msg.version, msg.position) == ("parcel-9", 1, stored.position)
    assert msg.payload == {"parcel": "p9", "weight_grams": 1200}
    assert msg.correlation_id == stored.metadata.correlation_id
    assert decode_message(encode_message(msg)) == msg
    assert msg.decode(ParcelShipped) == ParcelShipped(parcel="p9", weight_grams=1200)


def test_bad_broker_bytes_and_unfit_payloads_raise_invalid_message() -> None:
    with pytest.raises(InvalidMessage, match="not an integration event envelope"):
        decode_message(b'{"hello": 1}')
    with pytest.raises(InvalidMessage, match="does not fit ParcelShipped"):
        message("ParcelShipped", parcel="p").decode(ParcelShipped)


# -- contracts -------------------------------------------------------------------------------------


class OrderPlacedV1(msgspec.Struct):
    order_id: str
    total_cents: int
    note: str | None = None


class OrderPlacedV2(msgspec.Struct):
    order_id: str
    total_cents: int
    currency: str
    placed_at: datetime


class WantsTotalAsNumber(msgspec.Struct):
    order_id: str
    total_cents: float


class WantsCurrency(msgspec.Struct):
    order_id: str
    currency: str


class WantsOptionalCurrency(msgspec.Struct):
    order_id: str
    currency: str = "EUR"


class WantsTotalAsString(msgspec.Struct):
    total_cents: str


class WantsNoteAlways(msgspec.Struct):
    note: str


def contract(cls: type, version: int = 1, service: str = "shop") -> IntegrationContract:
    return IntegrationContract.of(cls, service=service, version=version, event_type="OrderPlaced")


def test_a_consumer_reading_fewer_fields_or_wider_types_is_compatible() -> None:
    assert compatibility_problems(contract(OrderPlacedV2), contract(WantsTotalAsNumber)) == []
    assert compatibility_problems(contract(OrderPlacedV2), contract(WantsCurrency)) == []
    assert compatibility_problems(contract(OrderPlacedV1), contract(WantsOptionalCurrency)) == []


def test_missing_optional_or_mistyped_fields_are_named() -> None:
    assert compatibility_problems(contract(OrderPlacedV1), contract(WantsCurrency)) == [
        "payload.currency: consumer requires it, producer does not send it"
    ]
    assert compatibility_problems(contract(OrderPlacedV1), contract(WantsNoteAlways)) == [
        "payload.note: consumer requires it, producer may leave it out",
        "payload.note: producer may send ['null'], consumer accepts ['string']",
    ]
    assert compatibility_problems(contract(OrderPlacedV1), contract(WantsTotalAsString)) == [
        "payload.total_cents: producer may send ['integer'], consumer accepts ['string']"
    ]
    other = IntegrationContract.of(WantsCurrency, service="x", event_type="OrderShipped")
    assert "event types differ" in compatibility_problems(contract(OrderPlacedV1), other)[0]


def test_catalog_lists_versions_checks_consumers_and_round_trips_as_json() -> None:
    catalog = ContractCatalog([contract(OrderPlacedV1, 1), contract(OrderPlacedV2, 2)])
    assert catalog.version_of("OrderPlaced") == 2 and catalog.version_of("Unlisted") == 1
    catalog.require(contract(WantsCurrency))  # checked against v2, the latest
    with pytest.raises(IncompatibleContract, match="total_cents") as bad:
        catalog.require(contract(WantsTotalAsString))
    assert bad.value.code == "IN005"
    assert catalog.check(IntegrationContract.of(WantsCurrency, service="x", event_type="Nope")) == [
        "the producer publishes no contract for 'Nope'"
    ]
    copy = ContractCatalog.from_json(catalog.to_json())
    assert list(copy) == list(catalog)
    with pytest.raises(InvalidFormat, match="already published with another schema"):
        catalog.add(contract(WantsCurrency, 1))
    with pytest.raises(InvalidFormat, match="not a contract catalog"):
        ContractCatalog.from_json(b"[1]")


class Line(msgspec.Struct):
    sku: str
    qty: int


class Order(msgspec.Struct):
    lines: list[Line]


class LineWithPrice(msgspec.Struct):
    sku: str
    price: int


class WantsPrices(msgspec.Struct):
    lines: list[LineWithPrice]


def test_nested_structures_and_lists_are_compared() -> None:
    assert compatibility_problems(contract(Order), contract(WantsPrices)) == [
        "payload.lines[].price: consumer requires it, producer does not send it"
    ]
