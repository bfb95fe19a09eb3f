"""Properties of projections over random histories of the banking and task domains (run by the executor)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_projections_helpers import AccountTable, Balances, bank_commands, run_history, task_commands

from eventcore_lab import MemoryStore
from eventcore_lab.core.errors import ProcessingFailed
from eventcore_lab.examples.task_views import TaskBoard, TeamStatistics, UserTaskList
from eventcore_lab.projections import (
    MemoryCheckpoints,
    Projection,
    ProjectionRunner,
    diff_between,
    events_frame,
    fold,
    fork,
    state_at,
)

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

histories = st.one_of(
    st.lists(bank_commands, min_size=1, max_size=30).map(lambda c: ("bank", c)),
    st.lists(task_commands, min_size=1, max_size=30).map(lambda c: ("tasks", c)),
)


def store_of(history: tuple[str, list[Any]]) -> MemoryStore:
    store = MemoryStore()
    run_history(store, history[1])
    return store


def snapshot(projection: Any) -> Any:
    """A comparable view of any of the projections used here."""
    if isinstance(projection, Balances):
        return projection.state()
    if isinstance(projection, TeamStatistics):
        return (projection.status_counts(), projection.to_frame().to_dict(), dict(projection.by_priority))
    if isinstance(projection, UserTaskList):
        return projection.to_frame().to_dict()
    return {t: f.to_dict() for t, f in projection.frames().items()}


def factories(kind: str) -> list[Any]:
    return [Balances, AccountTable] if kind == "bank" else [TeamStatistics, UserTaskList, TaskBoard]


@SETTINGS
@given(histories, st.integers(1, 7))
def test_runner_equals_a_direct_fold(history: tuple[str, list[Any]], batch_size: int) -> None:
    store = store_of(history)
    for factory in factories(history[0]):
        runner = ProjectionRunner(store, factory(), batch_size=batch_size)
        runner.run_until_caught_up()
        assert snapshot(runner.projection) == snapshot(fold(factory(), store.read_all()))
        assert runner.position == store.head()


@SETTINGS
@given(st.lists(bank_commands, min_size=1, max_size=30), st.lists(st.integers(0, 40), max_size=6), st.data())
def test_stop_and_resume_processes_every_event_exactly_once(
    commands: list[Any], stops: list[int], data: st.DataObject
) -> None:
    store = MemoryStore()
    run_history(store, commands)
    checkpoints = MemoryCheckpoints()
    projection = Balances()
    for stop in sorted(stops):
        # a new runner per segment: what a restarted process does with the saved checkpoint
        runner = ProjectionRunner(
            store, projection, checkpoints=checkpoints, batch_size=data.draw(st.integers(1, 5))
        )
        runner.run_until_caught_up(until=stop)
    ProjectionRunner(store, projection, checkpoints=checkpoints).run_until_caught_up()
    assert projection.seen == [e.position for e in store.read_all()]
    assert projection.state() == fold(Balances(), store.read_all()).state()


@SETTINGS
@given(histories, st.lists(st.integers(1, 60), min_size=1, max_size=5))
def test_replay_in_chunks_equals_one_shot(history: tuple[str, list[Any]], cuts: list[int]) -> None:
    store = store_of(history)
    events = store.read_all()
    for factory in factories(history[0]):
        chunked = factory()
        start = 0
        for cut in [*sorted(cuts), len(events)]:
            fold(chunked, events[start:cut])
            start = max(start, cut)
        assert snapshot(chunked) == snapshot(fold(factory(), events))
    # an empty part is left out: concatenating it would widen int columns it lacks to float
    parts = [part for part in (events_frame(store, until=3), events_frame(store, after=3)) if len(part)]
    if len(events) >= 3:
        assert events_frame(store).equals(__import__("pandas").concat(parts, ignore_index=True))


class FailsOn(Projection):
    """Records every position it applies; raises (before changing anything) on the bad ones."""

    def __init__(self, bad: frozenset[int] = frozenset()) -> None:
        self.bad = bad
        self.seen: list[int] = []

    def apply(self, event: Any) -> None:
        if event.position in self.bad:
            raise RuntimeError(f"cannot apply {event.position}")
        self.seen.append(event.position)


@SETTINGS
@given(st.lists(bank_commands, min_size=1, max_size=30), st.data())
def test_error_policies_and_the_checkpoint(commands: list[Any], data: st.DataObject) -> None:
    store = MemoryStore()
    run_history(store, commands)
    head = store.head()
    if head == 0:
        return
    bad = frozenset(data.draw(st.sets(st.integers(1, head), min_size=1, max_size=3)))
    first_bad = min(bad)
    batch = data.draw(st.integers(1, 6))

    # stop: raises on the first bad event, checkpoint just before it, nothing after it applied
    checkpoints = MemoryCheckpoints()
    stop = ProjectionRunner(store, FailsOn(bad), checkpoints=checkpoints, batch_size=batch)
    try:
        stop.run_until_caught_up()
        raise AssertionError("the stop policy must raise")
    except ProcessingFailed as error:
        assert error.position == first_bad  # type: ignore[attr-defined]
    assert checkpoints.load("fails_on") == first_bad - 1 == stop.position
    assert stop.projection.seen == [p for p in range(1, first_bad)]

    # skip: every good event applied once, the bad ones recorded, checkpoint at the head
    skip = ProjectionRunner(store, FailsOn(bad), error_policy="skip", batch_size=batch)
    skip.run_until_caught_up()
    assert [s.position for s in skip.skipped] == sorted(bad)
    assert [p for p in skip.projection.seen] == [p for p in range(1, head + 1) if p not in bad]
    assert skip.position == head

    # retry with a permanent error: like stop, after the retries
    retry = ProjectionRunner(
        store, FailsOn(bad), error_policy="retry", retries=2, sleep=lambda _: None, batch_size=batch
    )
    try:
        retry.run_until_caught_up()
        raise AssertionError("the retry policy must raise when retries run out")
    except ProcessingFailed as error:
        assert "after 3 attempts" in str(error)
    assert retry.position == first_bad - 1


@SETTINGS
@given(histories, st.data())
def test_time_travel_equals_replaying_a_prefix(history: tuple[str, list[Any]], data: st.DataObject) -> None:
    store = store_of(history)
    events = store.read_all()
    p = data.draw(st.integers(0, len(events)))
    for factory in factories(history[0]):
        assert snapshot(state_at(store, factory, p)) == snapshot(fold(factory(), events[:p]))
    if history[0] == "bank":
        q = data.draw(st.integers(p, len(events)))
        diff = diff_between(store, AccountTable, p, q)
        before = fold(AccountTable(), events[:p]).to_frame()
        after = fold(AccountTable(), events[:q]).to_frame()
        assert sorted(diff.added.index) == sorted(set(after.index) - set(before.index))
        for key, column, old, new in diff.changed[["key", "column", "before", "after"]].itertuples(
            index=False
        ):
            assert before.loc[key, column] == old and after.loc[key, column] == new


@SETTINGS
@given(histories, st.lists(task_commands | bank_commands, max_size=10), st.data())
def test_fork_leaves_the_original_unchanged(
    history: tuple[str, list[Any]], branch_commands: list[Any], data: st.DataObject
) -> None:
    store = store_of(history)
    before = store.read_all()
    at = data.draw(st.integers(0, len(before)))
    branch = fork(store, at)
    run_history(branch.store, branch_commands)
    assert store.read_all() == before
    assert [e.event_id for e in branch.store.read_all()[:at]] == [e.event_id for e in before[:at]]
    for factory in factories(history[0]):
        assert snapshot(fold(factory(), branch.store.read_all()[:at])) == snapshot(
            state_at(store, factory, at)
        )
