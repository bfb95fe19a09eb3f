"""Modeling with query-based commands and stream ids of other shapes than ``<category>-<id>``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import pytest

from eventcore_lab import Command, Event, EventToWrite, Executor, MemoryStore, StoredEvent, emit, stream
from eventcore_lab.core.command import CommandContext
from eventcore_lab.core.errors import InvalidFormat
from eventcore_lab.examples import courses
from eventcore_lab.modeling import Board, category, check_history, derive_model


def test_a_query_based_command_shows_its_boundary_on_its_note_and_the_board() -> None:
    model = derive_model(courses)
    join = model.elements["JoinCourse"]
    assert join.boundary == (
        "CourseRegistered, StudentJoinedCourse [course:{course_id}]",
        "StudentRegistered, StudentJoinedCourse [student:{student_id}]",
    )
    assert model.elements["JoinCourseByStreams"].boundary == ()  # streams only: its lanes say it all
    assert model.targets("JoinCourse") == ["StudentJoinedCourse"]
    assert "student" in model.elements["StudentJoinedCourse"].lanes
    source = Board(model).source
    assert model.elements["StudentJoinedCourse"].tags == ("student:{student_id}", "course:{course_id}")
    assert model.elements["CourseRegistered"].tags == ("course:{course_id}",)
    joined = next(
        line for line in source.splitlines() if "n_StudentJoinedCourse" in line and "label=" in line
    )
    assert "tags student:{student_id},<br/>course:{course_id}" in joined
    note = next(line for line in source.splitlines() if "n_JoinCourse " in line)
    assert "reads CourseRegistered,<br/>StudentJoinedCourse<br/>[course:{course_id}]" in note


class NameChanged(Event):
    registration = "on_first_use"
    event_type = "test_modeling_queries.NameChanged"
    name: str


def student_name_stream(student_id: str) -> str:
    return f"student-{student_id}-name"


class ChangeName(Command[None]):
    """Each student fact has its own stream: ``student-<id>-name``, ``student-<id>-limit``."""

    stream_categories: ClassVar[dict[str, str]] = {"student": "student-name"}
    student: str = stream()
    name: str

    def apply(self, state: None, event: StoredEvent) -> None:
        return None

    def handle(self, state: None, ctx: CommandContext) -> Sequence[EventToWrite]:
        return [emit(self.student, NameChanged(name=self.name))]


def by_fact(stream_id: str) -> str:
    """``student-42-name`` -> ``student-name``: the category is the first and last word."""
    parts = stream_id.split("-")
    return f"{parts[0]}-{parts[-1]}" if len(parts) > 2 else category(stream_id)


def test_stream_ids_of_another_shape_need_the_declared_category_function_not_a_drift_report() -> None:
    store = MemoryStore()
    Executor(store).execute(ChangeName(student_name_stream("42"), "Ann"))
    assert derive_model([ChangeName]).elements["test_modeling_queries.NameChanged"].lanes == ("student-name",)

    misread = check_history(derive_model([ChangeName]), store)  # "student" is not a lane of the model
    assert not misread.ok and misread.unknown_streams == {"student": ["student-42-name"]}

    declared = check_history(derive_model([ChangeName], category=by_fact), store)
    assert declared.ok and declared.unexercised_commands == [], str(declared)


def test_a_module_declares_its_category_function_as_stream_category() -> None:
    import types

    module = types.ModuleType("students")
    module.COMMANDS = [ChangeName]  # type: ignore[attr-defined]
    module.stream_category = by_fact  # type: ignore[attr-defined]
    model = derive_model(module)
    assert model.category("student-7-name") == "student-name"
    assert model.category("course-7") == "course"


def test_a_timeline_of_what_a_query_based_command_decided_on() -> None:
    from eventcore_lab.modeling import timeline

    store = MemoryStore()
    executor = Executor(store)
    executor.execute(courses.RegisterCourse("course-c1", "one", 2))
    executor.execute(courses.RegisterCourse("course-c2", "two", 2))
    executor.execute(courses.RegisterStudent("student-s1", "ann", 2))
    executor.execute(courses.JoinCourse("s1", "c1"))
    shown = timeline(store, query=courses.enrolment_query("c1", "s1"))
    assert [e.event_type for e in shown.events] == [
        "CourseRegistered",
        "StudentRegistered",
        "StudentJoinedCourse",
    ]
    assert shown.streams == ["course-c1", "student-s1"]  # c2 is not part of the boundary
    assert "tags: student:s1, course:c1" in shown.svg()
    with pytest.raises(InvalidFormat, match="takes a Query"):
        timeline(store, query="course:c1")


def test_history_checks_find_events_stored_without_their_declared_tags() -> None:
    from msgspec.structs import replace

    store = MemoryStore()
    executor = Executor(store)
    executor.execute(courses.RegisterCourse("course-c1", "one", 2))
    executor.execute(courses.RegisterStudent("student-s1", "ann", 2))
    executor.execute(courses.JoinCourse("s1", "c1"))
    model = derive_model(courses)
    assert check_history(model, store).untagged == {}
    recorded = store.read_all()
    imported = [*recorded[:-1], replace(recorded[-1], tags=("student:s1",))]  # lost its course tag
    report = check_history(model, imported)
    assert not report.ok and report.untagged == {"StudentJoinedCourse": 1}
    assert "StudentJoinedCourse stored without the tags its class declares" in str(report)
