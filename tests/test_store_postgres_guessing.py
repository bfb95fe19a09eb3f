"""The PostgreSQL stream cache guessing unseen streams empty: one round trip for a command on new
streams, and a wrong guess never decides anything (the append's check or a real read corrects it)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest

from eventcore_lab import Command, Event, EventToWrite, StoredEvent, emit, stream
from eventcore_lab.core.command import CommandContext
from eventcore_lab.core.errors import TooLong
from eventcore_lab.core.executor import Executor
from eventcore_lab.core.retry import RetryConfig
from eventcore_lab.errors import BusinessRuleViolation, ConnectionFailed, TransactionError, ValidationFailed
from eventcore_lab.examples.banking import (
    AccountOpened,
    Deposit,
    MoneyDeposited,
    MoneyTransferred,
    OpenAccount,
    TransferMoney,
    account_stream,
)
from eventcore_lab.stores.chaos import ChaosStore
from eventcore_lab.stores.postgres import PostgresStore


class Noted(Event):
    registration = "on_first_use"
    event_type = "test_store_postgres_guessing.Noted"
    text: str


class _Counting(Command[int]):
    """Folds a stream into its number of events."""

    subject: str = stream()

    def initial_state(self) -> int:
        return 0

    def apply(self, state: int, event: StoredEvent) -> int:
        return state + 1


class NoteAgain(_Counting):
    """Writes only to a stream that has events already: on an empty one it decides to do nothing."""

    def handle(self, state: int, ctx: CommandContext) -> Sequence[EventToWrite]:
        return [emit(self.subject, Noted(text="again"))] if state else []


class Recording:
    """A store whose database reads of streams are recorded through the public ``read_hook``."""

    def __init__(self, url: str, schema: str, **options: object) -> None:
        self.reads: list[list[str]] = []
        self.store = PostgresStore(url, schema=schema, pool_max=4, read_hook=self.reads.append, **options)  # type: ignore[arg-type]


@pytest.fixture
def stores(pg_url: str, pg_schema: str) -> Iterator[tuple[Recording, Recording]]:
    """Two guessing stores on one schema, as two processes would have."""
    first = Recording(pg_url, pg_schema, cache_events=1000)
    second = Recording(pg_url, pg_schema, cache_events=1000)
    try:
        yield first, second
    finally:
        first.store.close()
        second.store.close()


def kinds(store: PostgresStore, stream_id: str) -> list[type]:
    return [type(e.payload) for e in store.read_stream(stream_id)]


def test_a_command_on_new_streams_reads_nothing_from_the_database(
    stores: tuple[Recording, Recording],
) -> None:
    first, _ = stores
    result = Executor(first.store).execute(OpenAccount(account_stream(1), "ann", 10))
    assert first.reads == []
    assert result.attempts == 1 and [e.version for e in result.events_written] == [1]
    assert first.store.guess_stats == {"guessed": 1, "confirmed": 0}
    Executor(first.store).execute(Deposit(account_stream(1), 5))  # cached since written: no read either
    assert first.reads == []
    assert kinds(first.store, account_stream(1)) == [AccountOpened, MoneyDeposited]


def test_a_wrong_guess_that_would_write_conflicts_and_the_rerun_decides_on_the_real_stream(
    stores: tuple[Recording, Recording],
) -> None:
    first, second = stores
    Executor(first.store).execute(OpenAccount(account_stream(2), "ann", 10))
    with pytest.raises(ValidationFailed, match="already exists"):  # guessed empty, it would open it again
        Executor(second.store).execute(OpenAccount(account_stream(2), "bob", 99))
    assert second.reads == [[account_stream(2)]]  # the rerun read it for real
    assert second.store.guess_stats == {"guessed": 1, "confirmed": 1}
    [opened] = first.store.read_stream(account_stream(2))
    assert opened.payload == AccountOpened(owner="ann", initial_balance=10, daily_limit=None)
    with pytest.raises(ValidationFailed, match="already exists"):  # never guessed again: read at once
        Executor(second.store).execute(OpenAccount(account_stream(2), "bob", 99))
    assert second.store.guess_stats == {"guessed": 1, "confirmed": 1}


def test_a_refusal_on_a_guess_is_confirmed_by_a_real_read(stores: tuple[Recording, Recording]) -> None:
    first, second = stores
    executor = Executor(first.store)
    executor.execute(OpenAccount(account_stream(3), "ann", 10))
    executor.execute(OpenAccount(account_stream(4), "cy", 0))
    result = Executor(second.store).execute(TransferMoney(account_stream(3), account_stream(4), 7))
    assert result.attempts == 1  # the guess ("no such account") was corrected, not retried as contention
    assert second.reads == [[account_stream(3), account_stream(4)]]
    assert second.store.guess_stats == {"guessed": 2, "confirmed": 2}
    balances = {
        sid: sum(
            e.payload.amount * (1 if e.stream_id == e.payload.to_account else -1)
            for e in first.store.read_stream(sid)[1:]
        )
        for sid in (account_stream(3), account_stream(4))
    }
    assert balances == {account_stream(3): -7, account_stream(4): 7}
    with pytest.raises(ValidationFailed, match="does not exist"):  # truly missing: refused after a real read
        Executor(second.store).execute(Deposit(account_stream(99), 5))
    assert second.reads[-1] == [account_stream(99)]
    assert first.store.read_stream(account_stream(99)) == []


def test_a_decision_to_write_nothing_on_a_guess_is_confirmed(stores: tuple[Recording, Recording]) -> None:
    first, second = stores
    Executor(first.store).execute(NoteAgain("n-1"))  # empty for real: nothing written, after a real read
    assert first.reads == [["n-1"]] and first.store.read_stream("n-1") == []
    first.store.append([emit("n-1", Noted(text="first"))])
    result = Executor(second.store).execute(NoteAgain("n-1"))  # guessed empty; the real read writes
    assert [e.payload for e in result.events_written] == [Noted(text="again")]
    assert second.reads == [["n-1"]]
    assert [e.version for e in first.store.read_stream("n-1")] == [1, 2]


def test_no_guess_without_the_cache_or_when_turned_off(pg_url: str, pg_schema: str) -> None:
    for options in ({}, {"cache_events": 1000, "guess_unseen": False}):
        recording = Recording(pg_url, pg_schema, **options)
        with recording.store as store:
            Executor(store).execute(OpenAccount(account_stream(f"off-{len(options)}"), "ann", 1))
            assert recording.reads == [[account_stream(f"off-{len(options)}")]]
            assert store.guess_stats == {"guessed": 0, "confirmed": 0}


def test_a_guessed_stream_written_concurrently_by_another_store_ends_in_one_correct_history(
    stores: tuple[Recording, Recording],
) -> None:
    """Both stores guess the same new stream empty and decide at once; the append's check lets one in."""
    first, second = stores
    sid = account_stream(5)
    a = Executor(first.store).steps(OpenAccount(sid, "ann", 1))
    b = Executor(second.store).steps(OpenAccount(sid, "bob", 2))
    next(a), next(b)  # both read (guessing: no database) ...
    with pytest.raises(StopIteration):
        while True:
            next(a)  # ... ann commits first
    with pytest.raises((ValidationFailed, BusinessRuleViolation)):
        while True:
            next(b)  # bob's append conflicts; the rerun reads ann's account and refuses
    [opened] = first.store.read_stream(sid)
    assert opened.payload.owner == "ann"
    assert second.store.guess_stats["confirmed"] == 1


def test_streams_cached_at_different_moments_are_served_and_a_refusal_on_them_is_confirmed(
    stores: tuple[Recording, Recording],
) -> None:
    """Two accounts opened by separate appends are cached from different moments: a transfer uses them
    without a read (the append checks both); a refusal on them is confirmed by one real read."""
    first, _ = stores
    executor = Executor(first.store)
    executor.execute(OpenAccount(account_stream(6), "ann", 10))
    executor.execute(OpenAccount(account_stream(7), "cy", 0))
    executor.execute(TransferMoney(account_stream(6), account_stream(7), 4))
    assert first.reads == []
    executor.execute(Deposit(account_stream(6), 100))  # account 6 is now cached from a later moment
    with pytest.raises(ValidationFailed, match="insufficient"):
        executor.execute(TransferMoney(account_stream(7), account_stream(6), 1_000))
    assert first.reads == [[account_stream(7), account_stream(6)]]  # confirmed on a real read first
    assert [type(e.payload) for e in first.store.read_stream(account_stream(7))] == [
        AccountOpened,
        MoneyTransferred,
    ]


class NoteOnce(_Counting):
    """On an empty stream it writes a long note, which the store refuses; otherwise a short one."""

    def handle(self, state: int, ctx: CommandContext) -> Sequence[EventToWrite]:
        return [emit(self.subject, Noted(text="short" if state else "long " * 100))]


def test_an_append_refusing_what_a_guess_decided_is_confirmed_by_a_real_read(
    pg_url: str, pg_schema: str
) -> None:
    with PostgresStore(pg_url, schema=pg_schema, max_payload_bytes=200) as first:
        first.append([emit("o-1", Noted(text="first"))])
    small = Recording(pg_url, pg_schema, cache_events=1000, max_payload_bytes=200)
    with small.store as store:
        result = Executor(store).execute(NoteOnce("o-1"))  # guessed empty: a long note, refused
        assert [e.payload for e in result.events_written] == [Noted(text="short")]
        assert small.reads == [["o-1"]] and store.guess_stats == {"guessed": 1, "confirmed": 1}
        with pytest.raises(TooLong):  # truly empty: the long note is refused, as without guessing
            Executor(store).execute(NoteOnce("o-2"))
        assert store.read_stream("o-2") == []


def test_a_wrapper_forwarding_unknown_attributes_does_not_pass_guessing_reads_through(
    stores: tuple[Recording, Recording],
) -> None:
    """A ChaosStore forwards unknown attributes to its inner store; the executor must still read through
    the wrapper (where faults are injected), not hand a guessing read to the store behind it."""
    first, _ = stores
    chaos = ChaosStore(first.store, failure_probability=1.0, conflict_probability=0.0, latency=None, seed=1)
    with pytest.raises((ConnectionFailed, TransactionError)):  # the injected read fault, not a guess
        Executor(chaos, retry=RetryConfig.none()).execute(OpenAccount(account_stream(8), "ann", 1))
    assert first.store.guess_stats == {"guessed": 0, "confirmed": 0}
    assert first.store.read_stream(account_stream(8)) == []
