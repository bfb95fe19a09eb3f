"""Widget logic, driven from Python the way a browser would: set values, click buttons, read the HTML."""

from __future__ import annotations

import enum
import threading
from datetime import datetime
from typing import Any

import ipywidgets as widgets
import pytest

from eventcore_lab import Command, Executor, MemoryStore, stream
from eventcore_lab.core.errors import InvalidFormat
from eventcore_lab.examples import banking, coffee, tasks
from eventcore_lab.widgets import (
    CommandForm,
    CommandRunner,
    FormInvalid,
    LiveProjection,
    StreamExplorer,
    TimelineSlider,
    Workbench,
    parse_value,
    placeholder_for,
)
from eventcore_lab.widgets._render import read_model_html


class Book(Command[None]):
    room: str = stream()
    when: datetime

    def initial_state(self) -> None:
        return None

    def apply(self, state: None, event: Any) -> None:
        return None

    def handle(self, state: None, ctx: Any) -> list[Any]:
        return []


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


def test_parse_value_by_annotation() -> None:
    assert parse_value(int, 5, "n") == 5
    assert parse_value(list[str], "latte, tea ,", "items") == ["latte", "tea"]
    assert parse_value(tuple[int, ...], "1,2", "xs") == (1, 2)
    assert parse_value(str | None, "", "s") is None
    assert parse_value(Colour, "blue", "c") is Colour.BLUE
    assert parse_value(tasks.Priority, tasks.Priority.HIGH, "p") is tasks.Priority.HIGH
    assert parse_value(datetime, "2024-01-02T03:04:00", "t") == datetime(2024, 1, 2, 3, 4)
    assert parse_value(dict[str, int], '{"a": 1}', "d") == {"a": 1}
    with pytest.raises(InvalidFormat, match="field 'amount': 'ten' is not a valid int"):
        parse_value(int, "ten", "amount")
    with pytest.raises(InvalidFormat, match="field 'n'"):
        parse_value(int, 2.5, "n")


def test_form_is_generated_from_the_command_fields() -> None:
    form = CommandForm(tasks.CreateTask)
    assert list(form.inputs) == ["task_id", "title", "description", "creator", "priority"]
    assert "ec-form-CreateTask" in form._dom_classes
    assert form.inputs["task_id"].description == "task_id (stream)"
    priority = form.inputs["priority"]
    assert isinstance(priority, widgets.Dropdown) and priority.value is tasks.Priority.MEDIUM  # the default
    assert isinstance(CommandForm(banking.Deposit).inputs["amount"], widgets.IntText)
    assert "ec-field-amount" in CommandForm(banking.Deposit).inputs["amount"]._dom_classes
    form.set(task_id="task-1", title="Fix", description="it", creator="ann", priority=tasks.Priority.HIGH)
    assert form.build() == tasks.CreateTask("task-1", "Fix", "it", "ann", tasks.Priority.HIGH)
    with pytest.raises(InvalidFormat, match="has no field 'owner'"):
        form.set(owner="x")
    with pytest.raises(InvalidFormat, match="is not a command class"):
        CommandForm(int)


def test_runner_runs_a_command_and_shows_events_or_the_error() -> None:
    store = MemoryStore()
    seen: list[Any] = []
    runner = CommandRunner(store, coffee.COMMANDS, on_result=seen.append)
    assert runner.picker.options == tuple(c.__name__ for c in coffee.COMMANDS)

    runner.picker.value = "EnterShop"
    runner.form.inputs["customer"].value = "customer-ann"
    runner.run_button.click()
    assert runner.last_error is None and runner.last_result is not None
    assert "CustomerEntered" in runner.output.value and "1 event(s) on 1 stream(s)" in runner.output.value
    assert store.read_stream("customer-ann")[0].metadata.custom == {"command": "EnterShop"}
    assert seen == [runner.last_result]

    runner.choose("PlaceOrder", order="order-1", customer="customer-zed", items="latte")
    runner.run_button.click()
    assert runner.last_result is None
    assert (
        "ValidationFailed [CE001]" in runner.output.value
        and "customer zed is not in the shop" in runner.output.value
    )
    assert store.head() == 1 and len(seen) == 1  # nothing written, no callback

    runner.choose("ProcessPayment", payment="payment-1", order="order-1", amount=1)
    runner.form.inputs["method"].value = "cash"
    assert runner.run() is None and "order 1 was not placed" in runner.output.value

    with pytest.raises(InvalidFormat, match="unknown command 'Deposit'"):
        runner.choose(banking.Deposit)
    with pytest.raises(InvalidFormat, match="at least one command"):
        CommandRunner(store, [])


def test_runner_reports_a_field_that_does_not_parse() -> None:
    runner = CommandRunner(Executor(MemoryStore()), [banking.OpenAccount])
    runner.form.inputs["account"].value = "   "
    runner.form.inputs["owner"].value = "ann"
    runner.run()
    assert "account: a stream id is required" in runner.output.value
    assert "a stream id is required" in runner.form.errors["account"].value  # next to the field
    assert runner.form.errors["owner"].value == ""
    runner.picker.value = "OpenAccount"
    assert runner.output.value  # choosing the same command keeps the message
    runner.form.inputs["account"].value = "account-1"
    assert runner.run() is not None
    assert runner.form.errors["account"].value == ""  # fixed: the message goes


def test_empty_form_names_every_field_that_is_missing_or_wrong() -> None:
    form = CommandForm(coffee.PlaceOrder)
    form.set(items="latte")
    with pytest.raises(FormInvalid) as raised:
        form.build()
    assert set(raised.value.errors) == {"order", "customer"}
    assert "order: a stream id is required" in str(raised.value)
    assert raised.value.code == InvalidFormat.code  # still an InvalidFormat for callers that catch that
    booking = CommandForm(Book).set(room="room-1", when="tomorrow")
    with pytest.raises(FormInvalid, match="when: 'tomorrow' is not a valid datetime"):
        booking.build()
    assert "not a valid datetime" in booking.errors["when"].value and booking.errors["room"].value == ""
    assert booking.set(when="2024-01-31T09:30").build() == Book("room-1", datetime(2024, 1, 31, 9, 30))


def test_inputs_are_labelled_with_placeholders_in_words() -> None:
    form = CommandForm(coffee.PlaceOrder)
    assert form.inputs["order"].placeholder == "stream id, e.g. account-1"
    assert form.inputs["items"].placeholder.startswith("comma-separated: text")
    assert placeholder_for(str) == "text" and placeholder_for(int | None) == "number (optional)"
    assert placeholder_for(datetime).startswith("date and time, e.g. 2024-01-31")
    assert all(getattr(box, "placeholder", "") not in {"str", "int", "value"} for box in form.inputs.values())
    assert all(box.layout.width == "calc(100% - 6px)" for box in form.inputs.values())
    limit = CommandForm(banking.OpenAccount).inputs["daily_limit"]  # int | None: blank means None
    assert isinstance(limit, widgets.Text) and limit.placeholder == "number (optional)"


def test_read_model_is_shown_as_tables() -> None:
    store = MemoryStore()
    executor = Executor(store)
    executor.execute(coffee.EnterShop("customer-ann"))
    executor.execute(coffee.PlaceOrder("order-1", "customer-ann", ["tea"]))
    live = LiveProjection(store, coffee.CustomerReceipts())
    body = live.body.value
    assert "<table" in body and "<pre" not in body  # a table, not a JSON dump
    assert "placed" in body and body.count("<tr") >= 2  # header + the receipt

    class Counter:
        def __init__(self) -> None:
            self.total = 3
            self.by_kind = {"a": 1, "b": 2}
            self.rows: list[dict[str, int]] = []

        def apply(self, event: Any) -> None:
            pass

    html = read_model_html(Counter())
    assert "<b>total</b>: 3" in html and "<table" in html and "empty" in html


def test_explorer_lists_streams_shows_events_and_one_in_detail() -> None:
    store = MemoryStore()
    executor = Executor(store)
    executor.execute(banking.OpenAccount("account-1", "ann", 10))
    executor.execute(banking.Deposit("account-1", 5))
    executor.execute(banking.OpenAccount("account-2", "bob"))
    explorer = StreamExplorer(store)
    assert explorer.stream_picker.options == ("account-1", "account-2")
    assert explorer.stream == "account-1"
    assert explorer.table.value.count("<tr>") == 3  # header + 2 events
    assert explorer.event_picker.value == 2 and "MoneyDeposited" in explorer.detail.value
    explorer.event_picker.value = 1
    assert '"owner": "ann"' in explorer.detail.value.replace("&quot;", '"')

    explorer.stream_picker.value = "account-2"
    assert "AccountOpened" in explorer.table.value and "bob" in explorer.table.value

    executor.execute(banking.OpenAccount("account-3", "cy"))
    assert "account-3" not in explorer.stream_picker.options
    explorer.refresh_button.click()
    assert "account-3" in explorer.stream_picker.options and explorer.stream == "account-2"
    empty = StreamExplorer(MemoryStore())
    assert empty.stream is None and "no events" in empty.table.value


def test_explorer_lists_a_bounded_number_of_streams_and_filters_as_you_type() -> None:
    from eventcore_lab import EventToWrite
    from eventcore_lab.widgets.explorer import LISTED

    store = MemoryStore()
    store.append([EventToWrite(f"account-{i}", banking.MoneyDeposited(amount=i + 1)) for i in range(250)])
    explorer = StreamExplorer(store)
    assert len(explorer.stream_picker.options) == LISTED == 200 and explorer.stream == "account-0"
    assert "250 of 250 streams, 200 listed" in explorer.stream_count.value
    assert "account-99" not in explorer.stream_picker.options  # sorted: account-99 comes late

    explorer.stream_filter.value = "account-24"  # a whole id: that stream is shown
    assert explorer.stream_picker.options == ("account-24", *(f"account-24{k}" for k in range(10)))
    assert explorer.stream == "account-24" and ">25<" in explorer.table.value  # its position
    assert "11 of 250 streams" in explorer.stream_count.value and "listed" not in explorer.stream_count.value
    explorer.stream_filter.value = " COUNT-13"  # part of ids, any case: the first match is shown
    assert explorer.stream_picker.options == ("account-13", *(f"account-13{k}" for k in range(10)))
    assert explorer.stream == "account-13"
    explorer.stream_picker.value = "account-135"
    explorer.stream_filter.value = "count-135"  # the shown stream still matches: it stays
    assert explorer.stream == "account-135" and explorer.stream_picker.options == ("account-135",)

    explorer.stream_filter.value = ""
    explorer.show("account-99")  # not listed at the moment: listed first and shown
    assert explorer.stream == "account-99" and explorer.stream_picker.options[0] == "account-99"
    assert ">100<" in explorer.table.value
    explorer.stream_filter.value = "no-such"
    assert explorer.stream is None and "no events" in explorer.table.value
    assert "0 of 250 streams" in explorer.stream_count.value
    store.append([EventToWrite("zeta-1", banking.MoneyDeposited(amount=7))])
    explorer.refresh(select="zeta-1")  # what the workbench does after a command: shown despite the filter
    assert explorer.stream == "zeta-1" and ">251<" in explorer.table.value  # its position


def test_workbench_shows_the_stream_a_command_wrote() -> None:
    store = MemoryStore()
    bench = Workbench(store, coffee.COMMANDS)
    bench.runner.choose("EnterShop", customer="customer-ann").run_button.click()
    bench.runner.choose("EnterShop", customer="customer-bob").run_button.click()
    bench.runner.choose("PlaceOrder", order="order-7", customer="customer-ann", items=["tea", "latte"])
    bench.runner.run_button.click()
    assert isinstance(bench, widgets.GridBox)  # columns of fixed shares: nothing jumps sideways
    assert bench.layout.grid_template_columns == "minmax(0, 5fr) minmax(0, 6fr)"
    assert bench.explorer.stream == "order-7"
    assert "OrderPlaced" in bench.explorer.table.value and "550" in bench.explorer.table.value


def test_live_projection_catches_up_and_follows_the_store() -> None:
    store = MemoryStore()
    executor = Executor(store)
    live = LiveProjection(store, coffee.CustomerReceipts())
    assert live.position == 0 and "receipts" in live.body.value
    executor.execute(coffee.EnterShop("customer-ann"))
    executor.execute(coffee.PlaceOrder("order-1", "customer-ann", ["tea"]))
    assert live.catch_up() == 2 and live.position == 2
    assert "placed" in live.body.value and "at position 2" in live.status.value
    assert live.catch_up() == 0

    updated = threading.Event()
    live.body.observe(lambda _change: updated.set(), names="value")
    live.start(poll=0.05)
    try:
        assert live.running
        executor.execute(coffee.ProcessPayment("payment-1", "order-1", 200))
        assert updated.wait(10), "the live view did not update after a new event"
        assert "paid" in live.body.value
    finally:
        live.stop()
    assert not live.running


def test_timeline_slider_shows_the_read_model_at_a_position() -> None:
    store = MemoryStore()
    executor = Executor(store)
    executor.execute(coffee.EnterShop("customer-ann"))
    executor.execute(coffee.PlaceOrder("order-1", "customer-ann", ["tea"]))
    executor.execute(coffee.ProcessPayment("payment-1", "order-1", 200))
    slider = TimelineSlider(store, coffee.CustomerReceipts)
    assert slider.slider.max == 3 and slider.slider.value == 3
    assert slider.current.receipts["1"].status == "paid"
    slider.slider.value = 2
    assert slider.current.receipts["1"].status == "placed"
    assert "position 2" in slider.picture.value and "placed" in slider.state.value
    slider.slider.value = 1
    assert slider.current.receipts == {} and "position 1" in slider.picture.value
    with pytest.raises(InvalidFormat, match="projection factory"):
        TimelineSlider(store, coffee.CustomerReceipts())  # type: ignore[arg-type]
