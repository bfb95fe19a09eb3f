"""Event models: derivation from the example domains, specs on slices, history checks, hand-built models."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import pytest

from eventcore_lab import (
    Command,
    Event,
    EventToWrite,
    Executor,
    MemoryStore,
    Metadata,
    StoredEvent,
    ValidationFailed,
    emit,
    stream,
)
from eventcore_lab.core.command import CommandContext
from eventcore_lab.core.errors import InvalidFormat
from eventcore_lab.examples import banking, coffee, tasks
from eventcore_lab.modeling import (
    Automation,
    EventModel,
    Kind,
    automation,
    category,
    check_history,
    command_emits,
    consumed_events,
    derive_model,
    field_categories,
)
from eventcore_lab.projections.base import Projection, fold, handles
from eventcore_lab.testing import ANY, Scenario


def names(classes: Sequence[type]) -> list[str]:
    return [c.__name__ for c in classes]


# -- derivation -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "streams", "read_models"),
    [
        (banking, ["account"], []),
        (tasks, ["task", "user"], []),
        (
            coffee,
            ["customer", "order", "payment", "barista"],
            ["QueueDisplay", "CustomerReceipts", "DailySales"],
        ),
    ],
)
def test_derived_model_lists_exactly_the_domain(
    module: Any, streams: list[str], read_models: list[str]
) -> None:
    model = derive_model(module)
    assert list(model.commands) == names(module.COMMANDS)
    assert sorted(model.events) == sorted(names(module.EVENTS))
    assert model.lanes == streams
    assert list(model.read_models) == read_models
    for command in module.COMMANDS:  # every command is a slice of the timeline, in the order listed
        assert command.__name__ in model.slice(command.__name__).elements


def test_tasks_lanes_come_from_handle_source_and_constructors() -> None:
    """tasks.py declares nothing: lanes come from emit(self.field, ...) / user_stream(...) in handle and
    from the cls(task_stream(...), user_stream(...)) calls of the `new` classmethods."""
    assert field_categories(tasks.AssignTask) == {"task_id": "task", "assignee_id": "user"}
    emits = command_emits(tasks.AssignTask)
    assert emits == {
        tasks.TaskUnassigned: ("task",),
        tasks.UserTaskUnassigned: ("user",),
        tasks.TaskAssigned: ("task",),
        tasks.UserTaskAssigned: ("user",),
        tasks.WorkloadUpdated: ("user",),
    }
    model = derive_model(tasks)
    assert model.targets("CompleteTask") == ["TaskCompleted", "UserTaskCompleted"]
    assert model.targets("ChangePriority") == ["PriorityChanged"]
    assert model.events["UserTaskCompleted"].lanes == ("user",)


def test_banking_transfer_emits_one_event_class_to_the_account_lane() -> None:
    assert field_categories(banking.TransferMoney) == {"from_account": "account", "to_account": "account"}
    assert command_emits(banking.TransferMoney) == {banking.MoneyTransferred: ("account",)}


def test_explicit_emits_win_and_are_validated() -> None:
    assert command_emits(coffee.PrepareCoffee) == {coffee.CoffeePrepared: ("barista",)}

    class Noted(Event):
        text: str

    class Note(Command):
        emits: ClassVar[tuple[type, ...]] = (Noted,)
        pad: str = stream()

        def handle(self, state: Any, ctx: CommandContext) -> Sequence[EventToWrite]:
            return []

    assert command_emits(Note) == {Noted: ("pad",)}  # a tuple: the command's own stream categories

    class Broken(Command):
        emits: ClassVar[Any] = ("not a class",)
        pad: str = stream()

        def handle(self, state: Any, ctx: CommandContext) -> Sequence[EventToWrite]:
            return []

    with pytest.raises(InvalidFormat, match="not an event class"):
        command_emits(Broken)

    class BadCategories(Command):
        stream_categories: ClassVar[dict[str, str]] = {"nope": "x"}
        pad: str = stream()

    with pytest.raises(InvalidFormat, match="not stream\\(\\) fields: nope"):
        field_categories(BadCategories)


def test_consumed_events_by_handles_by_attribute_and_by_apply() -> None:
    assert consumed_events(coffee.QueueDisplay) == (
        coffee.OrderPlaced,
        coffee.PaymentReceived,
        coffee.CoffeePrepared,
    )

    class Declared:
        name = "declared"
        consumes = (banking.MoneyDeposited,)

        def apply(self, event: StoredEvent) -> None: ...

    class Plain:
        name = "plain"

        def apply(self, event: StoredEvent) -> None:
            if isinstance(event.payload, banking.MoneyWithdrawn | banking.AccountOpened):
                pass

    assert consumed_events(Declared()) == (banking.MoneyDeposited,)
    assert set(consumed_events(Plain)) == {banking.MoneyWithdrawn, banking.AccountOpened}
    with pytest.raises(InvalidFormat, match="no apply"):
        consumed_events(object())


def test_read_models_sit_after_the_last_event_they_consume_and_automations_after_them() -> None:
    model = derive_model(coffee)
    order = [s.name for s in model.slices]
    assert order.index(model.slice_of("QueueDisplay").name) == order.index("PrepareCoffee")
    assert model.slice_of("CustomerReceipts").name == "CompleteOrder"
    assert model.slice_of("HandOverPreparedOrders").name == "CompleteOrder"
    assert model.sources("CustomerReceipts") == [
        "OrderPlaced",
        "PaymentReceived",
        "CoffeePrepared",
        "OrderCompleted",
    ]
    assert model.targets("HandOverPreparedOrders") == ["CompleteOrder"]
    assert model.sources("HandOverPreparedOrders") == ["CustomerReceipts"]


def test_derive_from_a_list_and_bad_items() -> None:
    model = derive_model([banking.Deposit, coffee.DailySales])
    assert list(model.commands) == ["Deposit"]
    assert list(model.read_models) == ["DailySales"]
    assert model.events["PaymentReceived"].lanes == ("?",)  # consumed but written by no command here
    with pytest.raises(InvalidFormat, match="cannot put 42 on a board"):
        derive_model([42])
    with pytest.raises(InvalidFormat, match="at least one"):
        derive_model([])


def test_category_of_stream_ids() -> None:
    assert category("account-7") == "account"
    assert category("order-2024-01") == "order"
    assert category("ledger") == "ledger"
    assert category(" user-bob ") == "user"


# -- specs on slices ------------------------------------------------------------------------------------


def test_coffee_specs_pass_against_the_real_commands() -> None:
    report = derive_model(coffee).verify()
    assert len(report.results) == len(coffee.SPECS)
    assert report.passed, str(report)
    assert {r.slice for r in report.results} == set(names(coffee.COMMANDS))


def test_banking_and_tasks_specs_pass() -> None:
    bank = derive_model(banking)
    acc = banking.account_stream
    bank.add_specs(
        Scenario("transfer debits and credits")
        .given(acc(1), banking.AccountOpened(owner="ann", initial_balance=100))
        .given(acc(2), banking.AccountOpened(owner="bob"))
        .when(banking.TransferMoney(acc(1), acc(2), 30))
        .then(acc(1), banking.MoneyTransferred(from_account=acc(1), to_account=acc(2), amount=30))
        .then(acc(2), banking.MoneyTransferred(from_account=acc(1), to_account=acc(2), amount=30)),
        Scenario("no overdraft")
        .given(acc(1), banking.AccountOpened(owner="ann", initial_balance=10))
        .when(banking.Withdraw(acc(1), 30))
        .then_fails(ValidationFailed, match="insufficient funds"),
    )
    assert bank.verify().passed
    assert [s.name for s in bank.slice("TransferMoney").specs] == ["transfer debits and credits"]

    board = derive_model(tasks)
    task, bob = tasks.task_stream("1"), tasks.user_stream("bob")
    created = tasks.TaskCreated(task_id="1", title="t", description="", creator="ann")
    board.add_specs(
        Scenario("assigning writes to task and user")
        .given(task, created)
        .when(tasks.AssignTask.new("1", "bob", "ann"))
        .then(task, tasks.TaskAssigned(task_id="1", assignee="bob", assigned_by="ann", assigned_at=ANY))
        .then(bob, tasks.UserTaskAssigned(user_name="bob", task_id="1"))
        .then(bob, tasks.WorkloadUpdated(user_name="bob", active_tasks=1))
    )
    report = board.verify()
    assert report.passed, str(report)


def test_a_wrong_spec_fails_with_a_readable_message() -> None:
    model = derive_model(coffee)
    ann = coffee.customer_stream("ann")
    model.add_specs(
        Scenario("entering twice is fine (wrong on purpose)")
        .given(ann, coffee.CustomerEntered(customer_id="ann"))
        .when(coffee.EnterShop(ann))
        .then(ann, coffee.CustomerEntered(customer_id="ann"))
    )
    report = model.verify()
    assert not report.passed
    (failure,) = report.failures
    assert failure.slice == "EnterShop"
    assert "entering twice is fine" in failure.message
    assert "already in the shop" in failure.message  # what actually happened
    with pytest.raises(AssertionError, match=r"1 of 11 specs failed"):
        report.raise_for_failures()
    assert "FAIL  EnterShop: entering twice is fine" in str(report)
    assert "FAIL" in report._repr_html_() and "already in the shop" in report._repr_html_()


def test_a_spec_expecting_an_event_off_the_board_fails() -> None:
    """A command writing something its declared `emits` hides is caught by its own spec."""

    class Rang(Event):
        times: int

    class Ring(Command):
        emits: ClassVar[dict[type, str]] = {coffee.CustomerEntered: "bell"}
        bell: str = stream()

        def handle(self, state: Any, ctx: CommandContext) -> Sequence[EventToWrite]:
            return [emit(self.bell, Rang(times=1))]

    model = derive_model([Ring])
    model.add_specs(Scenario("rings").when(Ring("bell-1")).then("bell-1", Rang(times=1)))
    (failure,) = model.verify().failures
    assert "expects Ring to write Rang, which the model does not show" in failure.message


def test_specs_need_a_home_on_the_board() -> None:
    model = derive_model(banking)
    with pytest.raises(InvalidFormat, match="runs EnterShop, which is not on the board"):
        model.add_specs(coffee.SPECS[0])
    with pytest.raises(InvalidFormat, match="must be a Scenario"):
        model.slice("Deposit").spec("not a scenario")


# -- history against the model --------------------------------------------------------------------------


def _coffee_history() -> MemoryStore:
    store = MemoryStore()
    executor = Executor(store)
    ann, order, pay, bo = (
        coffee.customer_stream("ann"),
        coffee.order_stream("1"),
        coffee.payment_stream("1"),
        coffee.barista_stream("bo"),
    )
    for command in (
        coffee.EnterShop(ann),
        coffee.PlaceOrder(order, ann, ["tea"]),
        coffee.ProcessPayment(pay, order, 200),
        coffee.PrepareCoffee(bo, order, pay),
    ):
        executor.execute(command)
    receipts = fold(coffee.CustomerReceipts(), store.read_all())
    coffee.hand_over_prepared_orders.run(receipts, executor)
    return store


def test_consistent_history_reports_unexercised_commands() -> None:
    report = derive_model(coffee).check_history(_coffee_history())
    assert report.ok
    assert report.events_checked == 5
    assert report.unexercised_commands == ["LeaveShop"]
    assert report.unseen_events == ["CustomerLeft"]
    assert "command never exercised: LeaveShop" in str(report)


def test_history_drift_is_reported() -> None:
    store = _coffee_history()
    store.append([EventToWrite("order-9", banking.MoneyDeposited(amount=1))])  # an event the model lacks
    store.append([EventToWrite("kiosk-1", coffee.CustomerEntered(customer_id="x"))])  # unknown category
    store.append([EventToWrite("order-9", coffee.CustomerLeft(customer_id="x"))])  # known, wrong lane
    report = check_history(derive_model(coffee), store.read_all())
    assert not report.ok
    assert report.unknown_events == {"MoneyDeposited": 1}
    assert report.unknown_streams == {"kiosk": ["kiosk-1"]}
    assert report.misplaced == {("CustomerLeft", "order"): 1}
    assert report.unexercised_commands == []  # CustomerLeft is LeaveShop's alone
    assert "DRIFT" in str(report) and "kiosk" in report._repr_html_()


def test_command_named_in_metadata_counts_as_exercised() -> None:
    store = MemoryStore()
    # TransferMoney and Deposit both absent from events; the metadata names Deposit explicitly
    store.append(
        [EventToWrite("account-1", banking.AccountOpened(owner="a"), Metadata(custom={"command": "Deposit"}))]
    )
    report = derive_model(banking).check_history(store)
    assert set(report.unexercised_commands) == {"Withdraw", "TransferMoney"}


# -- hand-built models, automations ---------------------------------------------------------------------


def test_hand_built_workshop_model_and_compare_with_code() -> None:
    workshop = EventModel("coffee workshop")
    workshop.event("CustomerEntered", lanes=["customer"], slice="enter")
    workshop.command("EnterShop", emits=["CustomerEntered"], slice="enter")
    workshop.event("OrderPlaced", lanes=["order"], slice="order")
    workshop.command("PlaceAndPayOrder", emits=["OrderPlaced"], slice="order")
    workshop.read_model("QueueDisplay", consumes=["OrderPlaced"], slice="queue")
    workshop.automation("Barista", reads=["QueueDisplay"], issues=["EnterShop"], slice="queue")
    assert [s.name for s in workshop.slices] == ["enter", "order", "queue"]
    assert workshop.lanes == ["customer", "order"]
    diff = workshop.compare(derive_model(coffee))
    assert diff["command"][0] == ["PlaceAndPayOrder"]
    assert "PlaceOrder" in diff["command"][1]
    assert diff["streams"] == ([], ["barista", "payment"])

    with pytest.raises(InvalidFormat, match="an event cannot point at a command"):
        workshop.connect("OrderPlaced", "EnterShop")
    with pytest.raises(InvalidFormat, match="'Nowhere' is not on the board"):
        workshop.connect("EnterShop", "Nowhere")
    with pytest.raises(InvalidFormat, match="already on the board as an event"):
        workshop.command("OrderPlaced")
    with pytest.raises(InvalidFormat, match="needs the stream category"):
        workshop.event("Floating")
    assert workshop.of_kind(Kind.AUTOMATION)["Barista"].kind is Kind.AUTOMATION


def test_automation_decides_from_a_read_model_and_checks_what_it_issues() -> None:
    receipts = coffee.CustomerReceipts()
    receipts.receipts["1"] = coffee.Receipt("1", "ann", ["tea"], 200, status="prepared", barista="bo")
    receipts.receipts["2"] = coffee.Receipt("2", "bob", ["tea"], 200, status="paid")
    assert coffee.hand_over_prepared_orders(receipts) == [coffee.CompleteOrder("order-1", "barista-bo")]
    assert isinstance(coffee.hand_over_prepared_orders, Automation)
    assert coffee.hand_over_prepared_orders.name == "HandOverPreparedOrders"

    @automation(reads=coffee.QueueDisplay, issues=(coffee.PrepareCoffee,))
    def rogue(_queue: Any) -> list[Any]:
        return [coffee.LeaveShop("customer-x")]

    with pytest.raises(InvalidFormat, match="issued LeaveShop, but declares only PrepareCoffee"):
        rogue(coffee.QueueDisplay())
    with pytest.raises(InvalidFormat, match="must declare the commands"):
        Automation(lambda _m: [], reads=coffee.QueueDisplay, issues=())


def test_a_projection_class_without_handles_decorator_is_recognised() -> None:
    class Counter(Projection):
        def __init__(self) -> None:
            self.count = 0

        @handles(banking.MoneyDeposited)
        def _on(self, event: StoredEvent) -> None:
            self.count += 1

    model = derive_model([banking.Deposit, Counter])
    assert model.sources("Counter") == ["MoneyDeposited"]
