"""The coffee shop of the manual's event-modeling workshop (chapter 1.3), as running code.

Streams: ``customer-<id>`` (who is in the shop), ``order-<id>`` (what was ordered, and when it was handed
over), ``payment-<order id>`` (money taken for one order) and ``barista-<name>`` (what a barista made).

The workshop's timeline has one command per step, but its closing code folds ordering and paying into a
single ``PlaceAndPayOrder`` command over order, customer and register streams. This module follows the
timeline: one command per step, each declaring exactly the streams its rule needs, so that every step can be
specified, drawn and run on its own. ``Customer Left`` has no command in the workshop; ``LeaveShop`` adds it.

Every command declares the events it can write (``emits``, mapping each event class to the stream category
it lands in), which is what :func:`eventcore_lab.modeling.derive_model` reads to draw the board.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import ClassVar

from eventcore_lab import BusinessRuleViolation, Command, Event, EventToWrite, StoredEvent, emit, require
from eventcore_lab import stream as stream_field
from eventcore_lab.core.command import CommandContext
from eventcore_lab.modeling.model import automation
from eventcore_lab.projections.base import Projection, handles
from eventcore_lab.testing.scenario import ANY, Scenario

#: Prices in cents, so that sales add up exactly.
MENU: dict[str, int] = {"espresso": 250, "latte": 350, "cappuccino": 340, "flat white": 360, "tea": 200}


def customer_stream(customer_id: str) -> str:
    return f"customer-{customer_id}"


def order_stream(order_id: str) -> str:
    return f"order-{order_id}"


def payment_stream(order_id: str) -> str:
    return f"payment-{order_id}"


def barista_stream(name: str) -> str:
    return f"barista-{name}"


def _id(stream_id: str) -> str:
    """The part of a stream id after its category: ``order-7`` -> ``7``."""
    return stream_id.strip().partition("-")[2] or stream_id.strip()


# -- events ---------------------------------------------------------------------------------------------


class CustomerEntered(Event):
    registration = "on_first_use"
    customer_id: str


class OrderPlaced(Event):
    registration = "on_first_use"
    order_id: str
    customer_id: str
    items: list[str]
    total: int


class PaymentReceived(Event):
    registration = "on_first_use"
    order_id: str
    amount: int
    method: str


class CoffeePrepared(Event):
    registration = "on_first_use"
    order_id: str
    barista: str
    items: list[str]


class OrderCompleted(Event):
    registration = "on_first_use"
    order_id: str
    customer_id: str


class CustomerLeft(Event):
    registration = "on_first_use"
    customer_id: str


# -- the state the commands fold ------------------------------------------------------------------------


@dataclass
class Shop:
    """What the coffee-shop commands may know: only what is in the streams they read."""

    customers_inside: set[str] = field(default_factory=set)
    orders: dict[str, OrderPlaced] = field(default_factory=dict)
    paid: set[str] = field(default_factory=set)
    prepared: set[str] = field(default_factory=set)
    completed: set[str] = field(default_factory=set)


def apply_to_shop(shop: Shop, event: StoredEvent) -> Shop:
    match event.payload:
        case CustomerEntered(customer_id=cid):
            shop.customers_inside.add(cid)
        case CustomerLeft(customer_id=cid):
            shop.customers_inside.discard(cid)
        case OrderPlaced(order_id=oid) as placed:
            shop.orders[oid] = placed
        case PaymentReceived(order_id=oid):
            shop.paid.add(oid)
        case CoffeePrepared(order_id=oid):
            shop.prepared.add(oid)
        case OrderCompleted(order_id=oid):
            shop.completed.add(oid)
    return shop


class _ShopCommand(Command[Shop]):
    def initial_state(self) -> Shop:
        return Shop()

    def apply(self, state: Shop, event: StoredEvent) -> Shop:
        return apply_to_shop(state, event)


# -- commands, in the order of the workshop's timeline ----------------------------------------------------


class EnterShop(_ShopCommand):
    emits: ClassVar[dict[type, str]] = {CustomerEntered: "customer"}

    customer: str = stream_field()

    def handle(self, state: Shop, ctx: CommandContext) -> Sequence[EventToWrite]:
        cid = _id(self.customer)
        require(cid not in state.customers_inside, f"customer {cid} is already in the shop")
        return [emit(self.customer, CustomerEntered(customer_id=cid))]


class PlaceOrder(_ShopCommand):
    """Reads the customer's stream only to check they are inside: a read-only stream in the boundary."""

    emits: ClassVar[dict[type, str]] = {OrderPlaced: "order"}

    order: str = stream_field()
    customer: str = stream_field()
    items: list[str]

    def handle(self, state: Shop, ctx: CommandContext) -> Sequence[EventToWrite]:
        oid, cid = _id(self.order), _id(self.customer)
        require(cid in state.customers_inside, f"customer {cid} is not in the shop")
        require(oid not in state.orders, f"order {oid} was already placed")
        require(self.items, "an order needs at least one item")
        unknown = [item for item in self.items if item not in MENU]
        require(not unknown, f"not on the menu: {', '.join(unknown)}")
        total = sum(MENU[item] for item in self.items)
        return [
            emit(self.order, OrderPlaced(order_id=oid, customer_id=cid, items=list(self.items), total=total))
        ]


class ProcessPayment(_ShopCommand):
    emits: ClassVar[dict[type, str]] = {PaymentReceived: "payment"}

    payment: str = stream_field()
    order: str = stream_field()
    amount: int
    method: str = "card"

    def handle(self, state: Shop, ctx: CommandContext) -> Sequence[EventToWrite]:
        oid = _id(self.order)
        placed = state.orders.get(oid)
        require(placed is not None, f"order {oid} was not placed")
        require(oid not in state.paid, f"order {oid} is already paid")
        assert placed is not None
        if self.amount != placed.total:
            raise BusinessRuleViolation(f"order {oid} costs {placed.total} cents, {self.amount} were offered")
        return [emit(self.payment, PaymentReceived(order_id=oid, amount=self.amount, method=self.method))]


class PrepareCoffee(_ShopCommand):
    """A barista makes a paid order. Reading the payment stream is what makes "paid" part of the rule."""

    emits: ClassVar[dict[type, str]] = {CoffeePrepared: "barista"}

    barista: str = stream_field()
    order: str = stream_field()
    payment: str = stream_field()

    def handle(self, state: Shop, ctx: CommandContext) -> Sequence[EventToWrite]:
        oid = _id(self.order)
        placed = state.orders.get(oid)
        require(placed is not None, f"order {oid} was not placed")
        require(oid in state.paid, f"order {oid} is not paid yet")
        require(oid not in state.prepared, f"order {oid} was already prepared")
        assert placed is not None
        made = CoffeePrepared(order_id=oid, barista=_id(self.barista), items=list(placed.items))
        return [emit(self.barista, made)]


class CompleteOrder(_ShopCommand):
    """Hand the order over; it must have been prepared by the barista named."""

    emits: ClassVar[dict[type, str]] = {OrderCompleted: "order"}

    order: str = stream_field()
    barista: str = stream_field()

    def handle(self, state: Shop, ctx: CommandContext) -> Sequence[EventToWrite]:
        oid = _id(self.order)
        placed = state.orders.get(oid)
        require(placed is not None, f"order {oid} was not placed")
        require(oid in state.prepared, f"order {oid} has not been prepared by {_id(self.barista)}")
        if oid in state.completed:
            return []  # handed over already: completing twice changes nothing
        assert placed is not None
        return [emit(self.order, OrderCompleted(order_id=oid, customer_id=placed.customer_id))]


class LeaveShop(_ShopCommand):
    emits: ClassVar[dict[type, str]] = {CustomerLeft: "customer"}

    customer: str = stream_field()

    def handle(self, state: Shop, ctx: CommandContext) -> Sequence[EventToWrite]:
        cid = _id(self.customer)
        require(cid in state.customers_inside, f"customer {cid} is not in the shop")
        return [emit(self.customer, CustomerLeft(customer_id=cid))]


# -- read models (the workshop's step 4) ---------------------------------------------------------------


class QueueDisplay(Projection):
    """Paid orders waiting for a barista, oldest first."""

    def __init__(self) -> None:
        self.items: dict[str, list[str]] = {}
        self._placed: dict[str, list[str]] = {}

    @handles(OrderPlaced)
    def _placed_order(self, event: StoredEvent) -> None:
        self._placed[event.payload.order_id] = list(event.payload.items)

    @handles(PaymentReceived)
    def _paid(self, event: StoredEvent) -> None:
        oid = event.payload.order_id
        self.items[oid] = self._placed.get(oid, [])

    @handles(CoffeePrepared)
    def _prepared(self, event: StoredEvent) -> None:
        self.items.pop(event.payload.order_id, None)

    @property
    def waiting(self) -> list[str]:
        return list(self.items)


@dataclass
class Receipt:
    order_id: str
    customer_id: str
    items: list[str]
    total: int
    status: str = "placed"
    barista: str | None = None


class CustomerReceipts(Projection):
    """Each order's details and where it stands: placed, paid, prepared, completed."""

    def __init__(self) -> None:
        self.receipts: dict[str, Receipt] = {}

    @handles(OrderPlaced)
    def _placed(self, event: StoredEvent) -> None:
        e = event.payload
        self.receipts[e.order_id] = Receipt(e.order_id, e.customer_id, list(e.items), e.total)

    @handles(PaymentReceived)
    def _paid(self, event: StoredEvent) -> None:
        self._set(event.payload.order_id, "paid")

    @handles(CoffeePrepared)
    def _prepared(self, event: StoredEvent) -> None:
        receipt = self._set(event.payload.order_id, "prepared")
        if receipt is not None:
            receipt.barista = event.payload.barista

    @handles(OrderCompleted)
    def _completed(self, event: StoredEvent) -> None:
        self._set(event.payload.order_id, "completed")

    def _set(self, order_id: str, status: str) -> Receipt | None:
        receipt = self.receipts.get(order_id)
        if receipt is not None:
            receipt.status = status
        return receipt

    def with_status(self, status: str) -> list[Receipt]:
        return [r for r in self.receipts.values() if r.status == status]


class DailySales(Projection):
    """Takings per day, in cents (the day is when the payment was recorded)."""

    def __init__(self) -> None:
        self.by_day: dict[date, int] = {}
        self.payments = 0

    @handles(PaymentReceived)
    def _paid(self, event: StoredEvent) -> None:
        day = event.recorded_at.date()
        self.by_day[day] = self.by_day.get(day, 0) + event.payload.amount
        self.payments += 1

    @property
    def total(self) -> int:
        return sum(self.by_day.values())


# -- automation: a to-do list processed by a robot ----------------------------------------------------------


@automation(reads=CustomerReceipts, issues=(CompleteOrder,))
def hand_over_prepared_orders(receipts: CustomerReceipts) -> list[Command[Shop]]:
    """Every prepared order is handed over: one CompleteOrder per receipt in status "prepared"."""
    return [
        CompleteOrder(order_stream(r.order_id), barista_stream(r.barista))
        for r in receipts.with_status("prepared")
        if r.barista is not None
    ]


COMMANDS = (EnterShop, PlaceOrder, ProcessPayment, PrepareCoffee, CompleteOrder, LeaveShop)
EVENTS = (CustomerEntered, OrderPlaced, PaymentReceived, CoffeePrepared, OrderCompleted, CustomerLeft)
PROJECTIONS = (QueueDisplay, CustomerReceipts, DailySales)
AUTOMATIONS = (hand_over_prepared_orders,)


# -- given/when/then specifications, one or more per slice ---------------------------------------------

_ann, _order = customer_stream("ann"), order_stream("1")
_placed = OrderPlaced(order_id="1", customer_id="ann", items=["latte", "espresso"], total=600)
_paid = PaymentReceived(order_id="1", amount=600, method="card")
_made = CoffeePrepared(order_id="1", barista="bo", items=["latte", "espresso"])

SPECS = (
    Scenario("a customer walks in").when(EnterShop(_ann)).then(_ann, CustomerEntered(customer_id="ann")),
    Scenario("an order is priced from the menu")
    .given(_ann, CustomerEntered(customer_id="ann"))
    .when(PlaceOrder(_order, _ann, ["latte", "espresso"]))
    .then(_order, _placed),
    Scenario("only customers inside can order")
    .when(PlaceOrder(_order, _ann, ["latte"]))
    .then_fails(match="not in the shop"),
    Scenario("payment must match the total")
    .given(_order, _placed)
    .when(ProcessPayment(payment_stream("1"), _order, 500))
    .then_fails(BusinessRuleViolation, match="costs 600 cents"),
    Scenario("payment is taken")
    .given(_order, _placed)
    .when(ProcessPayment(payment_stream("1"), _order, 600))
    .then(payment_stream("1"), _paid),
    Scenario("a paid order is prepared")
    .given(_order, _placed)
    .given(payment_stream("1"), _paid)
    .when(PrepareCoffee(barista_stream("bo"), _order, payment_stream("1")))
    .then(barista_stream("bo"), _made),
    Scenario("an unpaid order is not prepared")
    .given(_order, _placed)
    .when(PrepareCoffee(barista_stream("bo"), _order, payment_stream("1")))
    .then_fails(match="not paid"),
    Scenario("a prepared order is handed over")
    .given(_order, _placed)
    .given(barista_stream("bo"), _made)
    .when(CompleteOrder(_order, barista_stream("bo")))
    .then(_order, OrderCompleted(order_id="1", customer_id=ANY)),
    Scenario("handing over twice changes nothing")
    .given(_order, _placed, OrderCompleted(order_id="1", customer_id="ann"))
    .given(barista_stream("bo"), _made)
    .when(CompleteOrder(_order, barista_stream("bo")))
    .then_nothing(),
    Scenario("the customer leaves")
    .given(_ann, CustomerEntered(customer_id="ann"))
    .when(LeaveShop(_ann))
    .then(_ann, CustomerLeft(customer_id="ann")),
)
