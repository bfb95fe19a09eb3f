"""Typed refusals: ``require`` raises the domain's own DomainRefusal, which keeps its type everywhere."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from eventcore_lab import (
    BusinessRuleViolation,
    Command,
    DomainRefusal,
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


class CourseFull(BusinessRuleViolation):
    """The course has no seat left."""


class NotEnrolled(DomainRefusal):
    """The student is not enrolled in that course."""

    code = "XX001"

    def __init__(self, message: str, *, student: str = "?") -> None:
        super().__init__(message)
        self.student = student


class Bare(DomainRefusal):
    pass


def test_require_takes_a_message_an_instance_or_a_class() -> None:
    require(True, CourseFull)  # a condition that holds raises nothing, whatever the error
    with pytest.raises(ValidationFailed, match="must be positive"):
        require(False, "must be positive")
    with pytest.raises(CourseFull, match="course-7 is full"):
        require(False, CourseFull("course-7 is full"))
    with pytest.raises(CourseFull, match="no seat left") as raised:
        require(0, CourseFull)  # a class: the first line of its docstring is the message
    assert raised.value.code == "CE002"
    with pytest.raises(Bare, match="Bare"):
        require(None, Bare)  # no docstring of its own: its name


@pytest.mark.parametrize("error", [ValueError("no"), KeyError, 42, None])
def test_require_refuses_anything_but_a_message_or_a_domain_refusal(error: object) -> None:
    with pytest.raises(TypeError, match="DomainRefusal instance or subclass"):
        require(False, error)  # type: ignore[arg-type]


class Seated(Event):
    registration = "on_first_use"
    event_type = "test_refusals.Seated"
    student: str


class Join(Command[int]):
    course: str = stream()
    student: str
    capacity: int = 1

    def initial_state(self) -> int:
        return 0

    def apply(self, state: int, event) -> int:
        return state + 1

    def handle(self, state: int, ctx: CommandContext) -> Sequence[EventToWrite]:
        require(self.student != "nobody", NotEnrolled(f"{self.student} is unknown", student=self.student))
        require(state < self.capacity, CourseFull)
        return [emit(self.course, Seated(student=self.student))]


def test_a_domain_refusal_keeps_its_type_and_fields_through_the_executor_and_is_never_retried() -> None:
    store = MemoryStore()
    executor = Executor(store, retry=RetryConfig(max_attempts=5, initial_delay=0, jitter=False))
    with pytest.raises(NotEnrolled) as raised:
        executor.execute(Join("course-1", "nobody"))
    assert raised.value.student == "nobody" and raised.value.code == "XX001"
    assert raised.value.attempts == 1


def test_a_refusal_after_a_conflict_retry_keeps_its_type_and_counts_the_attempts() -> None:
    store = MemoryStore()
    executor = Executor(store, retry=RetryConfig(max_attempts=5, initial_delay=0, jitter=False))
    steps = executor.steps(Join("course-1", "ann"))
    assert [next(steps).phase for _ in range(2)] == [Phase.READ, Phase.DECIDE]
    store.append([EventToWrite("course-1", Seated(student="bob"))])  # the last seat goes meanwhile
    assert next(steps).phase is Phase.BACKOFF
    with pytest.raises(CourseFull, match="no seat left") as raised:
        while True:
            next(steps)
    assert type(raised.value) is CourseFull and raised.value.attempts == 2
    assert isinstance(raised.value.__cause__, CourseFull)  # the original, untouched


def test_a_domain_class_marked_retriable_is_still_never_retried() -> None:
    class Flaky(DomainRefusal):
        retriable = True

    assert not RetryConfig().should_retry(Flaky("no"), 0)


def test_the_command_runner_widget_shows_the_refusal_type_and_message() -> None:
    from eventcore_lab.widgets import CommandRunner

    store = MemoryStore()
    store.append([EventToWrite("course-1", Seated(student="bob"))])
    runner = CommandRunner(Executor(store), [Join])
    runner.choose("Join", course="course-1", student="ann")
    runner.run_button.click()
    assert isinstance(runner.last_error, CourseFull)
    assert "CourseFull [CE002]" in runner.output.value and "no seat left" in runner.output.value


def test_the_web_layer_maps_a_domain_class_like_its_base_and_append_conditions_like_conflicts() -> None:
    from eventcore_lab.errors import AppendConditionFailed, VersionConflict
    from eventcore_lab.web import ERROR_STATUS, rule_for
    from eventcore_lab.web.errors import error_body

    full = rule_for(CourseFull("course-7 is full"))
    assert (full.status, full.code) == (422, "BUSINESS_RULE_VIOLATION")
    assert error_body(CourseFull("course-7 is full"), full, "r1")["error"] == {
        "code": "BUSINESS_RULE_VIOLATION",
        "message": "course-7 is full",
    }
    assert (rule_for(NotEnrolled("x")).status, rule_for(NotEnrolled("x")).code) == (422, "DOMAIN_REFUSAL")
    condition = rule_for(AppendConditionFailed("q", 3, 4))
    assert (condition.status, condition.code, condition.retry_after) == (409, "CONFLICT", 1)
    assert rule_for(VersionConflict({"s": ("version 1", 2)})).status == 409
    assert ERROR_STATUS[AppendConditionFailed].message == "Resource was modified by another request"
