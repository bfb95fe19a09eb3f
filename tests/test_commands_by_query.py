"""Commands whose consistency boundary is a query: read by tag, fold once, append under a condition.

The must-shows of issue 14: an append condition violated by an event committed after the read fails and is
retried like a stream conflict, an event that only overlaps on an unrelated tag does not conflict, one
event with two tags is one stored event, and course booking by query keeps its rules under 50 concurrent
clients on every store.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from eventcore_lab import Command, EventToWrite, Executor, MemoryStore, RetryConfig, emit, stream
from eventcore_lab.core.authorization import StreamAccess
from eventcore_lab.core.command import CommandContext
from eventcore_lab.core.errors import ConcurrencyConflict, InvalidArgument
from eventcore_lab.core.executor import Phase
from eventcore_lab.core.load import load
from eventcore_lab.core.query import Query, QueryItem
from eventcore_lab.examples import courses
from eventcore_lab.examples.courses import (
    AlreadyJoined,
    CourseFull,
    CourseRegistered,
    CourseSeatTaken,
    Enrolment,
    JoinCourse,
    JoinCourseByStreams,
    RegisterCourse,
    RegisterStudent,
    StudentJoinedCourse,
    TooManyCourses,
    bookings,
    course_stream,
    course_workload,
    enrolment_query,
    student_stream,
)
from eventcore_lab.observability.events import CommandRetried
from eventcore_lab.simulation import run_processes, run_threads
from eventcore_lab.stores.duckdb import DuckDBStore
from eventcore_lab.stores.postgres import PostgresStore

NO_WAIT = RetryConfig(max_attempts=5, initial_delay=0, max_delay=0, jitter=False)
CONTENDED = RetryConfig(max_attempts=200, initial_delay=0.001, max_delay=0.02)


def registered(store: Any, *, places: int = 2, max_courses: int = 2) -> Executor:
    executor = Executor(store, retry=NO_WAIT)
    for course in ("c1", "c2"):
        executor.execute(RegisterCourse(course_stream(course), f"course {course}", places))
    for student in ("s1", "s2", "s3"):
        executor.execute(RegisterStudent(student_stream(student), f"student {student}", max_courses))
    return executor


def drive(steps: Any) -> Any:
    try:
        while True:
            next(steps)
    except StopIteration as done:
        return done.value


class Observations:
    def __init__(self) -> None:
        self.seen: list[Any] = []

    def observe(self, observation: Any) -> None:
        self.seen.append(observation)


def test_a_join_by_query_decides_on_tagged_events_and_stores_one_event_with_two_tags() -> None:
    store = MemoryStore()
    executor = registered(store)
    head = store.head()
    result = executor.execute(JoinCourse("s1", "c1"))
    assert result.attempts == 1 and store.head() == head + 1  # one event, though two rules guard it
    joined = store.read_all()[-1]
    assert joined.stream_id == "student-s1" and set(joined.tags) == {"student:s1", "course:c1"}
    by_course = store.read_query(Query.of(QueryItem(tags=("course:c1",)))).events
    by_student = store.read_query(Query.of(QueryItem(tags=("student:s1",)))).events
    assert joined in by_course and joined in by_student  # found by either tag: the same stored event
    with pytest.raises(AlreadyJoined):
        executor.execute(JoinCourse("s1", "c1"))


def test_an_event_matching_the_query_committed_after_the_read_fails_the_append_and_is_retried() -> None:
    store = MemoryStore()
    registered(store, places=1)
    seen = Observations()
    command = JoinCourse("s1", "c1")
    steps = Executor(store, retry=NO_WAIT, observers=[seen]).steps(command)
    assert [next(steps).phase for _ in range(2)] == [Phase.READ, Phase.DECIDE]
    # another student takes the only place after s1's read: that event matches s1's query
    store.append([EventToWrite("student-s2", StudentJoinedCourse(student_id="s2", course_id="c1"))])
    backoff = next(steps)
    assert backoff.phase is Phase.BACKOFF and isinstance(backoff.error, ConcurrencyConflict)
    assert "changed since they were read" in str(backoff.error)
    with pytest.raises(CourseFull) as refused:  # the retry reads the new join and decides on it
        drive(steps)
    assert refused.value.attempts == 2
    retried = [o for o in seen.seen if isinstance(o, CommandRetried)]
    assert len(retried) == 1 and retried[0].conflict and retried[0].error_code == "CE003"
    assert [j for j in bookings(store.read_all()).joins] == [("s2", "c1")]


def test_a_conflict_retried_to_success_when_the_rule_still_holds() -> None:
    store = MemoryStore()
    registered(store, places=2)
    steps = Executor(store, retry=NO_WAIT).steps(JoinCourse("s1", "c1"))
    assert [next(steps).phase for _ in range(2)] == [Phase.READ, Phase.DECIDE]
    store.append([EventToWrite("student-s2", StudentJoinedCourse(student_id="s2", course_id="c1"))])
    assert next(steps).phase is Phase.BACKOFF
    assert drive(steps).attempts == 2
    assert sorted(bookings(store.read_all()).joins) == [("s1", "c1"), ("s2", "c1")]


def test_events_that_only_overlap_on_an_unrelated_tag_do_not_conflict() -> None:
    store = MemoryStore()
    registered(store)
    steps = Executor(store, retry=NO_WAIT).steps(JoinCourse("s1", "c1"))
    assert [next(steps).phase for _ in range(2)] == [Phase.READ, Phase.DECIDE]
    store.append(
        [
            # s2 joins c2: the same event type, but neither tag of s1's query items
            EventToWrite("student-s2", StudentJoinedCourse(student_id="s2", course_id="c2")),
            # an event tagged course:c1 whose type the course item does not name
            EventToWrite("course-c1", CourseSeatTaken(course_id="c1", student_id="s3")),
            # a type the student item names, tagged with another student
            EventToWrite(
                "course-c1", CourseRegistered(course_id="c9", name="x", places=1), tags=("student:s9",)
            ),
        ]
    )
    result = drive(steps)
    assert result.attempts == 1
    assert ("s1", "c1") in bookings(store.read_all()).joins


def test_the_student_limit_is_guarded_across_courses() -> None:
    store = MemoryStore()
    executor = registered(store, places=5, max_courses=1)
    executor.execute(JoinCourse("s1", "c1"))
    with pytest.raises(TooManyCourses):
        executor.execute(JoinCourse("s1", "c2"))


def test_load_folds_a_query_and_its_condition_guards_a_hand_made_append() -> None:
    store = MemoryStore()
    executor = registered(store)
    executor.execute(JoinCourse("s1", "c1"))
    probe = JoinCourse("s2", "c1")
    loaded = load(store, probe)
    assert isinstance(loaded.state, Enrolment)
    assert loaded.state.students == {"s1"} and loaded.state.places == 2 and loaded.versions == {}
    assert loaded.query == enrolment_query("c1", "s2") and loaded.position == store.head()
    by_function = load(store, lambda n, e: n + 1, initial=0, query=enrolment_query("c1", "s2"))
    assert by_function.state == 3  # c1 registered, s2 registered, s1 joined c1
    executor.execute(JoinCourse("s3", "c1"))  # matches the loaded query: the condition must fail
    from eventcore_lab.errors import AppendConditionFailed

    with pytest.raises(AppendConditionFailed):
        store.append(
            [EventToWrite("student-s2", StudentJoinedCourse(student_id="s2", course_id="c1"))],
            condition=loaded.condition,
        )


def test_a_store_without_queries_is_a_clear_error() -> None:
    class StreamsOnly:
        def __init__(self) -> None:
            self.inner = MemoryStore()

        def __getattr__(self, name: str) -> Any:
            if name in ("read_query",):
                raise AttributeError(name)
            return getattr(self.inner, name)

    with pytest.raises(InvalidArgument, match="cannot read by query"):
        Executor(StreamsOnly()).execute(JoinCourse("s1", "c1"))  # type: ignore[arg-type]


class Audit:
    def __init__(self) -> None:
        self.asked: list[StreamAccess] = []

    def authorize(self, principal: Any, command: Any, streams: StreamAccess) -> None:
        self.asked.append(streams)


def test_the_policy_sees_the_query_and_the_streams_its_events_came_from() -> None:
    store = MemoryStore()
    registered(store)
    audit = Audit()
    Executor(store, policy=audit).execute(JoinCourse("s1", "c1"), user="ann")
    (access,) = audit.asked
    assert access.query == enrolment_query("c1", "s1")
    assert set(access.read) == {"course-c1", "student-s1"} and access.write == ("student-s1",)


class Mixed(Command[list[str]]):
    """Streams and a query together: an event in both is folded once."""

    course: str = stream()

    def initial_state(self) -> list[str]:
        return []

    def apply(self, state: list[str], event: Any) -> list[str]:
        return [*state, event.event_type]

    def query(self) -> Query:
        return Query.of(QueryItem(tags=("course:c1",)))

    def handle(self, state: list[str], ctx: CommandContext) -> Sequence[EventToWrite]:
        return [emit(self.course, CourseRegistered(course_id="c1", name=f"{len(state)}", places=1))]


def test_streams_and_a_query_fold_each_event_once_in_position_order() -> None:
    store = MemoryStore()
    registered(store)
    Executor(store).execute(JoinCourse("s1", "c1"))
    result = Executor(store).execute(Mixed("course-c1"))
    assert result.events_written[0].payload.name == "2"  # CourseRegistered (both reads) + the join, once
    Executor(store).execute(Mixed("course-c1"))
    assert store.read_stream("course-c1")[-1].payload.name == "3"


# -- 50 concurrent clients, 10 courses of 5 places, at most 3 courses per student, on every store --------


def check_bookings(store: Any, succeeded: int) -> None:
    booked = bookings(store.read_all())
    assert booked.violations() == []
    assert len(booked.joins) == succeeded  # every join that succeeded is stored, once
    assert len(booked.places) == 10 and len(booked.limits) == 50


@pytest.fixture(params=["memory", "duckdb"])
def threaded_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "memory":
        yield MemoryStore()
    else:
        store = DuckDBStore(tmp_path / "events.duckdb")
        yield store
        store.close()


@pytest.mark.parametrize("by", ["queries", "streams"])
def test_fifty_clients_on_threads_keep_every_rule(threaded_store: Any, by: str) -> None:
    result = run_threads(course_workload(by=by), threaded_store, retry=CONTENDED)
    summary = result.summary()
    assert summary["succeeded"] > 0
    check_bookings(threaded_store, summary["succeeded"])


def test_fifty_clients_in_processes_on_postgres_keep_every_rule(pg_url: str, pg_schema: str) -> None:
    factory = functools.partial(PostgresStore, pg_url, schema=pg_schema, pool_max=5)
    result = run_processes(course_workload(by="queries"), factory, processes=2, retry=CONTENDED)
    assert set(result.frame["client"]) == set(range(50))
    with factory() as store:
        check_bookings(store, result.summary()["succeeded"])


def test_the_stream_variant_writes_two_facts_per_join() -> None:
    store = MemoryStore()
    executor = registered(store)
    head = store.head()
    executor.execute(JoinCourseByStreams.of("s1", "c1"))
    assert store.head() == head + 2
    assert [e.event_type for e in store.read_all()[-2:]] == ["StudentJoinedCourse", "CourseSeatTaken"]


def test_a_query_based_command_over_http_and_its_typed_refusal() -> None:
    from eventcore_lab.web import CommandRoute, create_app, serve

    store = MemoryStore()
    registered(store, places=1)
    app = create_app(
        Executor(store, retry=NO_WAIT), [CommandRoute(JoinCourse, path="/courses/{course_id}/join")]
    )
    with serve(app) as running, running.client() as http:
        ok = http.post("/api/v1/courses/c1/join", json={"student_id": "s1"})
        full = http.post("/api/v1/courses/c1/join", json={"student_id": "s2"})
    assert ok.status_code == 200, ok.text
    assert full.status_code == 422 and full.json()["error"] == {
        "code": "BUSINESS_RULE_VIOLATION",
        "message": "The course has no free place left.",
    }
    assert bookings(store.read_all()).joins == [("s1", "c1")]


class StudentsCourses(Command[dict[str, int]]):
    """Reads a student's stream, then resolves a query per course joined (seats taken there)."""

    student: str = stream()

    def initial_state(self) -> dict[str, int]:
        return {}

    def apply(self, state: dict[str, int], event: Any) -> dict[str, int]:
        if isinstance(event.payload, StudentJoinedCourse):
            state[event.payload.course_id] = state.get(event.payload.course_id, 0) + 1
        return state

    def resolve(self, state: dict[str, int]) -> list[Query]:
        return [Query.of(QueryItem(types=("StudentJoinedCourse",), tags=(f"course:{c}",))) for c in state]

    def handle(self, state: dict[str, int], ctx: CommandContext) -> Sequence[EventToWrite]:
        busiest = max(state, key=lambda c: (state[c], c))
        return [
            emit(self.student, courses.CourseDescribed(course_id=busiest, text=f"{state[busiest]} joined"))
        ]


def test_a_resolver_may_name_queries_and_the_append_condition_guards_them() -> None:
    store = MemoryStore()
    executor = registered(store, places=5)
    for student, course in (("s1", "c1"), ("s1", "c2"), ("s2", "c2")):
        executor.execute(JoinCourse(student, course))
    result = Executor(store).execute(StudentsCourses("student-s1"))
    # c2 has s1 and s2: s1's join is in the stream read and in the resolved query, and is folded once
    assert result.events_written[0].payload.text == "2 joined"
    steps = Executor(store, retry=NO_WAIT).steps(StudentsCourses("student-s1"))
    assert [next(steps).phase for _ in range(4)] == [Phase.READ, Phase.DECIDE, Phase.READ, Phase.DECIDE]
    store.append([EventToWrite("student-s3", StudentJoinedCourse(student_id="s3", course_id="c1"))])
    assert next(steps).phase is Phase.BACKOFF  # the resolved query's course changed after the read
    assert drive(steps).attempts == 2


def test_every_interleaving_of_three_joins_by_query_keeps_every_rule() -> None:
    from eventcore_lab.simulation import ConcurrentScenario, explore

    def rules_hold(store: Any) -> None:
        problems = bookings(store.read_all()).violations()
        assert not problems, "; ".join(problems)

    scenario = (
        ConcurrentScenario("last place and last course")
        .given("course-c1", CourseRegistered(course_id="c1", name="one", places=1))
        .given("course-c2", CourseRegistered(course_id="c2", name="two", places=2))
        .given("student-s1", courses.StudentRegistered(student_id="s1", name="ann", max_courses=1))
        .given("student-s2", courses.StudentRegistered(student_id="s2", name="bob", max_courses=2))
        .client(JoinCourse("s1", "c1"))
        .client(JoinCourse("s1", "c2"))  # s1 may join one course: only one of these two
        .client(JoinCourse("s2", "c1"))  # c1 has one place: s1 or s2
    )
    report = explore(scenario, rules_hold)
    assert report.holds and report.complete and report.interleavings > 1, str(report)


def test_a_command_with_a_query_folds_from_scratch_even_with_snapshots() -> None:
    from eventcore_lab.snapshots import MemorySnapshots, Snapshots

    store = MemoryStore()
    registered(store)
    Executor(store).execute(JoinCourse("s1", "c1"))
    snapshots = Snapshots(MemorySnapshots(), every=1)
    executor = Executor(store, snapshots=snapshots)
    names = [executor.execute(Mixed("course-c1")).events_written[0].payload.name for _ in range(3)]
    assert names == ["2", "3", "4"]  # every event of the stream and the query, each once
    assert snapshots.saved == 0 and snapshots.hits == 0  # a query's events have no per-stream resume point
