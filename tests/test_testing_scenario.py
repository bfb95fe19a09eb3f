"""The given/when/then harness: passing specs, failing specs with readable messages, bad specs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from eventcore_lab import ExecutionResult, MemoryStore, ValidationFailed
from eventcore_lab.core.errors import ValidationError
from eventcore_lab.examples.banking import (
    AccountOpened,
    Deposit,
    MoneyDeposited,
    MoneyTransferred,
    TransferMoney,
    Withdraw,
)
from eventcore_lab.examples.tasks import (
    AssignTask,
    ChangePriority,
    CreateTask,
    Priority,
    TaskAssigned,
    TaskCreated,
    TaskUnassigned,
    UserTaskAssigned,
    UserTaskUnassigned,
    WorkloadUpdated,
)
from eventcore_lab.testing import ANY, Scenario

DEPOSIT = (
    Scenario("deposit adds money")
    .given("account-1", AccountOpened(owner="ann"))
    .when(Deposit("account-1", 50))
    .then("account-1", MoneyDeposited(amount=50))
)


def test_passing_spec_returns_the_execution_result() -> None:
    result = DEPOSIT.verify()
    assert isinstance(result, ExecutionResult)
    assert [e.payload for e in result.events_written] == [MoneyDeposited(amount=50)]


def test_builder_is_declarative_and_immutable() -> None:
    base = Scenario("x").given("account-1", AccountOpened(owner="ann"))
    longer = base.given("account-2", AccountOpened(owner="bob"))
    assert len(base.givens) == 1 and len(longer.givens) == 2
    assert base.command is None  # nothing ran, nothing was added to base


def test_verify_uses_a_given_store() -> None:
    store = MemoryStore()
    DEPOSIT.verify(store=store)
    assert [e.event_type for e in store.read_all()] == ["AccountOpened", "MoneyDeposited"]


def test_wrong_event_fails_with_a_readable_message() -> None:
    wrong = (
        Scenario("deposit adds money")
        .given("account-1", AccountOpened(owner="ann"))
        .when(Deposit("account-1", 50))
        .then("account-1", MoneyDeposited(amount=60))
    )
    with pytest.raises(AssertionError) as info:
        wrong.verify()
    text = str(info.value)
    assert "scenario 'deposit adds money' failed" in text
    assert "expected writes:" in text and "MoneyDeposited(amount=60" in text
    assert "it wrote:" in text and "account-1: MoneyDeposited(amount=50" in text


def test_wrong_stream_fails() -> None:
    wrong = DEPOSIT.given("account-2", AccountOpened(owner="bob"))
    spec = Scenario("other stream").given("account-1", AccountOpened(owner="ann"))
    spec = spec.when(Deposit("account-1", 5)).then("account-2", MoneyDeposited(amount=5))
    with pytest.raises(AssertionError, match="account-2: MoneyDeposited"):
        spec.verify()
    assert wrong.verify()  # extra history does not change this deposit


def test_expected_failure_returns_the_error() -> None:
    spec = (
        Scenario("no overdraft")
        .given("account-1", AccountOpened(owner="ann", initial_balance=10))
        .when(Withdraw("account-1", 50))
        .then_fails(ValidationFailed, match="insufficient")
    )
    error = spec.verify()
    assert isinstance(error, ValidationFailed) and "balance 10" in error.message


def test_failure_expected_but_success_is_reported() -> None:
    spec = (
        Scenario("overdraft refused")
        .given("account-1", AccountOpened(owner="ann", initial_balance=100))
        .when(Withdraw("account-1", 50))
        .then_fails(ValidationFailed, match="insufficient")
    )
    with pytest.raises(AssertionError) as info:
        spec.verify()
    text = str(info.value)
    assert "expected failure: ValidationFailed, message matching 'insufficient'" in text
    assert "it succeeded and wrote:" in text and "MoneyWithdrawn(amount=50" in text


def test_other_error_than_expected_names_class_code_and_message() -> None:
    spec = (
        Scenario("unknown account").when(Deposit("account-9", 5)).then("account-9", MoneyDeposited(amount=5))
    )
    with pytest.raises(AssertionError) as info:
        spec.verify()
    assert "it failed with ValidationFailed [CE001]: account account-9 does not exist" in str(info.value)
    mismatch = Scenario("m").when(Deposit("account-9", 5)).then_fails(ValidationFailed, match="overdrawn")
    with pytest.raises(AssertionError, match="message matching 'overdrawn'"):
        mismatch.verify()
    by_code = Scenario("c").when(Deposit("account-9", 5)).then_fails(ValidationFailed, code="CE002")
    with pytest.raises(AssertionError, match="code CE002"):
        by_code.verify()


def test_then_nothing_and_idempotent_no_op() -> None:
    spec = (
        Scenario("same priority is a no-op")
        .given("task-1", TaskCreated(task_id="1", title="t", description="", creator="ann"))
        .when(ChangePriority("task-1", Priority.MEDIUM, "ann"))
        .then_nothing()
    )
    assert spec.verify().events_written == []  # type: ignore[union-attr]
    writes = Scenario("writes").given("account-1", AccountOpened(owner="a")).when(Deposit("account-1", 1))
    with pytest.raises(AssertionError, match="expected writes:\n      \\(nothing\\)"):
        writes.then_nothing().verify()


def test_multi_stream_then_compares_per_stream_order_and_any_wildcard() -> None:
    created = TaskCreated(task_id="1", title="t", description="", creator="ann")
    spec = (
        Scenario("reassign")
        .given("task-1", created, TaskAssigned(task_id="1", assignee="bob", assigned_by="ann"))
        .given("user-bob", UserTaskAssigned(user_name="bob", task_id="1"))
        .when(AssignTask.new("1", "carol", "ann"))
        .then(
            "task-1",
            TaskUnassigned(task_id="1", previous_assignee="bob", unassigned_by="ann"),
            TaskAssigned(task_id="1", assignee="carol", assigned_by="ann", assigned_at=ANY),
        )
        .then("user-bob", UserTaskUnassigned(user_name="bob", task_id="1"))
        .then(
            "user-carol",
            UserTaskAssigned(user_name="carol", task_id="1"),
            WorkloadUpdated(user_name="carol", active_tasks=1),
        )
    )
    spec.verify()


def test_clock_is_fixed_and_settable() -> None:
    when = datetime(2025, 5, 1, tzinfo=UTC)
    spec = (
        Scenario("create")
        .at(when)
        .when(CreateTask.new("1", "title", "", "ann"))
        .then(
            "task-1", TaskCreated(task_id="1", title="title", description="", creator="ann", created_at=when)
        )
    )
    spec.verify()


def test_transfer_describe_text() -> None:
    spec = (
        Scenario("transfer")
        .given("account-1", AccountOpened(owner="ann", initial_balance=100))
        .given("account-2", AccountOpened(owner="bob"))
        .when(TransferMoney("account-1", "account-2", 30))
        .then("account-1", MoneyTransferred(from_account="account-1", to_account="account-2", amount=30))
        .then("account-2", MoneyTransferred(from_account="account-1", to_account="account-2", amount=30))
    )
    spec.verify()
    text = spec.describe()
    assert text.splitlines()[:3] == [
        "Scenario: transfer",
        "  Given",
        "    account-1: AccountOpened(owner='ann', initial_balance=100)",
    ]
    assert "  When\n    TransferMoney(from_account='account-1'" in text
    assert "  Then\n    account-1: MoneyTransferred(" in text
    failing = Scenario("f").when(Withdraw("account-1", 5)).then_fails(ValidationFailed, match="exist")
    assert failing.describe().endswith("  Then\n    fails with ValidationFailed, message matching 'exist'")


@pytest.mark.parametrize(
    "build, problem",
    [
        (lambda: Scenario(""), "non-empty name"),
        (lambda: Scenario("s").given(" ", AccountOpened(owner="a")), "stream id"),
        (lambda: Scenario("s").given("account-1"), "at least one event"),
        (lambda: Scenario("s").when("Deposit"), "Command instance"),  # type: ignore[arg-type]
        (lambda: Scenario("s").when(Deposit("a", 1)).when(Deposit("a", 1)), "already has a command"),
        (lambda: Scenario("s").then_fails(ValidationFailed).then("a", MoneyDeposited(amount=1)), "expects"),
        (lambda: Scenario("s").then("a", MoneyDeposited(amount=1)).then_fails(ValidationFailed), "writes"),
        (lambda: Scenario("s").then_fails("oops"), "exception class"),  # type: ignore[arg-type]
        (lambda: Scenario("s").then("a", MoneyDeposited(amount=1)).then_nothing(), "cannot expect nothing"),
        (lambda: Scenario("s").then_nothing().then("a", MoneyDeposited(amount=1)), "expects nothing"),
        (lambda: Scenario("s").then_nothing().verify(), "no command"),
        (lambda: Scenario("s").when(Deposit("a", 1)).verify(), "expects nothing: add"),
    ],
)
def test_bad_specs_are_refused_with_clear_errors(build, problem) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError, match=problem):
        build()
