"""The explorer as a person uses it: counterexamples, bounds, bad input, the client seam, hypothesis."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from eventcore_lab import MemoryStore
from eventcore_lab.core.errors import InvalidFormat
from eventcore_lab.core.events import EventToWrite
from eventcore_lab.examples.wallets import (
    Fund,
    Pay,
    PayFast,
    PaymentCredited,
    WalletFunded,
    balances,
    books_balance,
    fold_balances,
)
from eventcore_lab.modeling.timeline import Timeline
from eventcore_lab.projections import Projection, handles
from eventcore_lab.simulation import (
    Client,
    ConcurrentScenario,
    Counterexample,
    Move,
    assert_every_interleaving,
    concurrent_scenarios,
    explore,
    on_projection,
)
from eventcore_lab.testing.scenario import Scenario

WALLETS = ("wallet-a", "wallet-b", "wallet-c")


def funded() -> ConcurrentScenario:
    scenario = ConcurrentScenario("wallets")
    for wallet in WALLETS:
        scenario = scenario.given(wallet, WalletFunded(amount=100))
    return scenario


def broken() -> ConcurrentScenario:
    return (
        funded()
        .client(PayFast("wallet-a", "wallet-b", 60))
        .client(PayFast("wallet-a", "wallet-c", 60))
        .client(PayFast("wallet-b", "wallet-c", 20))
    )


def conserved(store: Any) -> bool:
    return books_balance(store, funded=300)


# -- counterexamples ----------------------------------------------------------------------------------


def test_a_counterexample_replays_step_by_step_to_the_broken_state() -> None:
    example = explore(broken(), conserved).counterexample
    assert example is not None
    replayed = list(example.replay())
    assert [r.step for r, _ in replayed] == list(range(1, len(example) + 1))
    assert [r.phase for r, _ in replayed] == ["read", "decide", "commit"] * 2
    with pytest.raises(AssertionError, match="wallet-a is overdrawn: balance -20"):
        conserved(example.final_store())
    # every store before the last step still satisfies the invariant
    store = example.scenario.new_store()
    for number, (record, after) in enumerate(example.replay(), start=1):
        if number < len(example):
            assert conserved(after), record
        store = after
    assert store.head() == 5


def test_the_phase_table_has_one_column_per_client_and_the_step_table_one_row_per_step() -> None:
    example = explore(broken(), conserved).counterexample
    assert example is not None
    phases = example.phases()
    assert list(phases.columns) == ["client 1", "client 2", "client 3"]
    assert len(phases) == len(example)
    assert (phases["client 3"] == "").all()  # the third client is not needed to break it
    assert phases.iloc[-1]["client 2"] == "commit (PayFast)"
    table = example.table()
    assert list(table.columns) == ["client", "command", "phase", "attempt", "streams", "detail"]
    assert table.loc[len(example), "detail"] == "1 event(s) written"
    assert "overdrawn" in example._repr_html_() and "<table" in example._repr_html_()


def test_the_counterexample_is_drawn_on_the_timeline_with_each_commit_labelled() -> None:
    example = explore(broken(), conserved).counterexample
    assert example is not None
    picture = example.timeline()
    assert isinstance(picture, Timeline)
    assert [c.label for c in picture.commits()][-2:] == ["client 1: PayFast", "client 2: PayFast"]
    assert "wallet-c" in picture.streams and "<svg" in picture.svg()


def test_the_counterexample_becomes_a_given_when_then_scenario_that_reproduces_it() -> None:
    example = explore(broken(), conserved).counterexample
    assert example is not None
    spec = example.scenario_spec()
    assert isinstance(spec, Scenario)
    assert spec.command == PayFast("wallet-a", "wallet-c", 60)
    store = MemoryStore()
    spec.verify(store)  # the command, run alone on that history, writes what it wrote in the interleaving
    with pytest.raises(AssertionError, match="overdrawn"):
        conserved(store)


def test_the_scenario_code_can_be_pasted_into_a_test() -> None:
    example = explore(broken(), conserved).counterexample
    assert example is not None
    code = example.scenario_code()
    assert (
        code.startswith("spec = (")
        and ".when(PayFast(payer='wallet-a', payee='wallet-c', amount=60))" in code
    )
    namespace: dict[str, Any] = {
        "Scenario": Scenario,
        "WalletFunded": WalletFunded,
        "PaymentCredited": PaymentCredited,
        "PayFast": PayFast,
    }
    exec(code, namespace)  # runs spec.verify(): it raises if the pasted scenario does not reproduce
    assert isinstance(namespace["spec"], Scenario)


def test_an_invariant_broken_by_the_history_itself_is_a_counterexample_of_no_steps() -> None:
    scenario = ConcurrentScenario("overdrawn from the start").given(
        "wallet-b", PaymentCredited(payer="wallet-a", amount=5)
    )
    report = explore(scenario.client(Fund("wallet-a", 1)), conserved)
    assert report.counterexample is not None and len(report.counterexample) == 0
    assert "wallet-a is overdrawn" in report.counterexample.message
    with pytest.raises(InvalidFormat, match="initial history"):
        report.counterexample.scenario_spec()


def test_an_invariant_returning_false_is_reported_by_name() -> None:
    def never_more_than_one_payment(store: Any) -> bool:
        return sum(isinstance(e.payload, PaymentCredited) for e in store.read_all()) <= 1

    report = explore(
        funded()
        .client(Pay("wallet-a", "wallet-b", WALLETS, 10))
        .client(Pay("wallet-b", "wallet-c", WALLETS, 10)),
        never_more_than_one_payment,
    )
    assert report.counterexample is not None
    assert report.counterexample.message == "never_more_than_one_payment returned False"


def test_a_replayed_retry_reports_its_phases_and_attempt_numbers() -> None:
    scenario = (
        funded()
        .client(Pay("wallet-a", "wallet-b", WALLETS, 10))
        .client(Pay("wallet-b", "wallet-c", WALLETS, 10))
    )
    both_read_then_one_commits = (0, 1, 0, 1, 0, 1, 1, 1, 1)
    steps = Counterexample(scenario, both_read_then_one_commits, "").steps()
    assert [(r.client, r.phase, r.attempt) for r in steps[4:]] == [
        ("client 1", "commit", 1),
        ("client 2", "backoff", 1),
        ("client 2", "read", 2),
        ("client 2", "decide", 2),
        ("client 2", "commit", 2),
    ]
    assert steps[5].streams == ("wallet-b",) and "ConcurrencyConflict" in steps[5].detail
    with pytest.raises(InvalidFormat, match="already finished"):
        Counterexample(scenario, (0, 0, 0, 0), "").steps()


class Balances(Projection):
    """A read model of every wallet's balance."""

    def __init__(self) -> None:
        self.money: dict[str, int] = {}

    @handles(WalletFunded, PaymentCredited)
    def on_money(self, event: Any) -> None:
        fold_balances(self.money, event)


def test_an_invariant_can_be_stated_on_a_projection() -> None:
    def nobody_overdrawn(view: Balances) -> bool:
        return all(balance >= 0 for balance in view.money.values())

    invariant = on_projection(Balances, nobody_overdrawn)
    broken_report = explore(broken(), invariant)
    assert broken_report.counterexample is not None
    assert broken_report.counterexample.message == "nobody_overdrawn returned False"
    assert len(broken_report.counterexample) == 6
    careful = (
        funded()
        .client(Pay("wallet-a", "wallet-b", WALLETS, 60))
        .client(Pay("wallet-a", "wallet-c", WALLETS, 60))
    )
    assert explore(careful, invariant).holds
    with pytest.raises(InvalidFormat, match="two callables"):
        on_projection(Balances, "no")  # type: ignore[arg-type]


# -- bounds and budgets -------------------------------------------------------------------------------


def careful_three() -> ConcurrentScenario:
    return (
        funded()
        .client(Pay("wallet-a", "wallet-b", WALLETS, 10))
        .client(Pay("wallet-b", "wallet-c", WALLETS, 10))
        .client(Pay("wallet-c", "wallet-a", WALLETS, 10))
    )


def test_a_depth_bound_makes_the_search_incomplete_and_says_so() -> None:
    report = explore(careful_three(), conserved, max_depth=4)
    assert report.truncated > 0 and not report.complete and not report.holds
    assert report.counterexample is None
    assert "not checked completely" in str(report)
    full = explore(careful_three(), conserved)
    assert full.holds and full.states > report.states


def test_the_state_limit_and_the_time_budget_stop_the_search() -> None:
    limited = explore(careful_three(), conserved, max_states=50)
    assert limited.stopped_by == "state limit" and not limited.complete
    assert 50 <= limited.states < 50 + 64
    hurried = explore(careful_three(), conserved, time_budget=1e-6)
    assert hurried.stopped_by == "time budget" and not hurried.holds


def test_fewer_retries_means_commands_give_up_and_fewer_states() -> None:
    patient = explore(careful_three(), conserved)
    impatient = explore(
        funded()
        .retries(0)
        .client(Pay("wallet-a", "wallet-b", WALLETS, 10))
        .client(Pay("wallet-b", "wallet-c", WALLETS, 10))
        .client(Pay("wallet-c", "wallet-a", WALLETS, 10)),
        conserved,
    )
    assert impatient.holds and impatient.states < patient.states


def test_the_report_summarises_itself() -> None:
    report = explore(careful_three(), conserved)
    summary = report.summary()
    assert summary["states"] == report.states and summary["complete"] is True
    assert report.states_per_second > 0
    assert "holds in every interleaving" in str(report)
    assert "<table" in report._repr_html_()


# -- bad input ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_depth": 0}, "max_depth"),
        ({"max_states": -1}, "max_states"),
        ({"time_budget": 0}, "time_budget"),
    ],
)
def test_bad_bounds_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidFormat, match=message):
        explore(broken(), conserved, **kwargs)


def test_bad_scenarios_are_refused_with_what_is_wrong() -> None:
    with pytest.raises(InvalidFormat, match="ConcurrentScenario"):
        explore("not a scenario", conserved)  # type: ignore[arg-type]
    with pytest.raises(InvalidFormat, match="function of the store"):
        explore(broken(), "not callable")  # type: ignore[arg-type]
    with pytest.raises(InvalidFormat, match="no clients"):
        explore(funded(), conserved)
    with pytest.raises(InvalidFormat, match="non-empty name"):
        ConcurrentScenario(" ")
    with pytest.raises(InvalidFormat, match="at least one command"):
        funded().client()
    with pytest.raises(InvalidFormat, match="takes commands or a Client"):
        funded().client(42)  # type: ignore[arg-type]
    with pytest.raises(InvalidFormat, match="already has a client named"):
        funded().client(Fund("wallet-a", 1), name="x").client(Fund("wallet-b", 1), name="x")
    with pytest.raises(InvalidFormat, match="max_retries"):
        funded().retries(-1)
    with pytest.raises(InvalidFormat, match="needs at least one event"):
        funded().given("wallet-a")


# -- the client seam: anything that steps can be explored ----------------------------------------------


@dataclass(frozen=True)
class OutsideDeposit:
    """An external system that drops money into a wallet in one step, without reading anything."""

    name: str
    wallet: str
    amount: int

    def start(self) -> bool:
        return False

    def finished(self, local: bool) -> bool:
        return local

    def key(self, local: bool) -> Hashable:
        return local

    def step(self, local: bool, store: Any) -> Move:
        store.append([EventToWrite(self.wallet, WalletFunded(amount=self.amount))])
        return Move(True, "deposit", "OutsideDeposit", streams=(self.wallet,))


def test_a_client_that_is_not_a_command_plugs_into_the_same_search() -> None:
    outside = OutsideDeposit("bank transfer", "wallet-c", 50)
    assert isinstance(outside, Client)
    scenario = funded().client(Pay("wallet-a", "wallet-b", WALLETS, 10)).client(outside)
    report = explore(scenario, conserved)
    example = report.counterexample
    assert example is not None and "400" not in example.message
    assert example.message == "the wallets hold 350 in total, but 300 was paid in"
    assert len(example) == 1 and example.steps()[0].phase == "deposit"
    with pytest.raises(InvalidFormat, match="not a command's commit"):
        example.scenario_spec()

    def before_or_after_the_deposit(store: Any) -> bool:
        return books_balance(store) and sum(balances(store.read_all()).values()) in (300, 350)

    assert explore(scenario, before_or_after_the_deposit).holds


# -- soundness of the reduction ------------------------------------------------------------------------

payments = (
    st.builds(PayFast, st.sampled_from(WALLETS), st.sampled_from(WALLETS), st.sampled_from([30, 70]))
    | st.builds(Pay, st.sampled_from(WALLETS), st.sampled_from(WALLETS), st.just(WALLETS), st.just(30))
    | st.builds(Fund, st.sampled_from(WALLETS), st.just(10))
)


HALF_FULL = [(w, WalletFunded(amount=50)) for w in WALLETS]


def contents(store: Any) -> frozenset[tuple[str, tuple[Any, ...]]]:
    return frozenset((sid, tuple(e.payload for e in store.read_stream(sid))) for sid in store.stream_ids())


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    concurrent_scenarios(payments, history=HALF_FULL, clients=(2, 3), commands_per_client=(1, 1))
    | concurrent_scenarios(payments, history=HALF_FULL, clients=(2, 2), commands_per_client=(2, 2))
)
def test_reduction_reaches_every_state_the_full_search_reaches(scenario: ConcurrentScenario) -> None:
    """Sleep sets prune steps, not states: each store reachable in some interleaving (streams' contents)
    is also reached by the reduced search, which is what lets it check the invariant everywhere."""
    seen_full: set[Any] = set()
    seen_reduced: set[Any] = set()
    full = explore(scenario, lambda s: seen_full.add(contents(s)), reduction=False)
    reduced = explore(scenario, lambda s: seen_reduced.add(contents(s)))
    assert full.holds and reduced.holds
    assert seen_reduced == seen_full
    assert reduced.transitions <= full.transitions
    # and a violation planted in any one reachable state is found, at the same shortest length
    target = sorted(seen_full, key=repr)[len(seen_full) // 2]
    found_full = explore(scenario, lambda s: contents(s) != target, reduction=False).counterexample
    found_reduced = explore(scenario, lambda s: contents(s) != target).counterexample
    assert found_full is not None and found_reduced is not None
    assert len(found_full) == len(found_reduced)


# -- hypothesis bridge ---------------------------------------------------------------------------------

careful_payments = st.builds(
    Pay, st.sampled_from(WALLETS), st.sampled_from(WALLETS), st.just(WALLETS), st.sampled_from([30, 70])
)
HISTORY = [(w, WalletFunded(amount=50)) for w in WALLETS]


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(concurrent_scenarios(careful_payments, history=HISTORY, clients=(2, 3), commands_per_client=(1, 1)))
def test_hypothesis_draws_scenarios_and_every_interleaving_of_each_is_checked(
    scenario: ConcurrentScenario,
) -> None:
    report = assert_every_interleaving(scenario, lambda s: books_balance(s, 150))
    assert report.holds


def test_the_bridge_finds_and_shrinks_a_broken_scenario() -> None:
    strategy = concurrent_scenarios(
        st.builds(PayFast, st.sampled_from(WALLETS), st.sampled_from(WALLETS), st.sampled_from([30, 70])),
        history=HISTORY,
        clients=(1, 2),
    )

    def breaks(scenario: ConcurrentScenario) -> bool:
        return explore(scenario, lambda s: books_balance(s, 150)).counterexample is not None

    smallest = find(
        strategy, breaks, settings=settings(max_examples=100, database=None, deadline=None, derandomize=True)
    )
    commands = [c for client in smallest.clients for c in client.commands]
    # one payment alone never overdraws: it takes two by one payer, to two other wallets, of 30 each
    spending = {(c.payer, c.payee) for c in commands if c.payer != c.payee}
    payers = [payer for payer, _ in spending]
    assert len(commands) <= 3 and any(payers.count(p) == 2 for p in payers)
    with pytest.raises(AssertionError, match=r"spec = \("):
        assert_every_interleaving(smallest, lambda s: books_balance(s, 150))


def test_the_bridge_refuses_bad_bounds() -> None:
    with pytest.raises(InvalidFormat, match="bounds"):
        concurrent_scenarios(careful_payments, clients=(0, 2))
