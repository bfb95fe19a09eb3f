"""Course booking, built both ways: a consistency boundary of streams, and one of queries.

A student joins a course only if the course has a free place and the student is under their course
limit; a student joins a course once. Courses and students are registered on their own streams
(``course-<id>``, ``student-<id>``) in both variants. The join differs:

- :class:`JoinCourseByStreams` reads the course and the student stream, and must write to *both* so that
  either rule is guarded by a stream version: the join on the student stream, a ``CourseSeatTaken`` on the
  course stream (two facts for one decision; a read model must count one of them).
- :class:`JoinCourse` reads by query: "the course's registration and joins" and "the student's
  registration and joins", by tag. It writes one ``StudentJoinedCourse`` (tagged with both) and the
  append condition guards both rules: no stream layout had to be chosen for it.

Workloads for the simulation package (``course_workload``) and the invariants (``check_bookings``) serve
the tutorial (chapter 8.2), the tests and ``python -m benchmarks.queries``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from eventcore_lab import (
    BusinessRuleViolation,
    Command,
    Event,
    EventToWrite,
    StoredEvent,
    emit,
    require,
    stream,
)
from eventcore_lab.core.command import CommandContext
from eventcore_lab.core.errors import ValidationFailed
from eventcore_lab.core.query import Query, QueryItem

if TYPE_CHECKING:
    from eventcore_lab.simulation import Draw, Workload


def course_stream(course_id: str) -> str:
    return f"course-{course_id}"


def student_stream(student_id: str) -> str:
    return f"student-{student_id}"


# -- events (tags derived from fields: one event with two tags is one stored event) ------------------


class CourseRegistered(Event):
    registration = "on_first_use"
    tags_from = ("course:{course_id}",)
    course_id: str
    name: str
    places: int


class StudentRegistered(Event):
    registration = "on_first_use"
    tags_from = ("student:{student_id}",)
    student_id: str
    name: str
    max_courses: int


class StudentJoinedCourse(Event):
    registration = "on_first_use"
    tags_from = ("student:{student_id}", "course:{course_id}")
    student_id: str
    course_id: str


class CourseDescribed(Event):
    """Course news that no join rule depends on; it shares the course stream with the rule's facts."""

    registration = "on_first_use"
    tags_from = ("course:{course_id}",)
    course_id: str
    text: str


class CourseSeatTaken(Event):
    """The stream layout's second fact: a place of the course went to ``student_id``."""

    registration = "on_first_use"
    tags_from = ("course:{course_id}",)
    course_id: str
    student_id: str


# -- refusals: the domain's own types, raised through require(cond, Class) ---------------------------


class CourseFull(BusinessRuleViolation):
    """The course has no free place left."""


class TooManyCourses(BusinessRuleViolation):
    """The student has reached their course limit."""


class AlreadyJoined(BusinessRuleViolation):
    """The student has already joined this course."""


class NotRegistered(ValidationFailed):
    """The course or the student is not registered."""


# -- registration (streams, in both variants) ---------------------------------------------------------


class _Exists(Command[bool]):
    """State: whether the command's one stream has any event (the thing is registered)."""

    def initial_state(self) -> bool:
        return False

    def apply(self, state: bool, event: StoredEvent) -> bool:
        return True


class RegisterCourse(_Exists):
    course: str = stream()
    name: str
    places: int

    def handle(self, state: bool, ctx: CommandContext) -> Sequence[EventToWrite]:
        require(self.places > 0, "a course needs at least one place")
        require(not state, f"{self.course} is already registered")
        course_id = self.course.removeprefix("course-")
        return [emit(self.course, CourseRegistered(course_id=course_id, name=self.name, places=self.places))]


class RegisterStudent(_Exists):
    student: str = stream()
    name: str
    max_courses: int

    def handle(self, state: bool, ctx: CommandContext) -> Sequence[EventToWrite]:
        require(self.max_courses > 0, "a student may join at least one course")
        require(not state, f"{self.student} is already registered")
        student_id = self.student.removeprefix("student-")
        registered = StudentRegistered(student_id=student_id, name=self.name, max_courses=self.max_courses)
        return [emit(self.student, registered)]


class DescribeCourse(_Exists):
    course: str = stream()
    text: str

    def handle(self, state: bool, ctx: CommandContext) -> Sequence[EventToWrite]:
        require(state, NotRegistered)
        course_id = self.course.removeprefix("course-")
        return [emit(self.course, CourseDescribed(course_id=course_id, text=self.text))]


# -- the join decision, shared by both variants -------------------------------------------------------


@dataclass
class Enrolment:
    """What a join decides on: the course's places and students, the student's limit and courses."""

    places: int | None = None
    students: set[str] = field(default_factory=set)
    max_courses: int | None = None
    courses: set[str] = field(default_factory=set)


def apply_enrolment(state: Enrolment, event: StoredEvent, course_id: str, student_id: str) -> Enrolment:
    match event.payload:
        case CourseRegistered(course_id=c, places=places) if c == course_id:
            state.places = places
        case StudentRegistered(student_id=s, max_courses=limit) if s == student_id:
            state.max_courses = limit
        case StudentJoinedCourse(student_id=s, course_id=c) | CourseSeatTaken(student_id=s, course_id=c):
            if c == course_id:
                state.students.add(s)
            if s == student_id:
                state.courses.add(c)
    return state


def decide_join(state: Enrolment, course_id: str, student_id: str) -> None:
    """The rules, once for both variants; raises the refusal that applies."""
    require(state.places is not None and state.max_courses is not None, NotRegistered)
    require(student_id not in state.students, AlreadyJoined)
    require(len(state.students) < (state.places or 0), CourseFull)
    require(len(state.courses) < (state.max_courses or 0), TooManyCourses)


class _Join(Command[Enrolment]):
    student_id: str
    course_id: str
    #: the fold keeps only what concerns this student and course: snapshots would mix them up
    snapshots = False

    def initial_state(self) -> Enrolment:
        return Enrolment()

    def apply(self, state: Enrolment, event: StoredEvent) -> Enrolment:
        return apply_enrolment(state, event, self.course_id, self.student_id)


class JoinCourse(_Join):
    """The query variant: the boundary is "this course's facts and this student's facts", by tag."""

    def query(self) -> Query:
        return enrolment_query(self.course_id, self.student_id)

    def handle(self, state: Enrolment, ctx: CommandContext) -> Sequence[EventToWrite]:
        decide_join(state, self.course_id, self.student_id)
        joined = StudentJoinedCourse(student_id=self.student_id, course_id=self.course_id)
        return [emit(student_stream(self.student_id), joined)]


class JoinCourseByStreams(_Join):
    """The stream variant: both streams read, both written, so each rule has a version to guard it."""

    course: str = stream()
    student: str = stream()

    @classmethod
    def of(cls, student_id: str, course_id: str) -> JoinCourseByStreams:
        return cls(student_id, course_id, course_stream(course_id), student_stream(student_id))

    def handle(self, state: Enrolment, ctx: CommandContext) -> Sequence[EventToWrite]:
        decide_join(state, self.course_id, self.student_id)
        return [
            emit(self.student, StudentJoinedCourse(student_id=self.student_id, course_id=self.course_id)),
            emit(self.course, CourseSeatTaken(course_id=self.course_id, student_id=self.student_id)),
        ]


def enrolment_query(course_id: str, student_id: str) -> Query:
    """The facts a join depends on: the course's registration and joins, the student's likewise."""
    return Query.of(
        QueryItem(types=("CourseRegistered", "StudentJoinedCourse"), tags=(f"course:{course_id}",)),
        QueryItem(types=("StudentRegistered", "StudentJoinedCourse"), tags=(f"student:{student_id}",)),
    )


# -- workloads and invariants --------------------------------------------------------------------------


def setup_commands(courses: int, students: int, places: int, max_courses: int) -> list[Command[bool]]:
    """Register ``courses`` courses (``c0``...) and ``students`` students (``s0``...)."""
    registered: list[Command[bool]] = [
        RegisterCourse(course_stream(f"c{i}"), f"course {i}", places) for i in range(courses)
    ]
    registered += [
        RegisterStudent(student_stream(f"s{i}"), f"student {i}", max_courses) for i in range(students)
    ]
    return registered


def make_join(draw: Draw) -> JoinCourse:
    """A workload maker: the client's own student joins a course drawn from the keys."""
    return JoinCourse(f"s{draw.client}", draw.key())


def make_join_by_streams(draw: Draw) -> JoinCourseByStreams:
    return JoinCourseByStreams.of(f"s{draw.client}", draw.key())


def make_describe(draw: Draw) -> DescribeCourse:
    """A workload maker: a client posts news on a course (no join rule depends on it)."""
    return DescribeCourse(course_stream(draw.key()), f"news from client {draw.client}")


def course_workload(
    *,
    by: str = "queries",
    courses: int = 10,
    clients: int = 50,
    places: int = 5,
    max_courses: int = 3,
    joins_per_client: int = 4,
    describes: float = 0.0,
    seed: int = 0,
) -> Workload:
    """``clients`` students (one per client) each send ``joins_per_client`` commands: joins of random
    courses, and course news (``DescribeCourse``) with weight ``describes`` against 1 for a join.

    ``by`` is ``"queries"`` (:class:`JoinCourse`) or ``"streams"`` (:class:`JoinCourseByStreams`).
    """
    from eventcore_lab.core.errors import InvalidArgument
    from eventcore_lab.simulation import Op, Uniform, Workload  # the simulation imports the examples

    makers = {"queries": make_join, "streams": make_join_by_streams}
    if by not in makers:
        raise InvalidArgument(f"by must be 'queries' or 'streams', got {by!r}")
    return Workload(
        mix=[Op("join", makers[by])] + ([Op("describe", make_describe, describes)] if describes else []),
        keys=Uniform([f"c{i}" for i in range(courses)]),
        clients=clients,
        commands=clients * joins_per_client,
        seed=seed,
        setup=setup_commands(courses, clients, places, max_courses),
    )


@dataclass(frozen=True)
class Bookings:
    """The joins a log holds, counted once (the ``StudentJoinedCourse`` facts)."""

    joins: list[tuple[str, str]]  # (student, course), in commit order
    places: dict[str, int]
    limits: dict[str, int]

    @property
    def per_course(self) -> Counter[str]:
        return Counter(course for _, course in self.joins)

    @property
    def per_student(self) -> Counter[str]:
        return Counter(student for student, _ in self.joins)

    def violations(self) -> list[str]:
        """Every broken rule, named: a course over its places, a student over their limit, a join twice."""
        problems = [
            f"course {c} has {n} students, {self.places.get(c)} places"
            for c, n in self.per_course.items()
            if n > self.places.get(c, 0)
        ]
        problems += [
            f"student {s} joined {n} courses, limit {self.limits.get(s)}"
            for s, n in self.per_student.items()
            if n > self.limits.get(s, 0)
        ]
        problems += [f"{s} joined {c} {n} times" for (s, c), n in Counter(self.joins).items() if n > 1]
        return problems


def bookings(events: Iterable[StoredEvent]) -> Bookings:
    joins: list[tuple[str, str]] = []
    places: dict[str, int] = {}
    limits: dict[str, int] = {}
    for event in events:
        match event.payload:
            case CourseRegistered(course_id=c, places=n):
                places[c] = n
            case StudentRegistered(student_id=s, max_courses=n):
                limits[s] = n
            case StudentJoinedCourse(student_id=s, course_id=c):
                joins.append((s, c))
    return Bookings(joins, places, limits)
