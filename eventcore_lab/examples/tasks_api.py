"""The task-management domain served over HTTP: the manual's Part 4 example, on our own commands.

``build()`` wires the commands of :mod:`eventcore_lab.examples.tasks` and the read models of
:mod:`eventcore_lab.examples.task_views` into an app with two API versions, bearer JWT authentication
and a permission rule for assigning tasks. ``python -m eventcore_lab.examples.tasks_api`` serves it on
loopback (store from ``$EVENTCORE_STORE``, ``memory`` by default).

The versions differ the way the manual's do: v1 (deprecated) knows one assignee as a string and no
priority; v2 adds the priority (a lowercase name), links, and returns the full command result. Both run
the same version-agnostic commands; converters translate at the boundary.

Choices where the manual leaves a gap: ``require`` failures answer 400 (the manual maps
ValidationFailed to 400), a command's ``BusinessRuleViolation`` answers 422; ``PostComment`` carries a
client-made comment id that the task remembers, so a repeated post writes nothing (command-level
idempotency, besides the HTTP Idempotency-Key).
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import Header, Request
from pydantic import BaseModel, ConfigDict, Field

from eventcore_lab import (
    Command,
    Event,
    EventToWrite,
    Executor,
    StoredEvent,
    emit,
    require,
    stream,
)
from eventcore_lab.core.command import CommandContext
from eventcore_lab.errors import BusinessRuleViolation
from eventcore_lab.projections import Projection, ProjectionRunner, handles

from .task_views import TeamStatistics, UserTaskList
from .tasks import (
    AssignTask,
    CommentAdded,
    CompleteTask,
    CreateTask,
    Priority,
    PriorityChanged,
    TaskAssigned,
    TaskCompleted,
    TaskCreated,
    TaskStarted,
    TaskStatus,
    TaskUnassigned,
)

#: Roles that may assign tasks (the manual's ``can_assign_tasks``).
CAN_ASSIGN_TASKS = ("admin", "manager", "lead")
V1_SUNSET = datetime(2027, 12, 31, 23, 59, 59, tzinfo=UTC)


class CommentPosted(Event):
    registration = "on_first_use"
    task_id: str
    comment_id: str
    author: str
    comment: str


@dataclass
class CommentThread:
    """What PostComment needs: whether the task exists, its status, and the comment ids it has seen."""

    exists: bool = False
    completed: bool = False
    comment_ids: set[str] = field(default_factory=set)


class PostComment(Command[CommentThread]):
    """Comment on a task, once per ``comment_id``: a repeat is a successful no-op (nothing written)."""

    task_id: str = stream()
    comment_id: str
    author: str
    comment: str

    def initial_state(self) -> CommentThread:
        return CommentThread()

    def apply(self, state: CommentThread, event: StoredEvent) -> CommentThread:
        match event.payload:
            case TaskCreated():
                state.exists = True
            case TaskCompleted():
                state.completed = True
            case CommentPosted(comment_id=cid):
                state.comment_ids.add(cid)
        return state

    def handle(self, state: CommentThread, ctx: CommandContext) -> Sequence[EventToWrite]:
        tid = self.task_id.removeprefix("task-")
        require(state.exists, f"Cannot comment on non-existent task {self.task_id}")
        if self.comment_id in state.comment_ids:
            return []  # already posted: the retry of a request that succeeded
        if not self.comment.strip():
            raise BusinessRuleViolation("a comment needs content")
        if state.completed:
            raise BusinessRuleViolation(f"task {tid} is completed; it takes no more comments")
        posted = CommentPosted(
            task_id=tid, comment_id=self.comment_id, author=self.author, comment=self.comment
        )
        return [emit(self.task_id, posted)]


# -- a read model of tasks by id -----------------------------------------------------------------------


@dataclass
class TaskView:
    id: str
    title: str
    description: str
    status: str
    priority: str
    assignees: list[str]
    creator: str
    created_at: datetime
    updated_at: datetime
    comments: int = 0


class TaskCatalog(Projection):
    """Every task by id, for ``GET /tasks/{id}``."""

    name = "task_catalog"

    def __init__(self) -> None:
        self.tasks: dict[str, TaskView] = {}

    def get(self, task_id: str) -> TaskView | None:
        return self.tasks.get(task_id)

    @handles(TaskCreated)
    def _created(self, event: StoredEvent) -> None:
        e = event.payload
        at = e.created_at or event.recorded_at
        self.tasks[e.task_id] = TaskView(
            e.task_id,
            e.title,
            e.description,
            TaskStatus.OPEN.value,
            e.priority.name.lower(),
            [],
            e.creator,
            at,
            at,
        )

    def _touch(self, event: StoredEvent, **changes: Any) -> None:
        view = self.tasks.get(event.payload.task_id)
        if view is not None:
            for name, value in changes.items():
                setattr(view, name, value)
            view.updated_at = event.recorded_at

    @handles(TaskAssigned)
    def _assigned(self, event: StoredEvent) -> None:
        view = self.tasks.get(event.payload.task_id)
        status = TaskStatus.IN_PROGRESS.value if view and view.status == TaskStatus.OPEN.value else None
        self._touch(event, assignees=[event.payload.assignee], **({"status": status} if status else {}))

    @handles(TaskUnassigned)
    def _unassigned(self, event: StoredEvent) -> None:
        self._touch(event, assignees=[])

    @handles(TaskStarted)
    def _started(self, event: StoredEvent) -> None:
        self._touch(event, status=TaskStatus.IN_PROGRESS.value)

    @handles(TaskCompleted)
    def _completed(self, event: StoredEvent) -> None:
        self._touch(event, status=TaskStatus.COMPLETED.value)

    @handles(PriorityChanged)
    def _priority(self, event: StoredEvent) -> None:
        self._touch(event, priority=event.payload.new_priority.name.lower())

    @handles(CommentAdded, CommentPosted)
    def _commented(self, event: StoredEvent) -> None:
        view = self.tasks.get(event.payload.task_id)
        if view is not None:
            self._touch(event, comments=view.comments + 1)


# -- request schemas and converters per version --------------------------------------------------------


class CreateTaskV1(BaseModel):
    """Version 1: a title and a description (priority is always medium)."""

    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=200, examples=["Write the release notes"])
    description: str = Field(default="", max_length=2000)


class CreateTaskV2(CreateTaskV1):
    """Version 2 adds the priority, as a lowercase name."""

    priority: Literal["low", "medium", "high", "critical"] = "medium"


def _v1_create(body: dict[str, Any]) -> dict[str, Any]:
    return {**body, "priority": Priority.MEDIUM}


def _v2_create(body: dict[str, Any]) -> dict[str, Any]:
    return {**body, "priority": Priority[body["priority"].upper()]}


def _v1_created(result: dict[str, Any]) -> dict[str, Any]:
    return {"task_id": result["resource_id"].removeprefix("task-"), "message": "Task created successfully"}


def _v2_created(result: dict[str, Any]) -> dict[str, Any]:
    tid = result["resource_id"].removeprefix("task-")
    return {**result, "task_id": tid, "_links": {"self": f"/api/v2/tasks/{tid}"}}


def task_v1(view: TaskView) -> dict[str, Any]:
    """Version 1 shows one assignee as a string ("" when nobody)."""
    return {
        "id": view.id,
        "title": view.title,
        "description": view.description,
        "status": view.status,
        "assigned_to": view.assignees[0] if view.assignees else "",
        "created_at": view.created_at.isoformat(),
        "updated_at": view.updated_at.isoformat(),
    }


def task_v2(view: TaskView) -> dict[str, Any]:
    return {
        "id": view.id,
        "title": view.title,
        "description": view.description,
        "status": view.status,
        "priority": view.priority,
        "assigned_to": list(view.assignees),
        "comments": view.comments,
        "created_at": view.created_at.isoformat(),
        "updated_at": view.updated_at.isoformat(),
        "_links": {"self": f"/api/v2/tasks/{view.id}"},
    }


@dataclass
class TasksApi:
    """What :func:`build` made: the app, its authenticator (to mint tokens), executor and read models."""

    app: Any
    auth: Any
    executor: Executor
    catalog: ProjectionRunner
    user_tasks: ProjectionRunner
    statistics: ProjectionRunner
    extra: dict[str, Any] = field(default_factory=dict)


def _new_task_id() -> str:
    return uuid.uuid4().hex[:12]


def build(
    store: Any = None,
    *,
    secret: str | None = None,
    rate_limit: Any = None,
    idempotency_ttl: float = 24 * 3600.0,
    executor: Executor | None = None,
) -> TasksApi:
    """The task API over ``store`` (a new MemoryStore by default). ``secret`` signs JWTs (default:
    ``$TASKS_API_SECRET`` or a random one for this process)."""
    from eventcore_lab import MemoryStore
    from eventcore_lab.web import (
        ApiVersion,
        CacheConfig,
        CommandRoute,
        Deprecation,
        JwtAuth,
        QueryRoute,
        ResourceNotFound,
        any_role,
        create_app,
        negotiate_version,
    )

    store = store if store is not None else MemoryStore()
    executor = executor or Executor(store)
    auth = JwtAuth(
        secret or os.environ.get("TASKS_API_SECRET") or secrets.token_hex(32),
        issuer="eventcore-lab",
        audience="tasks-api",
    )
    catalog = ProjectionRunner(store, TaskCatalog())
    user_tasks = ProjectionRunner(store, UserTaskList())
    statistics = ProjectionRunner(store, TeamStatistics())

    def commands(version: str) -> list[CommandRoute]:
        v1 = version == "v1"
        return [
            CommandRoute(
                CreateTask,
                path="/tasks",
                streams={"task_id": "task-{}"},
                generated={"task_id": _new_task_id},
                caller_fields=("creator",),
                status_code=201,
                body_model=CreateTaskV1 if v1 else CreateTaskV2,
                convert=_v1_create if v1 else _v2_create,
                present=_v1_created if v1 else _v2_created,
                summary="Create a task",
                example={"title": "Write the release notes", "description": "for 2.0"},
            ),
            CommandRoute(
                AssignTask,
                path="/tasks/{task_id}/assign",
                streams={"task_id": "task-{}", "assignee_id": "user-{}"},
                caller_fields=("assigned_by",),
                permission=any_role(*CAN_ASSIGN_TASKS),
                summary="Assign a task (admin, manager or lead)",
                example={"assignee_id": "bob"},
            ),
            CommandRoute(
                CompleteTask,
                path="/tasks/{task_id}/complete",
                streams={"task_id": "task-{}", "user_id": "user-{}"},
                caller_fields=("user_id", "completed_by"),
                summary="Complete a task (its assignee, or admin)",
            ),
            CommandRoute(
                PostComment,
                path="/tasks/{task_id}/comments",
                streams={"task_id": "task-{}"},
                caller_fields=("author",),
                status_code=201,
                summary="Comment on a task, once per comment_id",
                example={"comment_id": "c-1", "comment": "Looks good"},
            ),
        ]

    def queries(version: str) -> list[QueryRoute]:
        shape = task_v1 if version == "v1" else task_v2
        return [
            QueryRoute(
                "/tasks/{task_id}",
                lambda catalog_, task_id: (lambda v: shape(v) if v else None)(catalog_.get(task_id)),
                catalog,
                not_found="Task",
                summary="One task",
                name="task",
            ),
            QueryRoute(
                "/users/{user}/tasks",
                lambda model, user: model.user_tasks(user),
                user_tasks,
                paged=True,
                summary="A user's tasks, most urgent first",
                name="user_tasks",
            ),
            QueryRoute(
                "/statistics",
                lambda stats: {
                    "total_tasks": stats.total_created,
                    "tasks_by_status": stats.status_counts(),
                    "completion_rate": stats.completion_rate(),
                },
                statistics,
                cache=CacheConfig(public_max_age=300, stale_while_revalidate=60),
                summary="Team statistics (cacheable for 5 minutes)",
                name="statistics",
            ),
        ]

    versions = [
        ApiVersion(
            "/api/v1",
            commands("v1"),
            queries("v1"),
            deprecation=Deprecation(sunset=V1_SUNSET, successor="/api/v2/docs"),
            name="v1",
        ),
        ApiVersion("/api/v2", commands("v2"), queries("v2"), name="v2"),
    ]
    app = create_app(
        executor,
        versions=versions,
        auth=auth,
        rate_limit=rate_limit,
        idempotency_ttl=idempotency_ttl,
        title="Task management API",
        version="2.0.0",
    )

    @app.get("/api/tasks/{task_id}", tags=["negotiated"], summary="One task, version by API-Version header")
    async def negotiated_task(
        request: Request, task_id: str, api_version: str | None = Header(default=None, alias="API-Version")
    ) -> dict[str, Any]:
        auth(request.headers)
        wanted = negotiate_version(request.headers, supported=("1", "2"), default="2")
        view = catalog.query(lambda c: c.get(task_id))
        if view is None:
            raise ResourceNotFound("Task not found")
        return task_v1(view) if wanted == "1" else task_v2(view)

    @app.get("/api/versions", tags=["negotiated"], summary="Which versions exist and their status")
    async def api_versions() -> list[dict[str, Any]]:
        return [
            {
                "version": "v1",
                "status": "deprecated",
                "deprecated": True,
                "sunset_date": V1_SUNSET.date().isoformat(),
                "endpoints": [{"path": "/api/v1/tasks", "methods": ["GET", "POST"]}],
            },
            {
                "version": "v2",
                "status": "stable",
                "deprecated": False,
                "sunset_date": None,
                "endpoints": [
                    {"path": "/api/v2/tasks", "methods": ["GET", "POST"]},
                    {"path": "/api/v2/batch", "methods": ["POST"]},
                ],
            },
        ]

    return TasksApi(app, auth, executor, catalog, user_tasks, statistics)


def main() -> None:  # pragma: no cover - a manual entry point
    """Serve the task API on loopback until Ctrl+C or SIGTERM (uvicorn shuts down gracefully)."""
    import uvicorn

    from eventcore_lab import open_store

    api = build(open_store(os.environ.get("EVENTCORE_STORE", "memory")))
    print("token for admin:", api.auth.mint("admin", roles=["admin"]))
    uvicorn.run(
        api.app, host="127.0.0.1", port=int(os.environ.get("PORT", "8000")), timeout_graceful_shutdown=5
    )


if __name__ == "__main__":  # pragma: no cover
    main()
