"""Projections: protocol, runner (policies, checkpoints, live, lag, rebuild), frames, time travel, forks."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from test_projections_helpers import AccountTable, Balances

from eventcore_lab import EventToWrite, Executor, MemoryStore, StoredEvent
from eventcore_lab.core.errors import (
    EventCoreError,
    InvalidFormat,
    ProcessingFailed,
    ProjectionError,
    RebuildFailed,
)
from eventcore_lab.examples import banking, tasks
from eventcore_lab.examples.task_views import (
    STATUS_COUNTS_SQL,
    TaskBoard,
    TeamStatistics,
    UserTaskList,
    status_counts_frame,
)
from eventcore_lab.projections import (
    DuckDBCheckpoints,
    ErrorPolicy,
    FrameProjection,
    MemoryCheckpoints,
    Projection,
    ProjectionRunner,
    StoreCheckpoints,
    checkpoints_for,
    compare,
    diff_between,
    diff_frames,
    events_frame,
    fold,
    fork,
    handles,
    replay_frame,
    sql_frame,
    state_at,
)


def bank(n_deposits: int = 20) -> MemoryStore:
    store = MemoryStore()
    ex = Executor(store)
    for account in ("account-a", "account-b"):
        ex.execute(banking.OpenAccount(account, "owner", 10))
    for i in range(n_deposits):
        ex.execute(banking.Deposit("account-a" if i % 2 else "account-b", i + 1))
    return store


class FailsAt(Balances):
    """Raises on chosen positions, ``failures`` times each (then succeeds), before changing anything."""

    def __init__(self, positions: set[int], failures: int = 10**9) -> None:
        super().__init__()
        self.positions = positions
        self.left = dict.fromkeys(positions, failures)

    def apply(self, event: StoredEvent) -> None:
        if self.left.get(event.position, 0) > 0:
            self.left[event.position] -= 1
            raise ValueError(f"boom at {event.position}")
        super().apply(event)


class Positions(Projection):
    def __init__(self) -> None:
        self.seen: list[int] = []

    def apply(self, event: StoredEvent) -> None:
        self.seen.append(event.position)


# -- protocol --------------------------------------------------------------------------------------


def test_handlers_dispatch_by_payload_class_and_ignore_others() -> None:
    store = bank(4)
    balances = fold(Balances(), store.read_all())
    assert balances.balances == {"account-a": 10 + 2 + 4, "account-b": 10 + 1 + 3}
    assert Balances.name == "balances"
    assert set(Balances.handled_types()) == set(banking.EVENTS)


def test_subclass_handler_overrides_base_and_custom_apply_is_used_by_fold() -> None:
    class Doubled(Balances):
        @handles(banking.MoneyDeposited)
        def _deposited(self, event: StoredEvent) -> None:
            self.balances[event.stream_id] += 2 * event.payload.amount

    class Counting(Projection):
        def __init__(self) -> None:
            self.count = 0

        def apply(self, event: StoredEvent) -> None:
            self.count += 1

    store = bank(2)
    assert fold(Doubled(), store.read_all()).balances == {"account-a": 14, "account-b": 12}
    assert fold(Counting(), store.read_all()).count == 4


def test_handles_needs_event_classes() -> None:
    with pytest.raises(ProjectionError, match="event classes"):
        handles("MoneyDeposited")  # type: ignore[arg-type]


# -- runner ----------------------------------------------------------------------------------------


def test_runner_catches_up_in_batches_and_checkpoints() -> None:
    store = bank(20)
    checkpoints = MemoryCheckpoints()
    runner = ProjectionRunner(store, Balances(), checkpoints=checkpoints, batch_size=3)
    assert runner.run_until_caught_up(progress=False) == 22
    assert runner.projection.state() == fold(Balances(), store.read_all()).state()
    assert checkpoints.load("balances") == 22 == runner.position
    assert runner.run_until_caught_up() == 0
    assert runner.lag().events == 0


def test_runner_resumes_from_a_saved_checkpoint() -> None:
    store = bank(10)
    checkpoints = MemoryCheckpoints({"positions": 5})
    runner = ProjectionRunner(store, Positions(), checkpoints=checkpoints)
    runner.run_until_caught_up()
    assert runner.projection.seen == list(range(6, 13))


def test_run_until_a_position() -> None:
    store = bank(10)
    runner = ProjectionRunner(store, Balances(), batch_size=4)
    assert runner.run_until_caught_up(until=7) == 7
    assert runner.position == 7
    assert runner.projection.seen == list(range(1, 8))


def test_stop_policy_names_the_event_and_keeps_checkpoint_before_it() -> None:
    store = bank(10)
    checkpoints = MemoryCheckpoints()
    runner = ProjectionRunner(store, FailsAt({7}), checkpoints=checkpoints, batch_size=4)
    with pytest.raises(ProcessingFailed) as info:
        runner.run_until_caught_up()
    error = info.value
    assert error.code == "PR001"
    assert "position 7" in str(error) and "MoneyDeposited" in str(error) and "account-" in str(error)
    assert error.position == 7 and error.event_type == "MoneyDeposited"  # type: ignore[attr-defined]
    assert checkpoints.load("fails_at") == 6 == runner.position
    assert runner.projection.seen == [1, 2, 3, 4, 5, 6]
    # fixing the projection and running again continues with the failed event, exactly once
    runner.projection.positions.clear()
    runner.projection.left.clear()
    runner.run_until_caught_up()
    assert runner.projection.seen == list(range(1, 13))


def test_skip_policy_logs_records_and_moves_on(caplog: pytest.LogCaptureFixture) -> None:
    store = bank(10)
    runner = ProjectionRunner(store, FailsAt({3, 8}), error_policy="skip", batch_size=5)
    with caplog.at_level(logging.WARNING, logger="eventcore_lab.projections"):
        assert runner.run_until_caught_up() == 12
    assert [s.position for s in runner.skipped] == [3, 8]
    assert runner.skipped[0].event_type == "MoneyDeposited" and "boom at 3" in runner.skipped[0].error
    assert runner.projection.seen == [p for p in range(1, 13) if p not in (3, 8)]
    assert runner.applied == 10 and runner.position == 12
    assert "position 3" in caplog.text and "position 8" in caplog.text


def test_retry_policy_recovers_from_transient_failures() -> None:
    store = bank(6)
    delays: list[float] = []
    runner = ProjectionRunner(
        store, FailsAt({4}, failures=2), error_policy=ErrorPolicy.RETRY, retries=3, sleep=delays.append
    )
    runner.run_until_caught_up()
    assert runner.projection.seen == list(range(1, 9))
    assert delays == [0.05, 0.1]


def test_retry_policy_stops_when_retries_run_out() -> None:
    store = bank(6)
    runner = ProjectionRunner(store, FailsAt({4}), error_policy="retry", retries=2, sleep=lambda _: None)
    with pytest.raises(ProcessingFailed, match="after 3 attempts"):
        runner.run_until_caught_up()
    assert runner.position == 3


def test_runner_refuses_bad_configuration() -> None:
    store = MemoryStore()
    with pytest.raises(InvalidFormat, match="error_policy"):
        ProjectionRunner(store, Balances(), error_policy="ignore")
    with pytest.raises(InvalidFormat, match="batch_size"):
        ProjectionRunner(store, Balances(), batch_size=0)
    with pytest.raises(InvalidFormat, match="apply"):
        ProjectionRunner(store, object())


def test_live_runner_follows_new_events_and_stops() -> None:
    store = bank(2)
    runner = ProjectionRunner(store, Balances(), poll_interval=0.05)
    with runner:
        assert runner.running
        assert runner.wait_until(4)
        Executor(store).execute(banking.Deposit("account-a", 100))
        assert runner.wait_until(5)
        assert runner.query(lambda p: p.balances["account-a"]) == 112
    assert not runner.running
    Executor(store).execute(banking.Deposit("account-a", 1))
    assert runner.position == 5  # stopped: nothing more applied


def test_live_runner_keeps_the_error_that_stopped_it() -> None:
    store = bank(4)
    runner = ProjectionRunner(store, FailsAt({3}), poll_interval=0.05).start()
    assert not runner.wait_until(6, timeout=2)
    runner.stop()
    assert isinstance(runner.error, ProcessingFailed) and runner.position == 2


def test_lag_counts_pending_events_and_their_age() -> None:
    store = bank(4)
    runner = ProjectionRunner(store, Balances())
    lag = runner.lag()
    assert (lag.events, lag.position, lag.head) == (6, 0, 6)
    assert lag.seconds >= 0
    runner.run_until_caught_up(until=4)
    assert runner.lag().events == 2
    runner.run_until_caught_up()
    assert runner.lag().seconds == 0.0


def test_rebuild_serves_the_old_model_until_the_new_one_caught_up() -> None:
    store = bank(10)
    runner = ProjectionRunner(store, Balances(), batch_size=2)
    runner.run_until_caught_up()
    old = runner.projection
    seen_during_rebuild: list[object] = []

    class Watching(Balances):
        def apply(self, event: StoredEvent) -> None:
            seen_during_rebuild.append(runner.projection)
            super().apply(event)

    new = runner.rebuild(Watching)
    assert seen_during_rebuild and all(p is old for p in seen_during_rebuild)
    assert runner.projection is new and new.state() == old.state()
    assert runner.position == 12


def test_failed_rebuild_keeps_the_old_model() -> None:
    store = bank(4)
    runner = ProjectionRunner(store, Balances())
    runner.run_until_caught_up()
    old = runner.projection
    with pytest.raises(RebuildFailed, match="old read model is still served"):
        runner.rebuild(lambda: FailsAt({2}))
    assert runner.projection is old and runner.position == 6


def test_rebuild_while_live_loses_no_event() -> None:
    store = bank(50)
    runner = ProjectionRunner(store, Balances(), batch_size=5, poll_interval=0.02).start()
    try:
        writer = threading.Thread(
            target=lambda: [Executor(store).execute(banking.Deposit("account-a", 1)) for _ in range(30)]
        )
        writer.start()
        runner.rebuild()
        writer.join()
        assert runner.wait_until(store.head())
        assert runner.query(lambda p: p.state()) == fold(Balances(), store.read_all()).state()
    finally:
        runner.stop()


def test_projection_without_default_constructor_needs_a_factory() -> None:
    class Named(Balances):
        def __init__(self, label: str) -> None:
            super().__init__()
            self.label = label

    runner = ProjectionRunner(bank(1), Named("x"))
    with pytest.raises(ProjectionError, match="factory"):
        runner.rebuild()
    assert runner.rebuild(lambda: Named("y")).label == "y"


# -- checkpoints -----------------------------------------------------------------------------------


def test_checkpoint_stores_refuse_bad_input_and_default_to_zero(tmp_path: object) -> None:
    import duckdb

    connection = duckdb.connect()
    for checkpoints in (MemoryCheckpoints(), DuckDBCheckpoints(connection)):
        assert checkpoints.load("x") == 0
        checkpoints.save("x", 5)
        checkpoints.save("x", 7)
        assert checkpoints.load("x") == 7
        with pytest.raises(InvalidFormat, match="position"):
            checkpoints.save("x", -1)
        with pytest.raises(InvalidFormat, match="name"):
            checkpoints.load("  ")
        assert checkpoints.load("x") == 7
    with pytest.raises(InvalidFormat, match="identifier"):
        DuckDBCheckpoints(connection, table="x; drop table y")
    assert isinstance(checkpoints_for(MemoryStore()), StoreCheckpoints)  # the memory store keeps its own


# -- pandas ----------------------------------------------------------------------------------------


def test_frame_projection_upserts_appends_and_reports_unknown_tables() -> None:
    store = bank(4)
    table = fold(AccountTable(), store.read_all())
    frame = table.to_frame()
    assert list(frame.index) == ["account-a", "account-b"] and frame.index.name == "account"
    assert frame.loc["account-a", "balance"] == 16 and frame.loc["account-b", "events"] == 3
    with pytest.raises(ProjectionError, match="no keyed table 'nope'; declared: accounts"):
        table.upsert("nope", 1, a=1)
    with pytest.raises(ProjectionError, match="append-only"):
        table.append("accounts", a=1)

    class TwoTables(FrameProjection):
        tables = {"a": "k", "log": None}  # noqa: RUF012

    two = TwoTables()
    two.append("log", x=1)
    two.append("log", x=2, y="b")
    log = two.to_frame("log")
    assert log["x"].tolist() == [1, 2] and pd.isna(log.loc[0, "y"]) and log.loc[1, "y"] == "b"
    with pytest.raises(ProjectionError, match="name one"):
        two.to_frame()
    assert set(two.frames()) == {"a", "log"}


def test_events_frame_has_envelope_and_payload_columns() -> None:
    store = MemoryStore()
    ex = Executor(store)
    ex.execute(tasks.CreateTask.new("1", "Write", "", "alice", priority=tasks.Priority.HIGH), user_id="u1")
    ex.execute(tasks.AssignTask.new("1", "bob", "alice"))
    frame = events_frame(store)
    assert list(frame.columns[:9]) == [
        "position",
        "stream_id",
        "version",
        "event_type",
        "recorded_at",
        "event_id",
        "correlation_id",
        "causation_id",
        "user_id",
    ]
    assert frame["position"].tolist() == [1, 2, 3, 4]
    assert frame["event_type"].tolist() == [
        "TaskCreated",
        "TaskAssigned",
        "UserTaskAssigned",
        "WorkloadUpdated",
    ]
    assert (
        frame.loc[0, "title"] == "Write" and frame.loc[0, "priority"] == 3 and frame.loc[0, "user_id"] == "u1"
    )
    assert frame.loc[1, "assignee"] == "bob" and pd.isna(frame.loc[0, "assignee"])
    assert str(frame["recorded_at"].dtype).startswith("datetime64")
    assert frame.loc[3, "active_tasks"] == 1
    events = store.read_all()
    assert frame["event_id"].tolist() == [str(e.event_id) for e in events]
    assert frame.loc[0, "recorded_at"] == pd.Timestamp(events[0].recorded_at)


def test_events_frame_filters_types_streams_and_until() -> None:
    store = bank(10)
    only = events_frame(store, types=[banking.AccountOpened])
    assert only["event_type"].unique().tolist() == ["AccountOpened"] and len(only) == 2
    by_name = events_frame(store, types="MoneyDeposited", streams="account-a")
    assert len(by_name) == 5 and set(by_name["stream_id"]) == {"account-a"}
    assert len(events_frame(store, streams=["account-*"])) == 12
    assert events_frame(store, until=5)["position"].max() == 5
    assert len(events_frame(store, until=datetime.now(UTC) - timedelta(days=1))) == 0
    assert len(events_frame(store, payload=False).columns) == 9
    assert len(events_frame(MemoryStore())) == 0
    with pytest.raises(InvalidFormat, match="timezone-aware"):
        events_frame(store, until=datetime(2020, 1, 1))
    with pytest.raises(InvalidFormat, match="until="):
        events_frame(store, until=-1)


def test_payload_field_named_like_an_envelope_column_is_prefixed() -> None:
    from eventcore_lab import Event

    class VersionBumped(Event):
        version: int

    store = MemoryStore()
    store.append([EventToWrite("s", VersionBumped(version=9))])
    frame = events_frame(store)
    assert frame.loc[0, "version"] == 1 and frame.loc[0, "payload_version"] == 9


def test_vectorised_projection_matches_the_per_event_projection() -> None:
    store = MemoryStore()
    ex = Executor(store)
    for i in range(8):
        ex.execute(tasks.CreateTask.new(f"t{i}", "T", "", "alice"))
    for i in range(6):
        ex.execute(tasks.AssignTask.new(f"t{i}", "bob", "alice"))
    for i in range(3):
        ex.execute(tasks.CompleteTask.new(f"t{i}", "bob"))
    stats = fold(TeamStatistics(), store.read_all())
    counts = replay_frame(store, status_counts_frame)
    assert counts.to_dict() == stats.status_counts() == {"open": 2, "in_progress": 3, "completed": 3}
    sql = sql_frame(store, STATUS_COUNTS_SQL)
    assert dict(zip(sql["status"], sql["tasks"], strict=True)) == stats.status_counts()
    with pytest.raises(ProjectionError, match="SQL projection failed"):
        sql_frame(store, "select nope from events")


# -- time travel, diffs and forks ------------------------------------------------------------------


def test_state_at_a_position_and_at_a_time() -> None:
    store = bank(6)
    assert state_at(store, Balances, 4).seen == [1, 2, 3, 4]
    events = store.read_all()
    at = events[4].recorded_at
    assert state_at(store, Balances, at).seen == [e.position for e in events if e.recorded_at <= at]
    with pytest.raises(InvalidFormat, match="factory"):
        state_at(store, Balances(), 3)


def test_diff_between_two_points() -> None:
    store = bank(4)
    Executor(store).execute(banking.OpenAccount("account-c", "carol"))
    diff = diff_between(store, AccountTable, 4, store.head())
    assert diff.added.index.tolist() == ["account-c"]
    assert diff.removed.empty
    changed = diff.changed.set_index(["key", "column"])
    assert changed.loc[("account-a", "balance"), "after"] == 10 + 2 + 4
    assert changed.loc[("account-a", "balance"), "before"] == 10 + 2
    assert diff.summary()["changed_rows"] == 2
    assert diff_between(store, AccountTable, 3, 3).empty
    with pytest.raises(InvalidFormat, match="start <= end"):
        diff_between(store, AccountTable, 5, 2)


def test_diff_frames_reports_removed_rows_and_ignores_equal_missing_values() -> None:
    before = pd.DataFrame({"v": [1, None], "w": ["x", "y"]}, index=["a", "b"])
    after = pd.DataFrame({"v": [1, None], "w": ["x", "z"]}, index=["a", "c"])
    diff = diff_frames(before, after)
    assert diff.removed.index.tolist() == ["b"] and diff.added.index.tolist() == ["c"]
    assert diff.changed.empty
    with pytest.raises(ProjectionError, match="duplicate"):
        diff_frames(pd.DataFrame({"v": [1, 2]}, index=["a", "a"]), after)


def test_fork_copies_history_and_never_changes_the_original() -> None:
    store = bank(6)
    before = store.read_all()
    branch = fork(store, 5)
    assert branch.base == 5 and branch.store.head() == 5
    assert [e.event_id for e in branch.store.read_all()] == [e.event_id for e in before[:5]]
    branch.executor().execute(banking.Withdraw("account-a", 5))
    assert store.read_all() == before and store.head() == 8
    assert branch.original_position(3) == 3 and branch.original_position(6) is None
    assert [e.event_type for e in branch.branch_events()] == ["MoneyWithdrawn"]
    diff = compare(branch, AccountTable)
    balance = diff.changed.set_index(["key", "column"]).loc[("account-a", "balance")]
    assert (balance["before"], balance["after"]) == (10 + 2 + 4 + 6, 10 + 2 - 5)
    assert "branch" in repr(branch)
    with pytest.raises(InvalidFormat, match="fork point"):
        fork(store, -1)


def test_every_projection_error_is_an_eventcore_error() -> None:
    for cls in (ProcessingFailed, RebuildFailed, ProjectionError):
        assert issubclass(cls, EventCoreError)


# -- task views ------------------------------------------------------------------------------------


def test_manual_statistics_expectations_hold() -> None:
    """The manual's accuracy test: 10 created, 8 assigned, 5 completed (inventory C-5)."""
    store = MemoryStore()
    ex = Executor(store)
    users = ["alice", "bob", "charlie"]
    for i in range(10):
        ex.execute(tasks.CreateTask.new(f"t{i}", f"Task {i}", "", "alice"))
    stats = fold(TeamStatistics(), store.read_all())
    assert stats.total_created == 10 and stats.completion_rate() == 0.0
    for i in range(8):
        ex.execute(tasks.AssignTask.new(f"t{i}", users[i % 3], "alice"))
    for i in range(5):
        ex.execute(tasks.CompleteTask.new(f"t{i}", users[i % 3]))
    stats = fold(TeamStatistics(), store.read_all())
    assert stats.status_counts() == {"open": 2, "in_progress": 3, "completed": 5}
    assert stats.completion_rate() == 50.0
    assert stats.most_productive_user() == "alice"  # alice and bob completed 2; ties go alphabetically
    assert stats.workload_distribution() == pytest.approx(
        {"alice": 100 / 3, "bob": 100 / 3, "charlie": 100 / 3}
    )
    frame = stats.to_frame()
    assert frame.loc["alice", "tasks_completed"] == 2 and frame.loc["charlie", "tasks_in_progress"] == 1


def test_user_task_list_follows_assignment_and_completion() -> None:
    store = MemoryStore()
    ex = Executor(store)
    ex.execute(tasks.CreateTask.new("1", "Low", "", "alice", priority=tasks.Priority.LOW))
    ex.execute(tasks.CreateTask.new("2", "High", "", "alice", priority=tasks.Priority.HIGH))
    ex.execute(tasks.AssignTask.new("1", "alice", "alice"))
    ex.execute(tasks.AssignTask.new("2", "alice", "alice"))
    view = fold(UserTaskList(), store.read_all())
    assert [t.task_id for t in view.user_tasks("alice")] == ["2", "1"]
    assert view.user_tasks("alice")[0].status == tasks.TaskStatus.OPEN
    ex.execute(tasks.AssignTask.new("2", "bob", "alice"))
    ex.execute(tasks.CompleteTask.new("2", "bob"))
    view = fold(UserTaskList(), store.read_all())
    assert [t.task_id for t in view.user_tasks("alice")] == ["1"] and view.active_task_count("alice") == 1
    done = view.task("2")
    assert done is not None and done.status == tasks.TaskStatus.COMPLETED and done.completed_at is not None
    assert view.active_task_count("bob") == 0 and view.user_tasks("nobody") == []
    assert len(view.to_frame()) == 2


def test_user_task_list_refuses_an_assignment_of_an_unknown_task_without_changing_state() -> None:
    from eventcore_lab.core.errors import StateCorruption
    from eventcore_lab.testing.builders import build_history

    history = build_history(
        ("task-1", tasks.TaskCreated(task_id="1", title="A", description="", creator="a")),
        ("task-1", tasks.TaskAssigned(task_id="1", assignee="bob", assigned_by="a")),
        ("task-9", tasks.TaskAssigned(task_id="9", assignee="bob", assigned_by="a")),
    )
    view = fold(UserTaskList(), history[:2])
    with pytest.raises(StateCorruption, match="never created"):
        view.apply(history[2])
    assert list(view.tasks_by_user["bob"]) == ["1"]


def test_task_board_tables() -> None:
    store = MemoryStore()
    ex = Executor(store)
    ex.execute(tasks.CreateTask.new("1", "A", "", "alice"))
    ex.execute(tasks.AssignTask.new("1", "bob", "alice"))
    ex.execute(tasks.AddComment(tasks.task_stream("1"), "bob", "on it"))
    board = fold(TaskBoard(), store.read_all())
    row = board.to_frame("tasks").loc["1"]
    assert (row["status"], row["assignee"], row["comments"]) == ("in_progress", "bob", 1)
    assert board.to_frame("activity")["what"].tolist() == ["created", "assigned to bob", "commented"]
