"""Task management: the manual's getting-started domain.

Tasks live in ``task-<id>`` streams and people in ``user-<name>`` streams. Assigning a task writes to
both in one atomic step; reassigning also reaches the previous assignee's stream, which the command
discovers at run time (dynamic consistency boundary).

Choices where the manual contradicts itself (each is explained in the tutorials):

- reassignment writes to the previous assignee's stream too (the manual's model says it is affected, its
  code forgets it);
- cancel and reopen are left out, as in the manual's refined event list;
- ``AssignTask`` moves a task to *in progress* for statistics, which is what the manual's tests expect.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from eventcore_lab import Command, Event, EventToWrite, StoredEvent, emit, require, stream
from eventcore_lab.core.command import CommandContext


def task_stream(task_id: str) -> str:
    return f"task-{task_id}"


def user_stream(user_name: str) -> str:
    return f"user-{user_name}"


class Priority(enum.IntEnum):
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4


class TaskStatus(enum.StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"


# -- events on task streams --------------------------------------------------------------------------


class TaskCreated(Event):
    registration = "on_first_use"
    task_id: str
    title: str
    description: str
    creator: str
    priority: Priority = Priority.MEDIUM
    created_at: datetime | None = None


class TaskAssigned(Event):
    registration = "on_first_use"
    task_id: str
    assignee: str
    assigned_by: str
    assigned_at: datetime | None = None


class TaskUnassigned(Event):
    registration = "on_first_use"
    task_id: str
    previous_assignee: str
    unassigned_by: str


class TaskStarted(Event):
    registration = "on_first_use"
    task_id: str
    started_by: str


class TaskCompleted(Event):
    registration = "on_first_use"
    task_id: str
    completed_by: str
    completed_at: datetime | None = None


class CommentAdded(Event):
    registration = "on_first_use"
    task_id: str
    author: str
    comment: str


class PriorityChanged(Event):
    registration = "on_first_use"
    task_id: str
    old_priority: Priority
    new_priority: Priority
    changed_by: str


# -- events on user streams --------------------------------------------------------------------------


class UserTaskAssigned(Event):
    registration = "on_first_use"
    user_name: str
    task_id: str


class UserTaskUnassigned(Event):
    registration = "on_first_use"
    user_name: str
    task_id: str


class UserTaskCompleted(Event):
    registration = "on_first_use"
    user_name: str
    task_id: str


class WorkloadUpdated(Event):
    registration = "on_first_use"
    user_name: str
    active_tasks: int


# -- the state commands fold ---------------------------------------------------------------------------


@dataclass
class TaskState:
    exists: bool = False
    title: str = ""
    status: TaskStatus = TaskStatus.OPEN
    priority: Priority = Priority.MEDIUM
    assignee: str | None = None


@dataclass
class UserState:
    active_tasks: set[str] = field(default_factory=set)
    completed: int = 0


@dataclass
class Board:
    """Everything a task command may need: the tasks and users it read."""

    tasks: dict[str, TaskState] = field(default_factory=dict)
    users: dict[str, UserState] = field(default_factory=dict)

    def task(self, task_id: str) -> TaskState:
        return self.tasks.get(task_id) or TaskState()

    def user(self, name: str) -> UserState:
        return self.users.get(name) or UserState()


def apply_to_board(board: Board, event: StoredEvent) -> Board:
    """Fold one task or user event into the board (shared by every task command)."""
    payload = event.payload
    match payload:
        case TaskCreated(task_id=tid, title=title, priority=priority):
            board.tasks[tid] = TaskState(exists=True, title=title, priority=priority)
        case TaskAssigned(task_id=tid, assignee=assignee):
            board.tasks.setdefault(tid, TaskState()).assignee = assignee
        case TaskUnassigned(task_id=tid):
            board.tasks.setdefault(tid, TaskState()).assignee = None
        case TaskStarted(task_id=tid):
            board.tasks.setdefault(tid, TaskState()).status = TaskStatus.IN_PROGRESS
        case TaskCompleted(task_id=tid):
            board.tasks.setdefault(tid, TaskState()).status = TaskStatus.COMPLETED
        case PriorityChanged(task_id=tid, new_priority=priority):
            board.tasks.setdefault(tid, TaskState()).priority = priority
        case UserTaskAssigned(user_name=name, task_id=tid):
            board.users.setdefault(name, UserState()).active_tasks.add(tid)
        case UserTaskUnassigned(user_name=name, task_id=tid):
            board.users.setdefault(name, UserState()).active_tasks.discard(tid)
        case UserTaskCompleted(user_name=name, task_id=tid):
            user = board.users.setdefault(name, UserState())
            user.active_tasks.discard(tid)
            user.completed += 1
    return board


class _TaskCommand(Command[Board]):
    def initial_state(self) -> Board:
        return Board()

    def apply(self, state: Board, event: StoredEvent) -> Board:
        return apply_to_board(state, event)


class CreateTask(_TaskCommand):
    """Create a task: 1 event on 1 stream."""

    task_id: str = stream()
    title: str
    description: str
    creator: str
    priority: Priority = Priority.MEDIUM

    @classmethod
    def new(cls, task_id: str, title: str, description: str, creator: str, **kwargs: object) -> CreateTask:
        return cls(task_stream(task_id), title, description, creator, **kwargs)  # type: ignore[arg-type]

    def handle(self, state: Board, ctx: CommandContext) -> Sequence[EventToWrite]:
        tid = _task_id(self.task_id)
        require(not state.task(tid).exists, f"Task {self.task_id} already exists")
        require(self.title.strip(), "a task needs a title")
        require(len(self.description) <= 2000, "description is limited to 2000 characters")
        created = TaskCreated(
            task_id=tid,
            title=self.title,
            description=self.description,
            creator=self.creator,
            priority=self.priority,
            created_at=ctx.now,
        )
        return [emit(self.task_id, created)]


class AssignTask(_TaskCommand):
    """Assign a task: 3 events on 2 streams (task, assignee); a reassignment also reaches the previous
    assignee's stream, found at run time."""

    task_id: str = stream()
    assignee_id: str = stream()
    assigned_by: str

    @classmethod
    def new(cls, task_id: str, assignee: str, assigned_by: str) -> AssignTask:
        return cls(task_stream(task_id), user_stream(assignee), assigned_by)

    def handle(self, state: Board, ctx: CommandContext) -> Sequence[EventToWrite]:
        tid, assignee = _task_id(self.task_id), _user_name(self.assignee_id)
        task = state.task(tid)
        require(task.exists, f"Cannot assign non-existent task {self.task_id}")
        require(task.status != TaskStatus.COMPLETED, "Cannot assign completed task")
        require(task.assignee != assignee, f"Task is already assigned to {assignee}")
        writes = []
        if task.assignee is not None:
            previous = user_stream(task.assignee)
            ctx.add_streams(previous)  # widen the boundary: the previous assignee loses the task
            writes += [
                emit(
                    self.task_id,
                    TaskUnassigned(
                        task_id=tid, previous_assignee=task.assignee, unassigned_by=self.assigned_by
                    ),
                ),
                emit(previous, UserTaskUnassigned(user_name=task.assignee, task_id=tid)),
            ]
        active = len(state.user(assignee).active_tasks) + 1
        return [
            *writes,
            emit(
                self.task_id,
                TaskAssigned(
                    task_id=tid, assignee=assignee, assigned_by=self.assigned_by, assigned_at=ctx.now
                ),
            ),
            emit(self.assignee_id, UserTaskAssigned(user_name=assignee, task_id=tid)),
            emit(self.assignee_id, WorkloadUpdated(user_name=assignee, active_tasks=active)),
        ]


class StartTask(_TaskCommand):
    task_id: str = stream()
    started_by: str

    def handle(self, state: Board, ctx: CommandContext) -> Sequence[EventToWrite]:
        task = state.task(_task_id(self.task_id))
        require(task.exists, f"Cannot start non-existent task {self.task_id}")
        require(task.status == TaskStatus.OPEN, f"Task {self.task_id} is {task.status.value}, not open")
        return [emit(self.task_id, TaskStarted(task_id=_task_id(self.task_id), started_by=self.started_by))]


class CompleteTask(_TaskCommand):
    """Complete a task: 2 events on 2 streams (task, user). Only the assignee or ``admin`` may."""

    task_id: str = stream()
    user_id: str = stream()
    completed_by: str

    @classmethod
    def new(cls, task_id: str, completed_by: str) -> CompleteTask:
        return cls(task_stream(task_id), user_stream(completed_by), completed_by)

    def handle(self, state: Board, ctx: CommandContext) -> Sequence[EventToWrite]:
        tid = _task_id(self.task_id)
        task = state.task(tid)
        require(task.exists, f"Cannot complete non-existent task {self.task_id}")
        require(task.status != TaskStatus.COMPLETED, "Task is already completed")
        require(
            task.assignee is None or self.completed_by in (task.assignee, "admin"),
            "Only assigned user or admin can complete task",
        )
        return [
            emit(
                self.task_id, TaskCompleted(task_id=tid, completed_by=self.completed_by, completed_at=ctx.now)
            ),
            emit(self.user_id, UserTaskCompleted(user_name=_user_name(self.user_id), task_id=tid)),
        ]


class AddComment(_TaskCommand):
    task_id: str = stream()
    author: str
    comment: str

    def handle(self, state: Board, ctx: CommandContext) -> Sequence[EventToWrite]:
        require(
            state.task(_task_id(self.task_id)).exists, f"Cannot comment on non-existent task {self.task_id}"
        )
        require(self.comment.strip(), "a comment needs content")
        return [
            emit(
                self.task_id,
                CommentAdded(task_id=_task_id(self.task_id), author=self.author, comment=self.comment),
            )
        ]


class ChangePriority(_TaskCommand):
    task_id: str = stream()
    priority: Priority
    changed_by: str

    def handle(self, state: Board, ctx: CommandContext) -> Sequence[EventToWrite]:
        task = state.task(_task_id(self.task_id))
        require(task.exists, f"Cannot change priority of non-existent task {self.task_id}")
        if task.priority == self.priority:
            return []  # already so: an idempotent no-op
        changed = PriorityChanged(
            task_id=_task_id(self.task_id),
            old_priority=task.priority,
            new_priority=self.priority,
            changed_by=self.changed_by,
        )
        return [emit(self.task_id, changed)]


def _task_id(stream_id: str) -> str:
    return stream_id.strip().removeprefix("task-")


def _user_name(stream_id: str) -> str:
    return stream_id.strip().removeprefix("user-")


COMMANDS = (CreateTask, AssignTask, StartTask, CompleteTask, AddComment, ChangePriority)
EVENTS = (
    TaskCreated,
    TaskAssigned,
    TaskUnassigned,
    TaskStarted,
    TaskCompleted,
    CommentAdded,
    PriorityChanged,
    UserTaskAssigned,
    UserTaskUnassigned,
    UserTaskCompleted,
    WorkloadUpdated,
)
