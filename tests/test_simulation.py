"""Workloads, the deterministic simulator, the threaded runner and the results frame."""

from __future__ import annotations

import gc
import itertools
import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import matplotlib
import pytest

from eventcore_lab import MemoryStore, RetryConfig
from eventcore_lab.core.errors import InvalidFormat, ValidationFailed
from eventcore_lab.examples import banking
from eventcore_lab.simulation import (
    COLUMNS,
    OUTCOMES,
    Draw,
    FixedKeys,
    Op,
    PhaseCosts,
    Uniform,
    Workload,
    Zipf,
    balances,
    bank_total,
    banking_workload,
    run_threads,
    simulate,
)
from eventcore_lab.simulation.scheduler import EPOCH
from eventcore_lab.stores.chaos import ChaosStore

UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

matplotlib.use("Agg")

FAST_RETRY = RetryConfig(max_attempts=10, initial_delay=0.0005, max_delay=0.01)


def assert_conserved(events: list) -> None:  # type: ignore[type-arg]
    assert sum(balances(events).values()) == bank_total(events)
    assert all(balance >= 0 for balance in balances(events).values())


# -- workloads -----------------------------------------------------------------------------------


def test_zipf_concentrates_on_hot_keys_and_uniform_does_not() -> None:
    keys = [f"k{i}" for i in range(20)]
    rng = random.Random(1)
    zipf = Counter(Zipf(keys, s=1.2).pick(rng, 0, 1)[0] for _ in range(4000))
    uniform = Counter(Uniform(keys).pick(rng, 0, 1)[0] for _ in range(4000))
    assert zipf["k0"] > 4 * zipf["k10"]
    assert max(uniform.values()) < 2 * min(uniform.values())
    assert sum(Zipf(keys).probabilities()) == pytest.approx(1.0)
    pair = Zipf(keys).pick(rng, 0, 2)
    assert len(set(pair)) == 2


def test_fixed_keys_partition_clients() -> None:
    choice = FixedKeys(["a", "b", "c", "d", "e"], per_client=2)
    assert choice.pick(random.Random(), 1, 2) == ["c", "d"]
    assert choice.pick(random.Random(), 2, 1)[0] in {"e", "a"}  # wraps around
    with pytest.raises(InvalidFormat, match="2 a client owns"):
        choice.pick(random.Random(), 0, 3)
    with pytest.raises(InvalidFormat, match="per_client"):
        FixedKeys(["a"], per_client=2)
    fixed = simulate(banking_workload(clients=10, accounts=20, commands=300, keys="fixed", seed=1))
    assert fixed.summary()["conflicts"] == 0 and fixed.summary()["succeeded"] > 200
    workload = Workload(
        mix={"deposit": (1, lambda d: banking.Deposit(d.key(), 5))},
        keys=FixedKeys([banking.account_stream(i) for i in range(8)]),
        clients=8,
        commands=200,
        setup=[banking.OpenAccount(banking.account_stream(i), "o") for i in range(8)],
    )
    result = simulate(workload)
    assert result.summary()["conflicts"] == 0 and result.summary()["succeeded"] == 200


def test_client_streams_are_seeded_per_client() -> None:
    workload = banking_workload(seed=4)
    first = [next(workload.stream_for(3))[1] for _ in range(1)]
    again = [next(workload.stream_for(3))[1] for _ in range(1)]
    assert first == again
    assert [workload.quota(c) for c in range(3)] == [20, 20, 20]
    mixed = Counter(next(iter(workload.stream_for(c)))[0] for c in range(50))
    assert set(mixed) <= {"transfer", "deposit", "withdraw"}


@pytest.mark.parametrize(
    "kwargs, problem",
    [
        ({"mix": []}, "at least one Op"),
        ({"mix": [Op("x", lambda d: None, -1)]}, "weights"),
        ({"keys": ["a"]}, "KeyChoice"),
        ({"clients": 0}, "clients"),
        ({"commands": None}, "exactly one"),
        ({"duration": 5.0}, "exactly one"),
        ({"think_time": (2.0, 1.0)}, "think_time"),
    ],
)
def test_bad_workloads_are_refused(kwargs: dict[str, object], problem: str) -> None:
    base: dict[str, object] = {
        "mix": [Op("d", lambda d: banking.Deposit(d.key(), 1))],
        "keys": Uniform(["a"]),
    }
    with pytest.raises(InvalidFormat, match=problem):
        Workload(**{**base, **kwargs})  # type: ignore[arg-type]


def test_bad_key_choices_are_refused() -> None:
    with pytest.raises(InvalidFormat, match="non-empty"):
        Uniform([])
    with pytest.raises(InvalidFormat, match="distinct"):
        Zipf(["a", "a"])
    with pytest.raises(InvalidFormat, match="2 distinct keys from 1"):
        Draw(random.Random(), 0, Uniform(["a"])).keys(2)
    with pytest.raises(InvalidFormat, match="keys must be one of"):
        banking_workload(keys="hot")


def test_a_maker_that_returns_no_command_is_reported() -> None:
    workload = Workload(mix=[Op("broken", lambda d: "deposit")], keys=Uniform(["a"]), commands=1)  # type: ignore[arg-type,return-value]
    with pytest.raises(InvalidFormat, match="op 'broken' made 'deposit', not a Command"):
        simulate(workload)


# -- determinism -------------------------------------------------------------------------------------


def test_same_seed_same_frame_and_history_different_seed_differs() -> None:
    runs = [simulate(banking_workload(clients=50, commands=600, keys="zipf", seed=s)) for s in (7, 7, 8)]
    a, b, c = runs
    assert list(a.frame.columns) == COLUMNS
    assert a.frame.equals(b.frame)
    events_a, events_b, events_c = (run.store.read_all() for run in runs)
    assert events_a == events_b  # whole stored events: event_id and recorded_at included
    assert [e.event_id for e in events_a] == [e.event_id for e in events_b]
    assert [e.recorded_at for e in events_a] == [e.recorded_at for e in events_b]
    assert not a.frame.equals(c.frame)
    assert events_a != events_c
    assert not {e.event_id for e in events_a} & {e.event_id for e in events_c}, "the seed picks the ids"
    assert a.summary()["conflicts"] > 0  # the interleaving really produced contention


def _what_was_stored(store: object) -> list[tuple[object, ...]]:
    """Every stored event but its id and time (a store passed in keeps its own clock and ids)."""
    return [
        (e.stream_id, e.version, e.position, e.event_type, e.payload, e.metadata)
        for e in store.read_all()  # type: ignore[attr-defined]
    ]


@pytest.mark.parametrize("chaos", [False, True], ids=["memory", "chaos"])
def test_same_seed_same_run_on_a_store_passed_in_with_and_without_chaos(chaos: bool) -> None:
    # long enough (1,200 commands) for the scheduler's periodic garbage collections to happen mid-run
    def run() -> tuple[object, object]:
        store = ChaosStore(MemoryStore(), seed=4) if chaos else MemoryStore()
        workload = banking_workload(accounts=100, clients=50, commands=1200, seed=11)
        return simulate(workload, store, retry=FAST_RETRY), store

    (first, store_a), (second, store_b) = run(), run()
    assert first.frame.equals(second.frame)  # type: ignore[attr-defined]
    assert first.summary().equals(second.summary())  # type: ignore[attr-defined]
    assert _what_was_stored(store_a) == _what_was_stored(store_b)
    if chaos:
        assert store_a.stats == store_b.stats  # type: ignore[attr-defined]
        assert store_a.stats.failures > 0 and store_a.stats.conflicts > 0  # type: ignore[attr-defined]
    assert first.summary()["conflicts"] > 0  # type: ignore[attr-defined]
    assert gc.isenabled()  # the collector paused for the run is running again


def test_the_collector_runs_again_after_a_failed_run() -> None:
    made = itertools.count()

    def broken(draw: Draw) -> banking.Deposit:
        if next(made) == 10:  # mid-run: the first three are made before the clients start
            raise RuntimeError("a maker failed")
        return banking.Deposit(draw.key(), 1)

    workload = Workload(mix=[Op("d", broken)], keys=Uniform(["account-1"]), clients=3, commands=50)
    with pytest.raises(RuntimeError, match="a maker failed"):
        simulate(workload)
    assert gc.isenabled()


def test_default_store_records_virtual_time_and_repeatable_v7_ids() -> None:
    result = simulate(banking_workload(clients=5, commands=50, think_time=(1.0, 2.0), seed=3))
    events = result.store.read_all()
    assert all(EPOCH <= e.recorded_at <= EPOCH + timedelta(seconds=result.elapsed) for e in events)
    assert events[-1].recorded_at - events[0].recorded_at > timedelta(seconds=10)  # virtual, not real, time
    assert all(a.event_id < b.event_id for a, b in itertools.pairwise(events))
    for event in events:
        assert event.event_id.version == 7
        assert event.event_id.int >> 80 == (event.recorded_at - UNIX_EPOCH) // timedelta(milliseconds=1)


def test_a_store_passed_in_keeps_its_own_clock_and_ids() -> None:
    store = MemoryStore()
    before = datetime.now(UTC)
    simulate(banking_workload(clients=2, commands=10, seed=3), store)
    assert all(e.recorded_at >= before for e in store.read_all())  # real time, not the virtual EPOCH


def test_simulated_time_is_virtual_and_seen_by_commands() -> None:
    result = simulate(banking_workload(clients=5, commands=50, think_time=(1.0, 2.0), seed=1))
    frame = result.frame
    assert frame["start"].min() >= 1.0  # think time happens before each command
    assert result.elapsed > 10  # 10 commands per client, >= 1 virtual second apart: no real waiting
    created = {e.metadata.correlation_id for e in result.store.read_all()}
    assert "c0-0" in created and "setup" in created


def test_duration_bounds_the_run() -> None:
    workload = banking_workload(clients=4, commands=None, duration=0.5, seed=2)
    result = simulate(workload, costs=PhaseCosts(read=0.01, decide=0.001, commit=0.01))
    assert len(result.frame) > 10
    assert result.frame["start"].max() < 0.5


def test_chaos_latency_runs_in_virtual_time() -> None:
    slept: list[float] = []
    store = ChaosStore(
        MemoryStore(), failure_probability=0.0, conflict_probability=0.0, seed=1, sleep=slept.append
    )
    result = simulate(banking_workload(clients=2, commands=10, seed=1), store)
    assert slept == []  # the simulator swapped in virtual time
    assert store.sleep == slept.append  # and restored the store's own sleep
    assert result.frame["latency"].min() >= 0.1  # read + commit each waited >= 50 ms


def test_setup_failures_propagate() -> None:
    workload = Workload(
        mix=[Op("d", lambda d: banking.Deposit(d.key(), 1))],
        keys=Uniform(["account-1"]),
        commands=1,
        setup=[banking.OpenAccount("account-1", "")],
    )
    with pytest.raises(ValidationFailed, match="owner"):
        simulate(workload)


# -- results -----------------------------------------------------------------------------------------


def test_results_frame_and_summary_agree() -> None:
    result = simulate(banking_workload(clients=20, commands=300, keys="zipf", seed=3))
    f, s = result.frame, result.summary()
    assert len(f) == s["commands"] == 300
    assert set(f["outcome"]) <= set(OUTCOMES)
    assert s["succeeded"] + s["rejected"] + s["failed"] == 300
    assert s["attempts"] == f["attempts"].sum() and s["mean_attempts"] == pytest.approx(f["attempts"].mean())
    assert s["p50_ms"] <= s["p95_ms"] <= s["p99_ms"]
    ok = f[f["outcome"] == "ok"]
    assert (ok["events"] > 0).all() and (f.loc[f["outcome"] == "rejected", "events"] == 0).all()
    rejected = f[f["outcome"] == "rejected"]
    assert rejected["error"].str.startswith("CE001").all()
    conflicts = result.conflicts_by_stream()
    assert conflicts.index[0] == "account-0"  # the Zipf hot key
    assert conflicts.sum() >= f["conflicts"].sum()
    rates = result.throughput(bins=5)
    assert len(rates) == 5
    width = rates.index[1] - rates.index[0]
    assert (rates["committed_per_s"] * width).sum() == pytest.approx(s["succeeded"])


def test_plots_show_the_data() -> None:
    import matplotlib.pyplot as plt

    from eventcore_lab.display import plot_problems

    result = simulate(banking_workload(clients=20, commands=200, keys="zipf", seed=3))
    before = plt.get_fignums()
    fig = result.plot()
    assert plt.get_fignums() == before  # not registered with pyplot: a notebook shows it once, not twice
    assert plot_problems(fig) == [] and fig.get_figwidth() * fig.dpi <= 1000
    latency, heat, rates = fig.axes[:3]
    assert sum(p.get_height() for p in latency.patches) == result.summary()["succeeded"]
    assert heat.get_yticklabels()[0].get_text() == "account-0"
    assert heat.images[0].get_array().sum() == result.conflicts_by_stream()[:15].sum()
    assert [line.get_label() for line in rates.get_lines()] == ["committed / s", "conflicts / s"]


def test_progress_bar(capsys: pytest.CaptureFixture[str]) -> None:
    simulate(banking_workload(clients=2, commands=10), progress=True)
    assert "simulating" in capsys.readouterr().err


# -- conservation in every mode and on every store -------------------------------------------------------


def test_banking_conserves_money_simulated_with_and_without_chaos() -> None:
    for store in (MemoryStore(), ChaosStore(MemoryStore(), seed=2)):
        result = simulate(
            banking_workload(clients=50, commands=500, keys="zipf", seed=5), store, retry=FAST_RETRY
        )
        assert result.summary()["succeeded"] > 300
        assert_conserved(store.read_all())


def test_banking_conserves_money_with_threads_and_chaos() -> None:
    for store in (MemoryStore(), ChaosStore(MemoryStore(), seed=2, latency=None)):
        result = run_threads(
            banking_workload(clients=50, commands=500, keys="zipf", seed=5), store, retry=FAST_RETRY
        )
        assert result.summary()["succeeded"] > 300 and result.mode == "threads"
        assert_conserved(store.read_all())
