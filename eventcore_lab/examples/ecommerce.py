"""E-commerce: orders, inventory, payments and shipments, and the order-fulfilment process that
coordinates them (payment -> inventory -> shipping -> delivery, with a payment timeout).

Streams: ``order-<id>``, ``stock-<sku>``, ``payment-<order id>``, ``shipment-<order id>``. Amounts are
integer cents. Every command refuses to do twice what it did once (pay, reserve, refund, dispatch, ...),
so that the log itself shows whether anything was applied twice.

The :class:`OrderFulfilment` process (stream ``order-fulfilment-<order id>``) reacts to ``OrderPlaced``,
``PaymentReceived`` and ``ShipmentDelivered`` and to the outcomes of the commands it issues; when payment
does not come in time it sends reminders on a retry policy and finally cancels the order. The
:class:`Carrier` process stands in for the outside world in simulations: it delivers a dispatched parcel
after a transit time (a deadline).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from eventcore_lab.core.command import Command, CommandContext, emit, require, stream
from eventcore_lab.core.events import EventToWrite, StoredEvent
from eventcore_lab.core.registry import Event
from eventcore_lab.processes import (
    CommandOutcome,
    Deadline,
    DeadlineReached,
    Decision,
    ExponentialBackoff,
    Issue,
    ProcessManager,
    ProcessTimeout,
)


def order_stream(order_id: str) -> str:
    return f"order-{order_id}"


def stock_stream(sku: str) -> str:
    return f"stock-{sku}"


def payment_stream(order_id: str) -> str:
    return f"payment-{order_id}"


def shipment_stream(order_id: str) -> str:
    return f"shipment-{order_id}"


# -- events ---------------------------------------------------------------------------------------------


class OrderPlaced(Event):
    registration = "on_first_use"
    event_type = "shop.OrderPlaced"
    order_id: str
    customer_id: str
    items: dict[str, int]
    total: int


class OrderCancelled(Event):
    registration = "on_first_use"
    event_type = "shop.OrderCancelled"
    order_id: str
    reason: str


class OrderCompleted(Event):
    registration = "on_first_use"
    event_type = "shop.OrderCompleted"
    order_id: str


class PaymentReminderSent(Event):
    registration = "on_first_use"
    event_type = "shop.PaymentReminderSent"
    order_id: str
    attempt: int


class StockAdded(Event):
    registration = "on_first_use"
    event_type = "shop.StockAdded"
    sku: str
    quantity: int


class StockReserved(Event):
    registration = "on_first_use"
    event_type = "shop.StockReserved"
    sku: str
    order_id: str
    quantity: int


class StockReleased(Event):
    registration = "on_first_use"
    event_type = "shop.StockReleased"
    sku: str
    order_id: str
    quantity: int


class PaymentReceived(Event):
    registration = "on_first_use"
    event_type = "shop.PaymentReceived"
    order_id: str
    amount: int


class PaymentRefunded(Event):
    registration = "on_first_use"
    event_type = "shop.PaymentRefunded"
    order_id: str
    amount: int


class ShipmentDispatched(Event):
    registration = "on_first_use"
    event_type = "shop.ShipmentDispatched"
    order_id: str
    tracking: str


class ShipmentDelivered(Event):
    registration = "on_first_use"
    event_type = "shop.ShipmentDelivered"
    order_id: str


# -- state shared by the commands ---------------------------------------------------------------------


@dataclass
class OrderView:
    placed: bool = False
    items: dict[str, int] = field(default_factory=dict)
    total: int = 0
    cancelled: bool = False
    completed: bool = False
    reminders: int = 0


@dataclass
class Shop:
    """What the commands need to know, folded from whichever streams they read."""

    orders: dict[str, OrderView] = field(default_factory=dict)
    on_hand: dict[str, int] = field(default_factory=dict)  # sku -> units not reserved
    reserved: dict[str, dict[str, int]] = field(default_factory=dict)  # sku -> order -> units
    paid: dict[str, int] = field(default_factory=dict)
    refunded: set[str] = field(default_factory=set)
    dispatched: set[str] = field(default_factory=set)
    delivered: set[str] = field(default_factory=set)

    def order(self, order_id: str) -> OrderView:
        return self.orders.setdefault(order_id, OrderView())


def apply_to_shop(shop: Shop, event: StoredEvent) -> Shop:
    match event.payload:
        case OrderPlaced(order_id=o, items=items, total=total):
            view = shop.order(o)
            view.placed, view.items, view.total = True, dict(items), total
        case OrderCancelled(order_id=o):
            shop.order(o).cancelled = True
        case OrderCompleted(order_id=o):
            shop.order(o).completed = True
        case PaymentReminderSent(order_id=o):
            shop.order(o).reminders += 1
        case StockAdded(sku=sku, quantity=q):
            shop.on_hand[sku] = shop.on_hand.get(sku, 0) + q
        case StockReserved(sku=sku, order_id=o, quantity=q):
            shop.on_hand[sku] = shop.on_hand.get(sku, 0) - q
            shop.reserved.setdefault(sku, {})[o] = q
        case StockReleased(sku=sku, order_id=o, quantity=q):
            shop.on_hand[sku] = shop.on_hand.get(sku, 0) + q
            shop.reserved.get(sku, {}).pop(o, None)
        case PaymentReceived(order_id=o, amount=amount):
            shop.paid[o] = amount
        case PaymentRefunded(order_id=o):
            shop.refunded.add(o)
        case ShipmentDispatched(order_id=o):
            shop.dispatched.add(o)
        case ShipmentDelivered(order_id=o):
            shop.delivered.add(o)
    return shop


class _ShopCommand(Command[Shop]):
    def initial_state(self) -> Shop:
        return Shop()

    def apply(self, state: Shop, event: StoredEvent) -> Shop:
        return apply_to_shop(state, event)


# -- commands -------------------------------------------------------------------------------------------


class PlaceOrder(_ShopCommand):
    order: str = stream()
    order_id: str
    customer_id: str
    items: dict[str, int]
    total: int

    def handle(self, state: Shop, ctx: CommandContext) -> Sequence[EventToWrite]:
        require(self.items, "an order needs at least one item")
        require(all(q > 0 for q in self.items.values()), "item quantities must be positive")
        require(self.total > 0, "an order total must be positive")
        require(not state.order(self.order_id).placed, f"order {self.order_id} was already placed")
        placed = OrderPlaced(
            order_id=self.order_id, customer_id=self.customer_id, items=self.items, total=self.total
        )
        return [emit(self.order, placed)]


class AddStock(_ShopCommand):
    stock: str = stream()
    sku: str
    quantity: int

    def handle(self, state: Shop, ctx: CommandContext) -> Sequence[EventToWrite]:
        require(self.quantity > 0, "stock to add must be positive")
        return [emit(self.stock, StockAdded(sku=self.sku, quantity=self.quantity))]


class PayOrder(_ShopCommand):
    """The customer pays (an external event for the fulfilment process)."""

    payment: str = stream()
    order: str = stream()
    order_id: str
    amount: int

    def handle(self, state: Shop, ctx: CommandContext) -> Sequence[EventToWrite]:
        view = state.order(self.order_id)
        require(view.placed, f"order {self.order_id} does not exist")
        require(self.order_id not in state.paid, f"order {self.order_id} is already paid")
        require(self.amount == view.total, f"payment of {self.amount} does not match the total {view.total}")
        return [emit(self.payment, PaymentReceived(order_id=self.order_id, amount=self.amount))]


class ReserveStock(_ShopCommand):
    """Reserve every item of an order at once: one atomic write over all its stock streams."""

    stocks: list[str] = stream()
    order_id: str
    items: dict[str, int]

    def handle(self, state: Shop, ctx: CommandContext) -> Sequence[EventToWrite]:
        writes = []
        for sku, quantity in sorted(self.items.items()):
            require(
                self.order_id not in state.reserved.get(sku, {}),
                f"{sku} is already reserved for {self.order_id}",
            )
            available = state.on_hand.get(sku, 0)
            require(
                available >= quantity, f"Insufficient stock of {sku}: {available} left, {quantity} wanted"
            )
            writes.append(
                emit(stock_stream(sku), StockReserved(sku=sku, order_id=self.order_id, quantity=quantity))
            )
        return writes


class ReleaseStock(_ShopCommand):
    stocks: list[str] = stream()
    order_id: str

    def handle(self, state: Shop, ctx: CommandContext) -> Sequence[EventToWrite]:
        held = {
            sku: orders[self.order_id] for sku, orders in state.reserved.items() if self.order_id in orders
        }
        require(held, f"no stock is reserved for {self.order_id}")
        return [
            emit(stock_stream(sku), StockReleased(sku=sku, order_id=self.order_id, quantity=q))
            for sku, q in sorted(held.items())
        ]


class RefundPayment(_ShopCommand):
    payment: str = stream()
    order_id: str

    def handle(self, state: Shop, ctx: CommandContext) -> Sequence[EventToWrite]:
        require(self.order_id in state.paid, f"order {self.order_id} was not paid")
        require(self.order_id not in state.refunded, f"order {self.order_id} was already refunded")
        return [emit(self.payment, PaymentRefunded(order_id=self.order_id, amount=state.paid[self.order_id]))]


class DispatchShipment(_ShopCommand):
    shipment: str = stream()
    order: str = stream()
    order_id: str

    def handle(self, state: Shop, ctx: CommandContext) -> Sequence[EventToWrite]:
        view = state.order(self.order_id)
        require(view.placed and not view.cancelled, f"order {self.order_id} is not open")
        require(self.order_id not in state.dispatched, f"order {self.order_id} was already dispatched")
        return [
            emit(self.shipment, ShipmentDispatched(order_id=self.order_id, tracking=f"TRK-{self.order_id}"))
        ]


class DeliverShipment(_ShopCommand):
    shipment: str = stream()
    order_id: str

    def handle(self, state: Shop, ctx: CommandContext) -> Sequence[EventToWrite]:
        require(self.order_id in state.dispatched, f"shipment of {self.order_id} was not dispatched")
        require(self.order_id not in state.delivered, f"shipment of {self.order_id} was already delivered")
        return [emit(self.shipment, ShipmentDelivered(order_id=self.order_id))]


class CompleteOrder(_ShopCommand):
    order: str = stream()
    order_id: str

    def handle(self, state: Shop, ctx: CommandContext) -> Sequence[EventToWrite]:
        view = state.order(self.order_id)
        require(view.placed and not view.cancelled, f"order {self.order_id} is not open")
        require(not view.completed, f"order {self.order_id} is already completed")
        return [emit(self.order, OrderCompleted(order_id=self.order_id))]


class CancelOrder(_ShopCommand):
    order: str = stream()
    order_id: str
    reason: str

    def handle(self, state: Shop, ctx: CommandContext) -> Sequence[EventToWrite]:
        view = state.order(self.order_id)
        require(view.placed, f"order {self.order_id} does not exist")
        require(not view.cancelled and not view.completed, f"order {self.order_id} is already closed")
        return [emit(self.order, OrderCancelled(order_id=self.order_id, reason=self.reason))]


class SendPaymentReminder(_ShopCommand):
    order: str = stream()
    order_id: str
    attempt: int

    def handle(self, state: Shop, ctx: CommandContext) -> Sequence[EventToWrite]:
        view = state.order(self.order_id)
        require(
            view.reminders < self.attempt, f"reminder {self.attempt} for {self.order_id} was already sent"
        )
        return [emit(self.order, PaymentReminderSent(order_id=self.order_id, attempt=self.attempt))]


# -- the order-fulfilment process -------------------------------------------------------------------------


class FulfilmentStep(enum.StrEnum):
    NEW = "new"
    PAYMENT_PENDING = "payment pending"
    PAYMENT_CONFIRMED = "payment confirmed"
    INVENTORY_RESERVED = "inventory reserved"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    COMPLETED = "completed"
    FAILED = "failed"


class FulfilmentStarted(Event):
    registration = "on_first_use"
    event_type = "fulfilment.Started"
    order_id: str
    items: dict[str, int]
    total: int
    timeout_at: datetime


class PaymentConfirmed(Event):
    registration = "on_first_use"
    event_type = "fulfilment.PaymentConfirmed"
    amount: int


class InventoryReserved(Event):
    registration = "on_first_use"
    event_type = "fulfilment.InventoryReserved"


class Shipped(Event):
    registration = "on_first_use"
    event_type = "fulfilment.Shipped"


class Delivered(Event):
    registration = "on_first_use"
    event_type = "fulfilment.Delivered"


class FulfilmentCompleted(Event):
    registration = "on_first_use"
    event_type = "fulfilment.Completed"


class FulfilmentFailed(Event):
    registration = "on_first_use"
    event_type = "fulfilment.Failed"
    reason: str


class RetryScheduled(Event):
    registration = "on_first_use"
    event_type = "fulfilment.RetryScheduled"
    retry_at: datetime
    attempt: int


@dataclass(frozen=True)
class Fulfilment:
    step: FulfilmentStep = FulfilmentStep.NEW
    order_id: str = ""
    items: dict[str, int] = field(default_factory=dict)
    total: int = 0
    timeout_at: datetime | None = None
    retry_count: int = 0
    reason: str = ""


_NEXT_STEP: dict[type, FulfilmentStep] = {
    PaymentConfirmed: FulfilmentStep.PAYMENT_CONFIRMED,
    InventoryReserved: FulfilmentStep.INVENTORY_RESERVED,
    Shipped: FulfilmentStep.SHIPPED,
    Delivered: FulfilmentStep.DELIVERED,
    FulfilmentCompleted: FulfilmentStep.COMPLETED,
}


class OrderFulfilment(ProcessManager[Fulfilment]):
    """Payment -> inventory -> shipping -> delivery; a payment that does not come is reminded, then the
    order is cancelled. A refused reservation refunds the payment and cancels the order."""

    name = "order-fulfilment"
    triggers = (OrderPlaced, PaymentReceived, ShipmentDelivered)
    commands = (
        ReserveStock,
        ReleaseStock,
        RefundPayment,
        DispatchShipment,
        CompleteOrder,
        CancelOrder,
        SendPaymentReminder,
    )

    def __init__(
        self,
        payment_window: timedelta = timedelta(hours=1),
        reminders: ProcessTimeout | None = None,
    ) -> None:
        self.payment_window = payment_window
        self.reminders = reminders or ProcessTimeout(
            ExponentialBackoff(timedelta(hours=1), timedelta(hours=24)), max_retries=2
        )

    def correlate(self, event: StoredEvent) -> str | None:
        order_id = getattr(event.payload, "order_id", None)
        return order_id if isinstance(order_id, str) else None

    def initial_state(self) -> Fulfilment:
        return Fulfilment()

    def evolve(self, state: Fulfilment, event: Any) -> Fulfilment:
        replace = dataclasses.replace
        if isinstance(event, FulfilmentStarted):
            return replace(
                state,
                step=FulfilmentStep.PAYMENT_PENDING,
                order_id=event.order_id,
                items=dict(event.items),
                total=event.total,
                timeout_at=event.timeout_at,
            )
        if isinstance(event, RetryScheduled):
            return replace(state, retry_count=event.attempt, timeout_at=event.retry_at)
        if isinstance(event, FulfilmentFailed):
            return replace(state, step=FulfilmentStep.FAILED, reason=event.reason)
        step = _NEXT_STEP.get(type(event))
        return replace(state, step=step) if step is not None else state

    def is_terminal(self, state: Fulfilment) -> bool:
        return state.step in (FulfilmentStep.COMPLETED, FulfilmentStep.FAILED)

    def status(self, state: Fulfilment) -> str:
        return f"failed: {state.reason}" if state.step is FulfilmentStep.FAILED else state.step.value

    def react(self, state: Fulfilment, trigger: Any, now: datetime) -> Decision:
        step, order_id = state.step, state.order_id
        if isinstance(trigger, OrderPlaced):
            if step is not FulfilmentStep.NEW:
                return Decision()
            due = now + self.payment_window
            started = FulfilmentStarted(
                order_id=trigger.order_id, items=trigger.items, total=trigger.total, timeout_at=due
            )
            return Decision(record=[started], schedule=[Deadline("payment", due)])
        if isinstance(trigger, PaymentReceived):
            if step is FulfilmentStep.PAYMENT_PENDING:
                reserve = ReserveStock([stock_stream(s) for s in sorted(state.items)], order_id, state.items)
                return Decision(
                    record=[PaymentConfirmed(amount=trigger.amount)],
                    issue=[Issue(reserve, "reserve")],
                    cancel=["payment"],
                )
            if step is FulfilmentStep.FAILED:  # paid after we gave up: give the money back
                return Decision(
                    issue=[Issue(RefundPayment(payment_stream(trigger.order_id), trigger.order_id), "refund")]
                )
            return Decision()
        if isinstance(trigger, ShipmentDelivered):
            if step is not FulfilmentStep.SHIPPED:
                return Decision()
            return Decision(
                record=[Delivered()],
                issue=[Issue(CompleteOrder(order_stream(order_id), order_id), "complete")],
            )
        if isinstance(trigger, DeadlineReached):
            return self._payment_timeout(state, now) if trigger.name == "payment" else Decision()
        if isinstance(trigger, CommandOutcome):
            return self._outcome(state, trigger)
        return Decision()

    def _payment_timeout(self, state: Fulfilment, now: datetime) -> Decision:
        if state.step is not FulfilmentStep.PAYMENT_PENDING:
            return Decision()
        order_id = state.order_id
        if self.reminders.should_retry(state.retry_count):
            at = self.reminders.next_attempt(now, state.retry_count)
            attempt = state.retry_count + 1
            return Decision(
                record=[RetryScheduled(retry_at=at, attempt=attempt)],
                issue=[Issue(SendPaymentReminder(order_stream(order_id), order_id, attempt), "remind")],
                schedule=[Deadline("payment", at)],
            )
        reason = f"payment timed out after {state.retry_count} reminders"
        cancel = CancelOrder(order_stream(order_id), order_id, reason)
        return Decision(record=[FulfilmentFailed(reason=reason)], issue=[Issue(cancel, "cancel")])

    def _outcome(self, state: Fulfilment, outcome: CommandOutcome) -> Decision:
        order_id = state.order_id
        if outcome.tag == "reserve" and state.step is FulfilmentStep.PAYMENT_CONFIRMED:
            if outcome.ok:
                ship = DispatchShipment(shipment_stream(order_id), order_stream(order_id), order_id)
                return Decision(record=[InventoryReserved()], issue=[Issue(ship, "ship")])
            return self._fail(state, outcome.reason, release=False)
        if outcome.tag == "ship" and state.step is FulfilmentStep.INVENTORY_RESERVED:
            if outcome.ok:
                return Decision(record=[Shipped()])
            return self._fail(state, outcome.reason, release=True)
        if outcome.tag == "complete" and state.step is FulfilmentStep.DELIVERED and outcome.ok:
            return Decision(record=[FulfilmentCompleted()])
        return Decision()

    def _fail(self, state: Fulfilment, reason: str, *, release: bool) -> Decision:
        order_id = state.order_id
        issue = [Issue(RefundPayment(payment_stream(order_id), order_id), "refund")]
        if release:
            issue.append(
                Issue(ReleaseStock([stock_stream(s) for s in sorted(state.items)], order_id), "release")
            )
        issue.append(Issue(CancelOrder(order_stream(order_id), order_id, reason), "cancel"))
        return Decision(record=[FulfilmentFailed(reason=reason)], issue=issue)


# -- a stand-in carrier -----------------------------------------------------------------------------------


class ParcelAccepted(Event):
    registration = "on_first_use"
    event_type = "carrier.ParcelAccepted"
    order_id: str
    arrives_at: datetime


class ParcelDelivered(Event):
    registration = "on_first_use"
    event_type = "carrier.ParcelDelivered"


@dataclass(frozen=True)
class Parcel:
    order_id: str = ""
    delivered: bool = False


class Carrier(ProcessManager[Parcel]):
    """Delivers each dispatched shipment ``transit`` after dispatch (a deadline on the carrier's stream)."""

    name = "carrier"
    triggers = (ShipmentDispatched,)
    commands = (DeliverShipment,)

    def __init__(self, transit: timedelta = timedelta(days=2)) -> None:
        self.transit = transit

    def correlate(self, event: StoredEvent) -> str | None:
        return event.payload.order_id if isinstance(event.payload, ShipmentDispatched) else None

    def initial_state(self) -> Parcel:
        return Parcel()

    def evolve(self, state: Parcel, event: Any) -> Parcel:
        if isinstance(event, ParcelAccepted):
            return Parcel(order_id=event.order_id)
        if isinstance(event, ParcelDelivered):
            return dataclasses.replace(state, delivered=True)
        return state

    def is_terminal(self, state: Parcel) -> bool:
        return state.delivered

    def status(self, state: Parcel) -> str:
        return "delivered" if state.delivered else "in transit"

    def react(self, state: Parcel, trigger: Any, now: datetime) -> Decision:
        if isinstance(trigger, ShipmentDispatched) and not state.order_id:
            arrives = now + self.transit
            return Decision(
                record=[ParcelAccepted(order_id=trigger.order_id, arrives_at=arrives)],
                schedule=[Deadline("arrival", arrives)],
            )
        if isinstance(trigger, DeadlineReached) and trigger.name == "arrival":
            return Decision(
                issue=[Issue(DeliverShipment(shipment_stream(state.order_id), state.order_id), "deliver")]
            )
        if isinstance(trigger, CommandOutcome) and trigger.tag == "deliver" and trigger.ok:
            return Decision(record=[ParcelDelivered()])
        return Decision()


COMMANDS = (
    PlaceOrder,
    AddStock,
    PayOrder,
    ReserveStock,
    ReleaseStock,
    RefundPayment,
    DispatchShipment,
    DeliverShipment,
    CompleteOrder,
    CancelOrder,
    SendPaymentReminder,
)
PROCESSES = (OrderFulfilment, Carrier)
