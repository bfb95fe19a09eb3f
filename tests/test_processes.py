"""Process managers, sagas, deadlines and retry policies (eventcore_lab.processes)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest

from eventcore_lab.core.errors import InvalidFormat, ProcessingFailed
from eventcore_lab.core.events import StoredEvent
from eventcore_lab.core.executor import Executor
from eventcore_lab.core.retry import RetryConfig
from eventcore_lab.examples import ecommerce as shop
from eventcore_lab.examples import travel
from eventcore_lab.processes import (
    CommandIssued,
    CommandRejected,
    CommandSucceeded,
    Deadline,
    Decision,
    ExponentialBackoff,
    FixedDelay,
    Issue,
    LinearBackoff,
    ProcessManager,
    ProcessRunner,
    ProcessTimeout,
    causation_chain,
    processes_frame,
)
from eventcore_lab.projections.checkpoints import MemoryCheckpoints
from eventcore_lab.simulation import EPOCH
from eventcore_lab.stores.chaos import ChaosStore
from eventcore_lab.stores.memory import MemoryStore

S = timedelta(seconds=1)


class Clock:
    """A virtual clock that tests move by hand."""

    def __init__(self, start: datetime = EPOCH) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


# -- retry policies --------------------------------------------------------------------------------------


def test_exponential_backoff_matches_the_manuals_examples() -> None:
    policy = ExponentialBackoff(base_delay=1 * S, max_delay=30 * S)
    assert [policy.delay_for(n) for n in (0, 1, 2, 5)] == [1 * S, 2 * S, 4 * S, 30 * S]


def test_linear_backoff_matches_the_manuals_examples() -> None:
    policy = LinearBackoff(initial_delay=5 * S, increment=2 * S)
    assert [policy.delay_for(n) for n in (0, 3)] == [5 * S, 11 * S]


def test_fixed_delay_is_the_same_every_time() -> None:
    assert {FixedDelay(7 * S).delay_for(n) for n in (0, 1, 50)} == {7 * S}


@pytest.mark.parametrize("retries", [64, 1000, 10**9, 10**30])
def test_backoffs_do_not_overflow_on_huge_retry_counts(retries: int) -> None:
    assert ExponentialBackoff(1 * S, 30 * S).delay_for(retries) == 30 * S
    linear = LinearBackoff(5 * S, 2 * S).delay_for(retries)
    assert 5 * S < linear <= timedelta(days=3650)
    assert EPOCH + linear > EPOCH  # still a usable datetime


def test_exponential_backoff_is_exact_up_to_the_cap() -> None:
    policy = ExponentialBackoff(3 * S, timedelta(hours=1))
    for n in range(40):
        assert policy.delay_for(n) == min(3 * S * 2**n, timedelta(hours=1))


def test_process_timeout_retries_up_to_max_then_stops() -> None:
    timeout = ProcessTimeout(FixedDelay(10 * S), max_retries=2)
    assert [timeout.should_retry(n) for n in range(4)] == [True, True, False, False]
    assert timeout.next_attempt(EPOCH, 0) == EPOCH + 10 * S


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: ExponentialBackoff(5 * S, 1 * S), "shorter than base_delay"),
        (lambda: FixedDelay(-1 * S), "delay must be >= 0"),
        (lambda: LinearBackoff(5, 2 * S), "timedelta"),  # type: ignore[arg-type]
        (lambda: ProcessTimeout(FixedDelay(S), max_retries=-1), "max_retries"),
        (lambda: FixedDelay(S).delay_for(-1), "retries done"),
    ],
)
def test_bad_policies_are_refused_with_a_reason(make: Any, words: str) -> None:
    with pytest.raises(InvalidFormat, match=words):
        make()


# -- the travel saga -----------------------------------------------------------------------------------


def travel_world(*, hotel: int = 5, flight: int = 5, cars: int = 5) -> tuple[MemoryStore, Executor]:
    store = MemoryStore()
    executor = Executor(store)
    for stream, units in (
        (travel.hotel_stream("grand"), hotel),
        (travel.flight_stream("LH1"), flight),
        (travel.cars_stream("airport"), cars),
    ):
        if units:
            executor.execute(travel.AddCapacity(stream, units))
    return store, executor


def request_trip(executor: Executor, rid: str = "r1") -> None:
    executor.execute(travel.RequestTrip(travel.reservation_stream(rid), rid, "grand", "LH1", "airport"))


def saga_types(store: MemoryStore, rid: str = "r1") -> list[str]:
    return [
        e.event_type for e in store.read_stream(f"booking-saga-{rid}") if e.event_type.startswith("saga.")
    ]


def test_travel_saga_flight_fails_hotel_is_cancelled_car_never_booked() -> None:
    store, executor = travel_world(flight=0)
    request_trip(executor)
    ProcessRunner(store, [travel.TravelBookingSaga()]).run_until_idle()

    assert saga_types(store) == [
        "saga.SagaStarted",
        "saga.StepStarted",  # hotel
        "saga.StepCompleted",
        "saga.StepStarted",  # flight
        "saga.StepFailed",
        "saga.CompensationStarted",
        "saga.CompensationStepStarted",  # cancel hotel
        "saga.StepCompensated",
        "saga.SagaCompensated",
    ]
    saga = store.read_stream("booking-saga-r1")
    failed = next(e.payload for e in saga if e.event_type == "saga.StepFailed")
    assert (failed.name, failed.reason) == ("book_flight", "No availability")
    issued = [e.payload.command_type for e in saga if isinstance(e.payload, CommandIssued)]
    assert issued == ["BookHotel", "BookFlight", "CancelHotel"]
    assert [e.event_type for e in store.read_stream("reservation-r1")] == [
        "travel.TripRequested",
        "travel.HotelBooked",
        "travel.HotelCancelled",
    ]
    assert store.read_stream(travel.cars_stream("airport"))[-1].event_type == "travel.CapacityAdded"
    assert processes_frame(store, travel.TravelBookingSaga())["status"].tolist() == ["compensated"]


def test_travel_saga_completes_when_every_step_succeeds() -> None:
    store, executor = travel_world()
    request_trip(executor)
    ProcessRunner(store, [travel.TravelBookingSaga()]).run_until_idle()
    types = saga_types(store)
    assert types[-1] == "saga.SagaCompleted"
    assert types.count("saga.StepCompleted") == 3
    assert "saga.CompensationStarted" not in types


def test_travel_saga_compensates_completed_steps_in_reverse_order() -> None:
    store, executor = travel_world(cars=0)
    request_trip(executor)
    ProcessRunner(store, [travel.TravelBookingSaga()]).run_until_idle()
    compensated = [
        e.payload.name for e in store.read_stream("booking-saga-r1") if e.event_type == "saga.StepCompensated"
    ]
    assert compensated == ["book_flight", "book_hotel"]
    assert saga_types(store)[-1] == "saga.SagaCompensated"


def test_a_refused_compensation_is_retried_on_a_deadline_then_the_saga_is_aborted() -> None:
    clock = Clock()
    store, executor = travel_world(cars=0)
    request_trip(executor)
    runner = ProcessRunner(store, [travel.TravelBookingSaga()], clock=clock)
    runner.run_until_idle(max_events=14)  # up to the hotel and flight bookings, before compensation
    # someone cancels the flight by hand, so the saga's own cancellation will be refused
    executor.execute(
        travel.CancelFlight(travel.flight_stream("LH1"), travel.reservation_stream("r1"), "LH1", "r1")
    )
    fired = []
    for _ in range(20):
        runner.run_until_idle()
        due = runner.next_deadline()
        if due is None:
            break
        clock.now = due
        fired.append(due - EPOCH)
        runner.check_deadlines()
    types = saga_types(store)
    assert types.count("saga.CompensationFailed") == 6  # the first try and 5 retries
    assert types[-1] == "saga.SagaAborted"
    assert "saga.SagaCompensated" not in types and "saga.SagaCompleted" not in types
    # the saga's default policy: exponential from 1 s, capped at 30 s
    assert fired == [S, 3 * S, 7 * S, 15 * S, 31 * S]
    assert processes_frame(store, runner.managers)["status"].tolist() == ["aborted"]


# -- exactly-once effect -------------------------------------------------------------------------------


def shop_world(
    orders: int, *, unpaid: set[int] = frozenset(), greedy: set[int] = frozenset()
) -> tuple[MemoryStore, Clock]:  # type: ignore[assignment]
    clock = Clock()
    store = MemoryStore(clock=clock)
    executor = Executor(store, clock=clock)
    executor.execute(shop.AddStock(shop.stock_stream("apple"), "apple", 1000))
    executor.execute(shop.AddStock(shop.stock_stream("pear"), "pear", 1000))
    for i in range(orders):
        oid = f"o{i}"
        items = {"apple": 5000 if i in greedy else 1, "pear": 2}
        executor.execute(shop.PlaceOrder(shop.order_stream(oid), oid, "c", items, 300))
        if i not in unpaid:
            executor.execute(shop.PayOrder(shop.payment_stream(oid), shop.order_stream(oid), oid, 300))
    return store, clock


def drive(runners: list[ProcessRunner], clock: Clock, *, rounds: int = 100) -> None:
    """Run every runner until idle, then move the clock to the next deadline, until nothing is left."""
    for _ in range(rounds):
        busy = sum(r.run_until_idle() for r in runners)
        if busy:
            continue
        due = [d for d in (r.next_deadline() for r in runners) if d is not None]
        if not due:
            return
        clock.now = max(clock.now, min(due))
        for r in runners:
            r.check_deadlines()
    raise AssertionError("processes did not settle")


def managers() -> list[ProcessManager[Any]]:
    return [shop.OrderFulfilment(), shop.Carrier()]


def applied_twice(store: Any) -> list[Any]:
    """Domain effects that happened more than once for the same order (there must be none)."""
    counts = Counter(
        (e.event_type, e.stream_id, getattr(e.payload, "order_id", None), getattr(e.payload, "attempt", None))
        for e in store.read_all()
        if e.event_type.startswith("shop.") and e.event_type != "shop.StockAdded"
    )
    outcomes = Counter(
        (e.stream_id, e.payload.command_id)
        for e in store.read_all()
        if isinstance(e.payload, CommandSucceeded | CommandRejected)
    )
    return [k for k, n in counts.items() if n > 1] + [k for k, n in outcomes.items() if n > 1]


def test_a_redelivered_log_is_a_no_op() -> None:
    store, clock = shop_world(5)
    first = ProcessRunner(store, managers(), clock=clock)
    drive([first], clock)
    head = store.head()
    again = ProcessRunner(store, managers(), clock=clock, checkpoints=MemoryCheckpoints())  # from position 0
    assert again.position == 0
    drive([again], clock)
    assert store.head() == head  # nothing written: every event found its marker
    assert again.stats.advanced == again.stats.dispatched == 0
    assert again.stats.duplicates > 0


def test_two_runners_on_the_same_log_apply_every_command_once() -> None:
    store, clock = shop_world(6, unpaid={2}, greedy={4})
    a = ProcessRunner(store, managers(), clock=clock, checkpoints=MemoryCheckpoints())
    b = ProcessRunner(store, managers(), clock=clock, checkpoints=MemoryCheckpoints())
    for _ in range(5000):  # interleave one event at a time
        stepped = a.step() | b.step()
        if not stepped:
            due = [d for d in (a.next_deadline(), b.next_deadline()) if d is not None]
            if not due:
                break
            clock.now = max(clock.now, min(due))
            a.check_deadlines()
            b.check_deadlines()
    assert applied_twice(store) == []
    frame = processes_frame(store, managers()).set_index("stream")
    assert frame["terminal"].all()
    assert frame.loc["order-fulfilment-o2", "status"] == "failed: payment timed out after 2 reminders"
    assert frame.loc["order-fulfilment-o4", "status"].startswith("failed: Insufficient stock of apple")
    assert (frame.loc[[f"order-fulfilment-o{i}" for i in (0, 1, 3, 5)], "status"] == "completed").all()


def test_partitioned_runners_share_the_work_and_finish_it() -> None:
    store, clock = shop_world(12)
    runners = [ProcessRunner(store, managers(), clock=clock, partition=(i, 3)) for i in range(3)]
    drive(runners, clock)
    assert all(r.stats.advanced > 0 for r in runners)
    frame = processes_frame(store, managers())
    assert len(frame) == 24 and frame["terminal"].all()
    assert applied_twice(store) == []


def test_issued_commands_carry_causation_and_correlation() -> None:
    store, executor = travel_world(flight=0)
    request_trip(executor)
    ProcessRunner(store, [travel.TravelBookingSaga()]).run_until_idle()
    trip = store.read_stream("reservation-r1")[0]
    booked, cancelled = store.read_stream("reservation-r1")[1:]
    assert booked.metadata.causation_id == str(trip.event_id)  # the trigger of the saga's first step
    assert booked.metadata.correlation_id == cancelled.metadata.correlation_id == "booking-saga-r1"
    assert booked.metadata.custom["command_id"].startswith(str(trip.event_id))
    chain = causation_chain(store, trip.event_id)
    assert chain["depth"].iloc[0] == 0 and chain["event_id"].iloc[0] == str(trip.event_id)
    assert {"travel.HotelBooked", "travel.HotelCancelled", "saga.SagaCompensated"} <= set(chain["event_type"])
    assert chain["position"].is_monotonic_increasing
    assert causation_chain(store, "no-such-event").empty


# -- deadlines -------------------------------------------------------------------------------------------


def test_payment_timeout_fires_once_at_the_right_virtual_time_and_survives_a_restart() -> None:
    store, clock = shop_world(1, unpaid={0})
    checkpoints = MemoryCheckpoints()
    runner = ProcessRunner(store, managers(), clock=clock, checkpoints=checkpoints)
    runner.run_until_idle()
    due = EPOCH + timedelta(hours=1)  # the payment window
    assert runner.next_deadline() == due

    assert runner.check_deadlines(due - timedelta(microseconds=1)) == 0
    # the scheduler restarts: a new runner rebuilds the pending deadline from the log
    restarted = ProcessRunner(store, managers(), clock=clock, checkpoints=checkpoints)
    assert [(d.process, d.due_at) for d in restarted.deadlines.pending()] == [("order-fulfilment-o0", due)]
    assert restarted.check_deadlines(due) == 1
    assert restarted.check_deadlines(due) == 0  # exactly once
    restarted.run_until_idle()
    assert restarted.check_deadlines(due + timedelta(minutes=59)) == 0
    fired = [
        e.payload for e in store.read_stream("order-fulfilment-o0") if e.event_type == "process.DeadlineFired"
    ]
    assert [(f.deadline_id, f.fired_at) for f in fired] == [("payment#1", due)]
    # the first reminder went out, and the next deadline is an hour later (exponential from 1 h)
    assert [e.event_type for e in store.read_stream("order-o0")][-1] == "shop.PaymentReminderSent"
    assert restarted.next_deadline() == due + timedelta(hours=1)


def test_a_timeout_whose_firing_fails_is_retried_not_lost() -> None:
    store, clock = shop_world(1, unpaid={0})
    chaos = ChaosStore(store, failure_probability=0.0, conflict_probability=0.0, latency=None, seed=1)
    runner = ProcessRunner(
        store, managers(), clock=clock, executor=Executor(chaos, retry=RetryConfig.none(), clock=clock)
    )
    runner.run_until_idle()
    chaos.failure_probability = 1.0  # the store fails every call from now on
    clock.now = EPOCH + timedelta(hours=2)
    assert runner.check_deadlines() == 0
    assert runner.deadlines.failed_attempts == 1 and len(runner.deadlines) == 1
    chaos.failure_probability = 0.0
    assert runner.check_deadlines() == 1
    assert len(runner.deadlines) == 0


def test_a_deadline_of_an_ended_process_does_nothing() -> None:
    store, clock = shop_world(1)
    stale = ProcessRunner(store, managers(), clock=clock, checkpoints=MemoryCheckpoints())
    stale.run_until_idle(max_events=8)  # has seen the payment deadline being scheduled, not its cancel
    assert len(stale.deadlines) == 1
    fresh = ProcessRunner(store, managers(), clock=clock, checkpoints=MemoryCheckpoints())
    drive([fresh], clock)
    head = store.head()
    assert stale.check_deadlines(EPOCH + timedelta(days=30)) == 0
    assert store.head() == head
    assert processes_frame(store, managers())["terminal"].all()


def test_failed_payment_and_stock_paths_refund_and_cancel() -> None:
    store, clock = shop_world(3, greedy={1})
    drive([ProcessRunner(store, managers(), clock=clock)], clock)
    order = [e.event_type for e in store.read_stream("order-o1")]
    assert order[-1] == "shop.OrderCancelled"
    assert [e.event_type for e in store.read_stream("payment-o1")] == [
        "shop.PaymentReceived",
        "shop.PaymentRefunded",
    ]
    frame = processes_frame(store, managers(), in_flight=True)
    assert frame.empty
    assert [e.event_type for e in store.read_stream("order-o0")][-1] == "shop.OrderCompleted"


def test_in_flight_processes_frame_lists_waiting_processes_with_their_deadline() -> None:
    store, clock = shop_world(2, unpaid={1})
    runner = ProcessRunner(store, managers(), clock=clock)
    runner.run_until_idle()
    flight = processes_frame(store, managers(), in_flight=True).set_index("stream")
    assert flight.loc["order-fulfilment-o1", "status"] == "payment pending"
    assert flight.loc["order-fulfilment-o1", "next_deadline"] == EPOCH + timedelta(hours=1)
    assert flight.loc["carrier-o0", "deadlines_pending"] == 1
    assert runner.deadlines.frame()["process"].tolist() == ["order-fulfilment-o1", "carrier-o0"]


# -- bad input -------------------------------------------------------------------------------------------


class _Triggered(ProcessManager[None]):
    name = "broken"
    triggers = (travel.TripRequested,)

    def correlate(self, event: StoredEvent) -> str | None:
        return "k"


def test_runner_refuses_managers_that_cannot_work() -> None:
    store = MemoryStore()
    with pytest.raises(InvalidFormat, match="at least one"):
        ProcessRunner(store, [])
    with pytest.raises(InvalidFormat, match="clash"):
        ProcessRunner(store, [travel.TravelBookingSaga(), travel.TravelBookingSaga()])

    class Deaf(_Triggered):
        triggers = ()

    with pytest.raises(InvalidFormat, match="reacts to nothing"):
        ProcessRunner(store, [Deaf()])
    with pytest.raises(InvalidFormat, match="partition"):
        ProcessRunner(store, [_Triggered()], partition=(3, 2))


def test_a_manager_bug_stops_the_runner_with_the_event_named_and_nothing_half_written() -> None:
    class Wrong(_Triggered):
        def react(self, state: None, trigger: Any, now: datetime) -> Decision:
            return "not a decision"  # type: ignore[return-value]

    store, executor = travel_world()
    request_trip(executor)
    head = store.head()
    runner = ProcessRunner(store, [Wrong()])
    with pytest.raises(ProcessingFailed, match="broken"):
        runner.run_until_idle()
    assert store.head() == head
    assert runner.position == head - 1  # the failing event will be delivered again


def test_issuing_a_command_the_manager_did_not_declare_fails_clearly() -> None:
    class Undeclared(_Triggered):
        def react(self, state: None, trigger: Any, now: datetime) -> Decision:
            command = travel.AddCapacity(travel.hotel_stream("x"), 1)
            return (
                Decision(issue=[Issue(command, "add")])
                if isinstance(trigger, travel.TripRequested)
                else Decision()
            )

    store, executor = travel_world()
    request_trip(executor)
    head = store.head()
    with pytest.raises(ProcessingFailed, match=r"issued AddCapacity, which is not among its commands"):
        ProcessRunner(store, [Undeclared()]).run_until_idle()
    assert store.head() == head


# -- in the workbench ------------------------------------------------------------------------------------


def test_the_board_shows_each_process_with_its_triggers_and_commands() -> None:
    from eventcore_lab.modeling import Kind, derive_model
    from eventcore_lab.processes import add_processes

    model = add_processes(derive_model(shop.COMMANDS, name="shop"), managers())
    kinds = {name: e.kind for name, e in model.elements.items()}
    assert kinds["order-fulfilment"] is Kind.AUTOMATION and kinds["order-fulfilment state"] is Kind.READ_MODEL
    flows = {(f.source, f.target) for f in model.flows}
    for trigger in ("shop.OrderPlaced", "shop.PaymentReceived", "shop.ShipmentDelivered"):
        assert (trigger, "order-fulfilment state") in flows
    assert ("order-fulfilment state", "order-fulfilment") in flows
    issued = {target for source, target in flows if source == "order-fulfilment"}
    assert issued == {c.__name__ for c in shop.OrderFulfilment.commands}
    assert ("carrier", "DeliverShipment") in flows
    with pytest.raises(InvalidFormat, match="ProcessManager"):
        add_processes(model, [object()])  # type: ignore[list-item]


def test_a_causation_chain_draws_as_a_timeline_of_the_process_commits() -> None:
    from eventcore_lab.modeling import timeline
    from eventcore_lab.processes import chain_events

    store, clock = shop_world(1)
    drive([ProcessRunner(store, managers(), clock=clock)], clock)
    paid = store.read_stream("payment-o0")[0]
    events = chain_events(store, paid.event_id)
    assert events[0] == paid and [e.position for e in events] == sorted(e.position for e in events)
    assert {
        "shop.StockReserved",
        "shop.ShipmentDelivered",
        "shop.OrderCompleted",
        "fulfilment.Completed",
    } <= {e.event_type for e in events}
    labels = [c.label for c in timeline(events).commits()]
    assert {
        "order-fulfilment",
        "ReserveStock",
        "DispatchShipment",
        "DeliverShipment",
        "CompleteOrder",
    } <= set(labels)
    assert "carrier (arrival deadline)" in labels  # the carrier's deadline firing, caused by its scheduling


class _TripWatcher(ProcessManager[int]):
    """Sees every event of the reservation streams (a stream category), counts them."""

    name = "trip-watch"
    categories = ("reservation-",)

    def correlate(self, event: StoredEvent) -> str | None:
        return event.stream_id.removeprefix("reservation-")

    def initial_state(self) -> int:
        return 0

    def evolve(self, state: int, event: Any) -> int:
        return state + 1 if isinstance(event, travel.TripRequested) else state

    def react(self, state: int, trigger: Any, now: datetime) -> Decision:
        return Decision(record=[trigger]) if isinstance(trigger, travel.TripRequested) else Decision()


def test_a_process_can_follow_a_stream_category() -> None:
    store, executor = travel_world()
    request_trip(executor, "r1")
    request_trip(executor, "r2")
    ProcessRunner(store, [_TripWatcher()]).run_until_idle()
    frame = processes_frame(store, _TripWatcher()).set_index("key")
    assert sorted(frame.index) == ["r1", "r2"]
    copied = [e.event_type for e in store.read_stream("trip-watch-r1")]
    assert copied == ["process.TriggerHandled", "travel.TripRequested"]


def test_a_bad_correlation_key_is_reported_with_the_event() -> None:
    class Keyless(_Triggered):
        def correlate(self, event: StoredEvent) -> str | None:
            return 42  # type: ignore[return-value]

    store, executor = travel_world()
    request_trip(executor)
    with pytest.raises(ProcessingFailed, match=r"correlate on the event at position 4 .*non-empty string"):
        ProcessRunner(store, [Keyless()]).run_until_idle()


def test_a_live_runner_follows_the_log_until_stopped() -> None:
    import threading

    store, _ = shop_world(3)
    live = [shop.OrderFulfilment(), shop.Carrier(transit=timedelta(0))]  # parcels arrive at once
    runner = ProcessRunner(store, live)
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,), kwargs={"poll_interval": 0.01})
    thread.start()
    try:
        for _ in range(500):  # up to ~5 s of real time on a loaded machine; no speed is asserted
            frame = processes_frame(store, managers())
            if len(frame) == 6 and frame["terminal"].all():
                break
            stop.wait(0.01)
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()
    assert processes_frame(store, managers())["status"].tolist() == ["completed"] * 3 + ["delivered"] * 3


def test_racing_runner_threads_on_one_log_still_apply_every_command_once() -> None:
    """Real races (not interleaved by hand): both runners handle every event and fire every deadline;
    the process stream's version check and markers let exactly one of them win each step."""
    import threading

    store, clock = shop_world(20, unpaid={3, 11}, greedy={5})
    clock.now = EPOCH + timedelta(days=1)  # every payment deadline is due when checked
    racing = [
        ProcessRunner(
            store,
            [shop.OrderFulfilment(payment_window=timedelta(0)), shop.Carrier(transit=timedelta(0))],
            clock=clock,
            checkpoints=MemoryCheckpoints(),
            retry=RetryConfig(max_attempts=50, initial_delay=0.0005, max_delay=0.005),
        )
        for _ in range(2)
    ]
    errors: list[BaseException] = []

    def work(runner: ProcessRunner) -> None:
        try:
            idle = 0
            while idle < 3:
                busy = runner.run_until_idle() + runner.check_deadlines(clock.now + timedelta(days=30))
                idle = 0 if busy or runner.position < store.head() else idle + 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(r,)) for r in racing]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    drive(racing, clock)  # whatever one thread stopped short of
    assert applied_twice(store) == []
    frame = processes_frame(store, managers()).set_index("key")
    assert frame["terminal"].all()
    fulfilment = frame[frame["process"] == "order-fulfilment"]["status"]
    assert (fulfilment.drop(["o3", "o11", "o5"]) == "completed").all()
    assert sum(r.stats.duplicates for r in racing) > 0  # they really did compete for the same steps


class _Snoozer(_Triggered):
    """Every trip request pushes one deadline later: cancel the pending one, set a new one."""

    def react(self, state: None, trigger: Any, now: datetime) -> Decision:
        if isinstance(trigger, travel.TripRequested):
            return Decision(schedule=[Deadline("snooze", now + timedelta(minutes=5))], cancel=["snooze"])
        return Decision()


def test_cancel_and_schedule_of_the_same_name_replaces_the_pending_deadline() -> None:
    clock = Clock()
    store, executor = travel_world()
    runner = ProcessRunner(store, [_Snoozer()], clock=clock)
    request_trip(executor, "r1")
    runner.run_until_idle()
    clock.now += timedelta(minutes=3)
    request_trip(executor, "r2")
    runner.run_until_idle()
    types = [(e.event_type, getattr(e.payload, "deadline_id", "")) for e in store.read_stream("broken-k")]
    assert [t for t in types if t[1]] == [
        ("process.DeadlineScheduled", "snooze#1"),
        ("process.DeadlineCancelled", "snooze#1"),
        ("process.DeadlineScheduled", "snooze#2"),
    ]
    assert [d.due_at for d in runner.deadlines.pending()] == [EPOCH + timedelta(minutes=8)]


def test_a_deadline_without_a_timezone_is_refused() -> None:
    class Naive(_Triggered):
        def react(self, state: None, trigger: Any, now: datetime) -> Decision:
            return Decision(schedule=[Deadline("t", datetime(2024, 1, 1))])

    store, executor = travel_world()
    request_trip(executor)
    head = store.head()
    with pytest.raises(ProcessingFailed, match="timezone-aware"):
        ProcessRunner(store, [Naive()]).run_until_idle()
    assert store.head() == head


def test_process_summary_counts_started_ended_in_flight_and_stuck() -> None:
    from eventcore_lab.processes import process_summary

    store, clock = shop_world(4, unpaid={1})
    runner = ProcessRunner(store, managers(), clock=clock)
    runner.run_until_idle()  # paid orders wait for the carrier; o1 waits for its payment
    clock.now = EPOCH + timedelta(hours=5)
    summary = process_summary(
        processes_frame(store, managers()), now=clock.now, stuck_after=timedelta(hours=4)
    )
    assert summary.loc["order-fulfilment", ["started", "ended", "in_flight"]].tolist() == [4, 0, 4]
    assert summary.loc["carrier", "in_flight"] == 3
    assert summary.loc["order-fulfilment", "stuck"] == 4  # all older than 4 hours at 5 hours
    drive([runner], clock)
    done = process_summary(processes_frame(store, managers()))
    assert done.loc["order-fulfilment", ["ended", "in_flight"]].tolist() == [4, 0]
    assert done.loc["carrier", "mean_duration"] == timedelta(days=2)  # the transit time
    assert process_summary(processes_frame(MemoryStore(), managers())).empty
