"""The chaos store: seeded faults, injected before anything is written, and the manual's chaos scenario."""

from __future__ import annotations

import pytest

from eventcore_lab import EventToWrite, ExpectedVersion, MemoryStore, RetryConfig
from eventcore_lab.core.errors import InvalidFormat
from eventcore_lab.errors import ConnectionFailed, TransactionError, VersionConflict
from eventcore_lab.examples.banking import AccountOpened, MoneyDeposited
from eventcore_lab.examples.tasks import CreateTask
from eventcore_lab.simulation import FixedKeys, Op, Workload, run_threads, simulate
from eventcore_lab.stores.chaos import ChaosStore

WRITE = [EventToWrite("account-1", MoneyDeposited(amount=5))]


def quiet(inner: MemoryStore | None = None, **kwargs: object) -> ChaosStore:
    return ChaosStore(inner or MemoryStore(), sleep=lambda _s: None, **kwargs)  # type: ignore[arg-type]


def test_defaults_are_the_manuals() -> None:
    store = ChaosStore(MemoryStore())
    assert (store.failure_probability, store.conflict_probability, store.latency) == (0.1, 0.2, (0.05, 0.2))


def test_injected_failures_write_nothing_and_are_retriable() -> None:
    inner = MemoryStore()
    store = quiet(inner, failure_probability=1.0, conflict_probability=0.0, seed=1)
    kinds = set()
    for _ in range(20):
        with pytest.raises((ConnectionFailed, TransactionError)) as info:
            store.append(WRITE)
        assert info.value.retriable
        kinds.add(type(info.value))
    assert kinds == {ConnectionFailed, TransactionError}
    assert inner.head() == 0 and store.stats.failures == 20
    with pytest.raises((ConnectionFailed, TransactionError)):
        store.read_streams(["account-1"])


def test_injected_conflicts_name_checked_streams_and_write_nothing() -> None:
    inner = MemoryStore()
    inner.append([EventToWrite("account-1", AccountOpened(owner="ann"))])
    store = quiet(inner, failure_probability=0.0, conflict_probability=1.0, seed=1)
    with pytest.raises(VersionConflict) as info:
        store.append(WRITE, {"account-1": ExpectedVersion.exact(1)})
    assert info.value.streams == ("account-1",)
    assert "injected conflict" in info.value.message and "actual version 1" in info.value.message
    assert inner.head() == 1
    # an unchecked append cannot conflict, and reads never do
    assert len(store.append(WRITE)) == 1
    assert store.read_streams(["account-1"]).versions == {"account-1": 2}


def test_latency_goes_through_the_sleep_callable_within_range() -> None:
    slept: list[float] = []
    store = ChaosStore(
        MemoryStore(), failure_probability=0, conflict_probability=0, latency=(0.05, 0.2), sleep=slept.append
    )
    for _ in range(50):
        store.append(WRITE)
    assert len(slept) == 50 and all(0.05 <= s <= 0.2 for s in slept)
    assert store.stats.latency == pytest.approx(sum(slept))
    none = quiet(failure_probability=0, conflict_probability=0, latency=None)
    none.append(WRITE)
    assert none.stats.latency == 0


def test_same_seed_same_faults() -> None:
    def outcomes(seed: int) -> list[str]:
        store = quiet(seed=seed, failure_probability=0.3, conflict_probability=0.3)
        result = []
        for _ in range(40):
            try:
                version = store.stream_version("account-1")
                store.append(WRITE, {"account-1": ExpectedVersion.exact(version)})
                result.append("ok")
            except Exception as error:  # the outcome is what we compare
                result.append(type(error).__name__)
        return result

    assert outcomes(5) == outcomes(5)
    assert outcomes(5) != outcomes(6)
    assert {"ok", "VersionConflict"} <= set(outcomes(5))


def test_passes_other_calls_through() -> None:
    inner = MemoryStore()
    store = quiet(inner, failure_probability=1.0)
    inner.append(WRITE)
    assert store.head() == 1 and store.stream_version("account-1") == 1
    assert [e.version for e in store.read_stream("account-1")] == [1]
    assert len(store.read_all()) == 1 and store.stream_ids() == ["account-1"]
    assert "ChaosStore" in repr(store)


@pytest.mark.parametrize(
    "kwargs, problem",
    [
        ({"failure_probability": 1.5}, "failure_probability"),
        ({"conflict_probability": -0.1}, "conflict_probability"),
        ({"latency": (0.2, 0.1)}, "latency"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, object], problem: str) -> None:
    with pytest.raises(InvalidFormat, match=problem):
        ChaosStore(MemoryStore(), **kwargs)  # type: ignore[arg-type]


def make_task(draw):  # type: ignore[no-untyped-def]
    return CreateTask(draw.key(), "write the chaos test", "", "ann")


CHAOS_WORKLOAD = Workload(
    mix=[Op("create", make_task)],
    keys=FixedKeys([f"task-{i}" for i in range(100)]),
    clients=100,
    commands=100,
    seed=3,
)


def test_manual_chaos_scenario_simulated() -> None:
    """Failure 0.1, conflict 0.2, latency 50-200 ms, 10 retries: over 95 % of 100 commands succeed."""
    store = ChaosStore(MemoryStore(), seed=11)
    result = simulate(CHAOS_WORKLOAD, store, retry=RetryConfig(max_attempts=10))
    summary = result.summary()
    assert summary["success_rate"] > 0.95
    assert store.stats.failures > 0 and store.stats.conflicts > 0  # faults really happened
    assert result.frame["attempts"].max() > 1
    assert store.head() == summary["succeeded"]


def test_manual_chaos_scenario_with_threads() -> None:
    store = quiet(seed=12)
    result = run_threads(CHAOS_WORKLOAD, store, retry=RetryConfig(max_attempts=10), sleep=lambda _s: None)
    assert result.summary()["success_rate"] > 0.95
    assert store.stats.failures > 0 and store.stats.conflicts > 0
    assert store.inner.head() == result.summary()["succeeded"]
