"""The executor: multi-stream atomicity, optimistic checks on every stream read, retries, discovery."""

from __future__ import annotations

import contextlib
import random
import threading
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventcore_lab import (
    BusinessRuleViolation,
    Command,
    ConcurrencyConflict,
    Event,
    EventToWrite,
    Executor,
    MemoryStore,
    Metadata,
    RetryConfig,
    StoredEvent,
    Timeout,
    ValidationFailed,
    emit,
    stream,
)
from eventcore_lab.core.command import CommandContext
from eventcore_lab.core.executor import Phase
from eventcore_lab.errors import ConnectionFailed, MaxIterationsExceeded, StreamAccessDenied
from eventcore_lab.examples.banking import (
    Deposit,
    MoneyDeposited,
    OpenAccount,
    TransferMoney,
    Withdraw,
    apply_to_accounts,
)
from eventcore_lab.examples.tasks import AssignTask, CompleteTask, CreateTask

NO_WAIT = RetryConfig(max_attempts=20, initial_delay=0, max_delay=0, jitter=False)


def balances(store: MemoryStore) -> dict[str, int]:
    accounts: dict = {}
    for event in store.read_all():
        apply_to_accounts(accounts, event)
    return {sid: account.balance for sid, account in accounts.items()}


def open_accounts(executor: Executor, amounts: dict[str, int]) -> None:
    for account, amount in amounts.items():
        executor.execute(OpenAccount(account, "owner", amount))


def run_to_decision(executor: Executor, command: Command) -> object:
    """Start ``command`` and run its read and decide phases; the next ``next()`` commits."""
    steps = executor.steps(command)
    assert next(steps).phase is Phase.READ
    assert next(steps).phase is Phase.DECIDE
    return steps


def finish(steps) -> object:  # type: ignore[no-untyped-def]
    """Drive a step generator to its end, skipping backoffs; return its result."""
    try:
        while True:
            next(steps)
    except StopIteration as done:
        return done.value


# -- the manual's task-management counts ----------------------------------------------------------------


def test_task_management_counts() -> None:
    executor = Executor(MemoryStore())
    created = executor.execute(CreateTask.new("42", "Write tests", "", "alice"))
    assigned = executor.execute(AssignTask.new("42", "bob", "alice"))
    completed = executor.execute(CompleteTask.new("42", "bob"))
    assert (len(created.events_written), len(created.streams_affected)) == (1, 1)
    assert (len(assigned.events_written), set(assigned.streams_affected)) == (3, {"task-42", "user-bob"})
    assert (len(completed.events_written), len(completed.streams_affected)) == (2, 2)
    with pytest.raises(ValidationFailed, match="already exists") as error:
        executor.execute(CreateTask.new("42", "Write tests", "", "alice"))
    assert error.value.attempts == 1


# -- atomicity and concurrency ----------------------------------------------------------------------------


def test_three_transfers_in_a_cycle_all_succeed_and_conserve_money() -> None:
    store = MemoryStore()
    executor = Executor(store, retry=NO_WAIT)
    open_accounts(executor, {"A": 100, "B": 100, "C": 100})
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def transfer(source: str, target: str) -> None:
        barrier.wait()
        try:
            for _ in range(20):
                executor.execute(TransferMoney(source, target, 5))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=transfer, args=pair) for pair in [("A", "B"), ("B", "C"), ("C", "A")]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert balances(store) == {"A": 100, "B": 100, "C": 100}
    assert store.head() == 3 + 3 * 20 * 2


def test_concurrent_withdrawals_one_wins_the_other_fails_validation_after_rereading() -> None:
    store = MemoryStore()
    executor = Executor(store, retry=NO_WAIT)
    open_accounts(executor, {"acc": 1000})
    first = run_to_decision(executor, Withdraw("acc", 600))
    second = run_to_decision(executor, Withdraw("acc", 700))
    result = finish(first)
    assert result.attempts == 1
    with pytest.raises(ValidationFailed, match="insufficient funds") as error:
        finish(second)
    assert error.value.attempts == 2  # one conflict, then a re-read that fails validation: no further retry
    assert balances(store) == {"acc": 400}


def test_concurrent_withdrawals_in_threads_exactly_one_succeeds() -> None:
    store = MemoryStore()
    executor = Executor(store, retry=NO_WAIT)
    open_accounts(executor, {"acc": 1000})
    barrier = threading.Barrier(2)
    outcomes: dict[int, object] = {}

    def withdraw(amount: int) -> None:
        barrier.wait()
        try:
            outcomes[amount] = executor.execute(Withdraw("acc", amount))
        except ValidationFailed as error:
            outcomes[amount] = error

    threads = [threading.Thread(target=withdraw, args=(a,)) for a in (600, 700)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    failures = [o for o in outcomes.values() if isinstance(o, ValidationFailed)]
    assert len(failures) == 1
    assert balances(store)["acc"] in (400, 300)


class PriceSet(Event):
    event_type = "test.executor.PriceSet"
    price: int


class OrderPlaced(Event):
    event_type = "test.executor.OrderPlaced"
    price: int


class PlaceOrder(Command):
    """Reads the price list (never writes it) and records an order at the current price."""

    prices: str = stream()
    order: str = stream()

    def initial_state(self) -> int:
        return 0

    def apply(self, state: int, event: StoredEvent) -> int:
        return event.payload.price if isinstance(event.payload, PriceSet) else state

    def handle(self, state: int, ctx: CommandContext) -> Sequence[EventToWrite]:
        return [emit(self.order, OrderPlaced(price=state))]


def test_a_stream_only_read_is_version_checked_and_the_command_retried() -> None:
    store = MemoryStore()
    store.append([EventToWrite("prices", PriceSet(price=10))])
    executor = Executor(store, retry=NO_WAIT)
    steps = run_to_decision(executor, PlaceOrder("prices", "order-1"))
    store.append([EventToWrite("prices", PriceSet(price=12))])  # changes between read and commit
    step = next(steps)
    assert step.phase is Phase.BACKOFF and isinstance(step.error, ConcurrencyConflict)
    assert "prices" in step.error.streams
    result = finish(steps)
    assert result.attempts == 2
    assert [e.payload for e in result.events_written] == [OrderPlaced(price=12)]
    assert store.stream_version("prices") == 2  # read, never written


def test_exhausted_retries_raise_the_last_conflict_with_the_attempt_count() -> None:
    store = MemoryStore()
    store.append([EventToWrite("prices", PriceSet(price=1))])

    class Interfering:
        """A store wrapper on which someone always changes the price list just before each commit."""

        def __getattr__(self, name: str) -> object:
            return getattr(store, name)

        def append(self, events, expected=None):  # type: ignore[no-untyped-def]
            store.append([EventToWrite("prices", PriceSet(price=2))])
            return store.append(events, expected)

    executor = Executor(Interfering(), retry=RetryConfig(max_attempts=3, initial_delay=0, jitter=False))
    with pytest.raises(ConcurrencyConflict) as error:
        executor.execute(PlaceOrder("prices", "order-1"))
    assert error.value.attempts == 4 and "after 4 attempts" in str(error.value)
    assert store.stream_version("order-1") == 0


# -- the write guard and discovery ---------------------------------------------------------------------


class Note(Event):
    event_type = "test.executor.Note"
    text: str


class WriteElsewhere(Command):
    mine: str = stream()

    def handle(self, state: None, ctx: CommandContext) -> Sequence[EventToWrite]:
        return [emit(self.mine, Note(text="ok")), emit("not-declared", Note(text="sneaky"))]


def test_write_to_an_undeclared_stream_is_denied_and_writes_nothing() -> None:
    store = MemoryStore()
    with pytest.raises(StreamAccessDenied, match="not-declared") as error:
        Executor(store).execute(WriteElsewhere("mine"))
    assert error.value.code == "CE007" and not error.value.retriable
    assert store.head() == 0


class Discover(Command):
    """Adds ``extra`` streams one pass at a time, re-adding the ones it already has, then writes."""

    start: str = stream()
    extra: tuple[str, ...]
    passes_seen: list = None  # type: ignore[assignment]

    def initial_state(self) -> list[str]:
        return []

    def apply(self, state: list[str], event: StoredEvent) -> list[str]:
        return [*state, event.payload.text]

    def handle(self, state: list[str], ctx: CommandContext) -> Sequence[EventToWrite]:
        if self.passes_seen is not None:
            self.passes_seen.append((ctx.streams, list(state)))
        for sid in self.extra:
            if sid not in ctx.streams:
                ctx.add_streams(self.start, *ctx.streams, sid)  # re-adding known streams is a no-op
                return [emit("ignored", Note(text="discarded"))]
        return [emit(sid, Note(text="done")) for sid in ctx.streams]


def test_discovered_streams_are_read_folded_and_written() -> None:
    store = MemoryStore()
    store.append([EventToWrite("s0", Note(text="a")), EventToWrite("s1", Note(text="b"))])
    passes: list = []
    result = Executor(store).execute(Discover("s0", ("s1", "s2"), passes))
    assert [p[0] for p in passes] == [("s0",), ("s0", "s1"), ("s0", "s1", "s2")]
    assert passes[-1][1] == ["a", "b"]  # state rebuilt from all streams, in position order
    assert set(result.streams_affected) == {"s0", "s1", "s2"}
    assert store.stream_version("ignored") == 0  # writes from a pass that added streams are discarded


def test_discovered_streams_are_version_checked() -> None:
    store = MemoryStore()
    executor = Executor(store, retry=NO_WAIT)
    steps = executor.steps(Discover("s0", ("s1",)))
    phases = [next(steps).phase for _ in range(4)]
    assert phases == [Phase.READ, Phase.DECIDE, Phase.READ, Phase.DECIDE]
    store.append([EventToWrite("s1", Note(text="late"))])  # the discovered stream changes
    assert next(steps).phase is Phase.BACKOFF
    result = finish(steps)
    assert result.attempts == 2


def test_the_eleventh_discovery_pass_fails() -> None:
    ten_more = tuple(f"x{i}" for i in range(9))  # passes 1..10 add 9 streams, the 10th decides
    assert Executor(MemoryStore()).execute(Discover("s0", ten_more)).attempts == 1
    with pytest.raises(MaxIterationsExceeded) as error:
        Executor(MemoryStore()).execute(Discover("s0", (*ten_more, "x9")))
    assert error.value.code == "CE008"


# -- outcomes ----------------------------------------------------------------------------------------------


class Noop(Command):
    target: str = stream()

    def handle(self, state: None, ctx: CommandContext) -> Sequence[EventToWrite]:
        return []


def test_empty_write_list_is_a_successful_noop() -> None:
    store = MemoryStore()
    result = Executor(store).execute(Noop("t"))
    assert result.events_written == [] and result.streams_affected == () and result.attempts == 1
    assert store.head() == 0


class Refuse(Command):
    target: str = stream()

    def handle(self, state: None, ctx: CommandContext) -> Sequence[EventToWrite]:
        raise BusinessRuleViolation("we do not do that here")


def test_business_rule_violations_are_not_retried() -> None:
    with pytest.raises(BusinessRuleViolation) as error:
        Executor(MemoryStore(), retry=NO_WAIT).execute(Refuse("t"))
    assert error.value.attempts == 1 and error.value.code == "CE002"


def test_transient_store_errors_are_retried_by_default_but_not_by_conservative() -> None:
    class Flaky(MemoryStore):
        failures = 2

        def append(self, events, expected=None):  # type: ignore[no-untyped-def]
            if self.failures:
                self.failures -= 1
                raise ConnectionFailed("connection reset")
            return super().append(events, expected)

    store = Flaky()
    open_accounts(Executor(store), {})
    result = Executor(store, retry=NO_WAIT).execute(OpenAccount("acc", "ann", 5))
    assert result.attempts == 3
    conservative = RetryConfig.conservative()
    with pytest.raises(ConnectionFailed) as error:
        Executor(Flaky(), retry=conservative, sleep=lambda _: None).execute(OpenAccount("acc", "ann", 5))
    assert error.value.attempts == 1


def test_timeout_raises_and_writes_nothing() -> None:
    store = MemoryStore()
    ticks = iter([0.0, 0.0, 100.0, 100.0])
    executor = Executor(store, timeout=1.0)
    import eventcore_lab.core.executor as module

    real = module.time.monotonic
    module.time.monotonic = lambda: next(ticks)  # type: ignore[assignment]
    try:
        with pytest.raises(Timeout, match=r"within 1\.0 s"):
            executor.execute(OpenAccount("acc", "ann", 5))
    finally:
        module.time.monotonic = real
    assert store.head() == 0


def test_metadata_is_propagated_to_every_event() -> None:
    store = MemoryStore()
    executor = Executor(store)
    open_accounts(executor, {"A": 10, "B": 0})
    result = executor.execute(
        TransferMoney("A", "B", 5), correlation_id="req-1", causation_id="cmd-9", user_id="ann"
    )
    assert {
        (e.metadata.correlation_id, e.metadata.causation_id, e.metadata.user_id)
        for e in result.events_written
    } == {("req-1", "cmd-9", "ann")}
    given = Metadata(correlation_id="req-2", custom={"ip": "127.0.0.1"})
    [event] = executor.execute(Deposit("A", 1), metadata=given).events_written
    assert event.metadata == given


def test_retry_presets_and_backoff() -> None:
    default = RetryConfig()
    assert (
        default.max_attempts,
        default.initial_delay,
        default.max_delay,
        default.multiplier,
        default.jitter,
    ) == (
        5,
        0.05,
        1.0,
        2.0,
        True,
    )
    assert RetryConfig.none().max_attempts == 0
    conservative = RetryConfig.conservative()
    assert (conservative.max_attempts, conservative.initial_delay, conservative.max_delay) == (3, 0.1, 2.0)
    assert not conservative.retry_transient
    aggressive = RetryConfig.aggressive()
    assert (
        aggressive.max_attempts,
        aggressive.initial_delay,
        aggressive.max_delay,
        aggressive.multiplier,
    ) == (
        10,
        0.01,
        5.0,
        1.5,
    )
    plain = RetryConfig(jitter=False)
    rng = random.Random(1)
    assert [plain.delay(n, rng) for n in range(1, 7)] == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0]
    jittered = [default.delay(3, rng) for _ in range(200)]
    assert min(jittered) >= 0.1 and max(jittered) <= 0.2 and len(set(jittered)) > 100


def test_backoff_sleeps_between_attempts() -> None:
    store = MemoryStore()
    store.append([EventToWrite("prices", PriceSet(price=1))])
    slept: list[float] = []
    executor = Executor(store, retry=RetryConfig(jitter=False), sleep=slept.append)
    steps = run_to_decision(executor, PlaceOrder("prices", "o"))
    store.append([EventToWrite("prices", PriceSet(price=2))])
    step = next(steps)
    assert step.phase is Phase.BACKOFF and step.delay == 0.05
    assert finish(steps).attempts == 2
    assert executor.execute(PlaceOrder("prices", "o2")).attempts == 1 and slept == []


# -- properties over random command sequences --------------------------------------------------------


commands = st.lists(
    st.one_of(
        st.builds(OpenAccount, st.sampled_from("ABCD"), st.just("owner"), st.integers(0, 100)),
        st.builds(Deposit, st.sampled_from("ABCD"), st.integers(-5, 50)),
        st.builds(Withdraw, st.sampled_from("ABCD"), st.integers(-5, 80)),
        st.builds(TransferMoney, st.sampled_from("ABCD"), st.sampled_from("ABCD"), st.integers(-5, 80)),
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(commands)
def test_versions_gap_free_positions_increasing_and_no_overdraft(sequence: list[Command]) -> None:
    store = MemoryStore()
    executor = Executor(store)
    for command in sequence:
        with contextlib.suppress(ValidationFailed):
            executor.execute(command)
    events = store.read_all()
    assert [e.position for e in events] == list(range(1, len(events) + 1))
    for sid in store.stream_ids():
        assert [e.version for e in store.read_stream(sid)] == list(range(1, store.stream_version(sid) + 1))
    assert all(balance >= 0 for balance in balances(store).values())


class _Ignores:
    """An observer that ignores everything: with one, a command runs on the observed (generator) path."""

    def observe(self, observation: object) -> None:
        pass


class _RacedStore(MemoryStore):
    """An open account "acc" (balance 5); before each of the next ``races`` appends, another writer
    deposits 1 into it."""

    def __init__(self, races: int) -> None:
        super().__init__()
        self.races = 0
        Executor(self).execute(OpenAccount("acc", "ann", 5))
        self.races = races

    def append(self, events, expected=None):  # type: ignore[no-untyped-def]
        if self.races:
            self.races -= 1
            super().append([emit("acc", MoneyDeposited(amount=1))])
        return super().append(events, expected)


@pytest.mark.parametrize("observed", [False, True], ids=["plain", "observed"])
def test_the_plain_and_the_observed_path_retry_time_out_and_refuse_alike(observed: bool) -> None:
    """A command with no observer runs without generators; every outcome must match the observed run."""
    observers = [_Ignores()] if observed else []
    slept: list[float] = []

    store = _RacedStore(races=1)
    result = Executor(store, retry=NO_WAIT, observers=observers).execute(Deposit("acc", 10))
    assert result.attempts == 2  # the raced first attempt conflicted, the second committed
    assert balances(store) == {"acc": 16}

    store = _RacedStore(races=5)
    twice = RetryConfig(max_attempts=2, initial_delay=0, max_delay=0, jitter=False)
    with pytest.raises(ConcurrencyConflict) as conflict:
        Executor(store, retry=twice, observers=observers).execute(Deposit("acc", 10))
    assert conflict.value.attempts == 3

    store = _RacedStore(races=1)
    slow = RetryConfig(max_attempts=5, initial_delay=10, max_delay=10, jitter=False)
    executor = Executor(store, retry=slow, timeout=1.0, sleep=slept.append, observers=observers)
    with pytest.raises(Timeout, match=r"attempt 1, last phase backoff"):
        executor.execute(Deposit("acc", 10))
    assert slept == [] and balances(store) == {"acc": 6}

    with pytest.raises(Timeout, match=r"attempt 1, last phase read"):
        Executor(store, observers=observers).execute(Deposit("acc", 10), timeout=0.0)
    with pytest.raises(ValidationFailed, match="positive") as refused:
        Executor(store, observers=observers).execute(Deposit("acc", -1))
    assert refused.value.attempts == 1
    with pytest.raises(TypeError, match="expected a Command"):
        Executor(store, observers=observers).execute("not a command")  # type: ignore[arg-type]
    assert balances(store) == {"acc": 6}
