"""Resolvers: a command names further streams or queries from folded state, and ``handle`` decides once."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pytest

from eventcore_lab import (
    Command,
    Event,
    EventToWrite,
    Executor,
    MemoryStore,
    RetryConfig,
    ValidationFailed,
    emit,
    require,
    stream,
)
from eventcore_lab.core.command import CommandContext
from eventcore_lab.core.executor import Phase
from eventcore_lab.errors import MaxIterationsExceeded

NO_WAIT = RetryConfig(max_attempts=5, initial_delay=0, max_delay=0, jitter=False)


class ItemAdded(Event):
    registration = "on_first_use"
    event_type = "test_resolvers.ItemAdded"
    product: str
    quantity: int


class StockReceived(Event):
    registration = "on_first_use"
    event_type = "test_resolvers.StockReceived"
    quantity: int


class StockReserved(Event):
    registration = "on_first_use"
    event_type = "test_resolvers.StockReserved"
    order: str
    quantity: int


class OrderPlaced(Event):
    registration = "on_first_use"
    event_type = "test_resolvers.OrderPlaced"
    lines: int


@dataclass
class Basket:
    lines: dict[str, int] = field(default_factory=dict)  # product -> quantity wanted
    stock: dict[str, int] = field(default_factory=dict)  # stock stream -> units on hand


class PlaceOrder(Command[Basket]):
    """The stock streams to check are only known once the basket is folded: the resolver names them."""

    order: str = stream()
    calls: list[str] = field(default_factory=list, compare=False)  # what ran, per pass

    def initial_state(self) -> Basket:
        return Basket()

    def apply(self, state: Basket, event) -> Basket:
        payload = event.payload
        if isinstance(payload, ItemAdded):
            state.lines[payload.product] = state.lines.get(payload.product, 0) + payload.quantity
        elif isinstance(payload, StockReceived):
            state.stock[event.stream_id] = state.stock.get(event.stream_id, 0) + payload.quantity
        elif isinstance(payload, StockReserved):
            state.stock[event.stream_id] = state.stock.get(event.stream_id, 0) - payload.quantity
        return state

    def resolve(self, state: Basket) -> Iterable[str]:
        self.calls.append("resolve")
        return [f"stock-{product}" for product in state.lines]

    def handle(self, state: Basket, ctx: CommandContext) -> Sequence[EventToWrite]:
        self.calls.append("handle")
        for product, wanted in state.lines.items():
            require(state.stock.get(f"stock-{product}", 0) >= wanted, f"not enough {product} in stock")
        reserve = [
            emit(f"stock-{product}", StockReserved(order=self.order, quantity=wanted))
            for product, wanted in state.lines.items()
        ]
        return [*reserve, emit(self.order, OrderPlaced(lines=len(state.lines)))]


def stocked_store() -> MemoryStore:
    store = MemoryStore()
    store.append(
        [
            EventToWrite("stock-apple", StockReceived(quantity=5)),
            EventToWrite("stock-pear", StockReceived(quantity=2)),
            EventToWrite("order-1", ItemAdded(product="apple", quantity=3)),
            EventToWrite("order-1", ItemAdded(product="pear", quantity=2)),
        ]
    )
    return store


def test_an_order_whose_stock_check_needs_discovered_streams_succeeds_on_the_first_handle() -> None:
    store = stocked_store()
    command = PlaceOrder("order-1")
    result = Executor(store).execute(command)
    # the resolver ran until it named nothing new; handle ran once, on state holding both stock streams
    assert command.calls == ["resolve", "resolve", "handle"]
    assert result.attempts == 1
    assert store.stream_version("stock-apple") == 2 and store.stream_version("stock-pear") == 2
    assert type(store.read_stream("order-1")[-1].payload) is OrderPlaced


def test_handle_runs_once_per_attempt_and_discovered_streams_are_version_checked() -> None:
    store = stocked_store()
    command = PlaceOrder("order-1")
    steps = Executor(store, retry=NO_WAIT).steps(command)
    phases = [next(steps).phase for _ in range(4)]
    assert phases == [Phase.READ, Phase.DECIDE, Phase.READ, Phase.DECIDE]
    store.append([EventToWrite("stock-pear", StockReceived(quantity=1))])  # a discovered stream changes
    assert next(steps).phase is Phase.BACKOFF
    try:
        while True:
            next(steps)
    except StopIteration as done:
        result = done.value
    assert result.attempts == 2
    assert command.calls.count("handle") == 2  # once per attempt, never on partial state
    assert command.calls == ["resolve", "resolve", "handle"] * 2


def test_a_refusal_on_complete_state_is_reported_after_one_handle() -> None:
    store = stocked_store()
    store.append([EventToWrite("order-1", ItemAdded(product="pear", quantity=1))])  # 3 pears wanted, 2 held
    command = PlaceOrder("order-1")
    with pytest.raises(ValidationFailed, match="not enough pear"):
        Executor(store).execute(command)
    assert command.calls.count("handle") == 1


class Endless(Command[int]):
    start: str = stream()

    def initial_state(self) -> int:
        return 0

    def apply(self, state: int, event) -> int:
        return state

    def resolve(self, state: int) -> Iterable[str]:
        self.seen.append(None)
        return [f"s{len(self.seen)}"]  # always something new

    seen: list[None] = field(default_factory=list, compare=False)

    def handle(self, state: int, ctx: CommandContext) -> Sequence[EventToWrite]:
        raise AssertionError("handle must not run while the resolver still names new streams")


def test_a_resolver_that_never_settles_stops_at_max_discovery_iterations() -> None:
    with pytest.raises(MaxIterationsExceeded):
        Executor(MemoryStore(), max_discovery_iterations=3).execute(Endless("s0"))


class BadResolver(Command[None]):
    start: str = stream()

    def resolve(self, state: None) -> Iterable[str]:
        return [42]  # type: ignore[list-item]

    def handle(self, state: None, ctx: CommandContext) -> Sequence[EventToWrite]:
        return []


def test_a_resolver_returning_something_else_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match="stream ids or Query objects"):
        Executor(MemoryStore()).execute(BadResolver("s0"))


class LegacyDiscovery(Command[list[str]]):
    """The old way still works: handle widens the boundary with ctx.add_streams and decides again."""

    start: str = stream()
    passes: list[tuple[str, ...]] = field(default_factory=list, compare=False)

    def initial_state(self) -> list[str]:
        return []

    def apply(self, state: list[str], event) -> list[str]:
        return [*state, event.stream_id]

    def handle(self, state: list[str], ctx: CommandContext) -> Sequence[EventToWrite]:
        self.passes.append(ctx.streams)
        if "extra" not in ctx.streams:
            ctx.add_streams("extra")
            return []
        return [emit("extra", StockReceived(quantity=len(state)))]


def test_ctx_add_streams_keeps_working() -> None:
    store = MemoryStore()
    store.append(
        [EventToWrite("s0", StockReceived(quantity=1)), EventToWrite("extra", StockReceived(quantity=1))]
    )
    command = LegacyDiscovery("s0")
    Executor(store).execute(command)
    assert command.passes == [("s0",), ("s0", "extra")]
    assert store.read_stream("extra")[-1].payload == StockReceived(quantity=2)


def test_a_resolver_with_snapshots_still_decides_once_on_complete_state() -> None:
    from eventcore_lab.snapshots import MemorySnapshots, Snapshots

    store = stocked_store()
    snapshots = Snapshots(MemorySnapshots(), every=1)
    executor = Executor(store, snapshots=snapshots)
    store.append([EventToWrite("stock-apple", StockReceived(quantity=10))])
    store.append([EventToWrite("stock-pear", StockReceived(quantity=5))])
    first = PlaceOrder("order-1")
    executor.execute(first)  # offers a snapshot of the order stream's fold
    store.append([EventToWrite("order-1", ItemAdded(product="apple", quantity=1))])
    again = PlaceOrder("order-1")
    executor.execute(again)  # resumes from the snapshot, then folds everything once stock streams are named
    assert snapshots.saved >= 1 and snapshots.hits == 1  # the second run did resume from one
    assert first.calls.count("handle") == 1 and again.calls.count("handle") == 1
    assert store.read_stream("stock-apple")[-1].payload == StockReserved(order="order-1", quantity=4)
