"""Command endpoints: a request schema derived from a Command's fields, and one way to run it.

A :class:`CommandRoute` says where a command is served and where each field comes from: the URL path,
the caller's id, a server-side generator, or the JSON body (everything else). Stream fields may carry a
template (``"task-{}"``) so that clients send plain ids. The same ``run`` serves the endpoint and the
batch endpoint, so permissions, metadata and error mapping cannot differ between them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, create_model

from ..core.command import Command
from ..core.executor import ExecutionResult
from ._auth import Principal, Rule
from .errors import Forbidden

_PATH_PARAM = re.compile(r"{([A-Za-z_][A-Za-z0-9_]*)}")


@dataclass(frozen=True)
class CommandRoute:
    """How one Command class is served over HTTP.

    ``streams`` maps a field to a template whose ``{}`` receives the value sent (``"task-{}"``);
    ``caller_fields`` are set to the authenticated caller's id; ``generated`` fields are made by the
    server (e.g. a new task id). ``body_model`` and ``convert`` let an API version keep its own request
    schema (the body, as a dict, is converted into the command's fields); ``present`` converts the
    response. ``permission`` decides whether the caller may run the command (403 otherwise).
    """

    command: type[Command[Any]]
    path: str | None = None
    streams: Mapping[str, str] = field(default_factory=dict)
    caller_fields: tuple[str, ...] = ()
    generated: Mapping[str, Callable[[], Any]] = field(default_factory=dict)
    permission: Rule | None = None
    status_code: int = 200
    name: str | None = None
    summary: str | None = None
    example: Mapping[str, Any] | None = None
    body_model: type[BaseModel] | None = None
    convert: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    present: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    require_idempotency_key: bool = False

    @property
    def operation(self) -> str:
        return self.name or self.command.__name__

    def url(self, prefix: str) -> str:
        return prefix.rstrip("/") + (self.path or f"/commands/{_snake(self.command.__name__)}")

    def path_params(self) -> list[str]:
        return _PATH_PARAM.findall(self.path or "")


def as_route(item: CommandRoute | type[Command[Any]]) -> CommandRoute:
    return item if isinstance(item, CommandRoute) else CommandRoute(item)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def body_model_for(route: CommandRoute) -> type[BaseModel]:
    """The request body schema: the command's fields not taken from the path, the caller or the server."""
    if route.body_model is not None:
        return route.body_model
    command = route.command
    hints = typing.get_type_hints(command)
    excluded = {*route.path_params(), *route.caller_fields, *route.generated}
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(command):  # type: ignore[arg-type]
        if f.name in excluded or not f.init:
            continue
        hint = hints.get(f.name, Any)
        try:
            TypeAdapter(hint)
        except Exception:  # a type pydantic cannot describe: accept any JSON value
            hint = Any
        if f.default is not dataclasses.MISSING:
            fields[f.name] = (hint, f.default)
        elif f.default_factory is not dataclasses.MISSING:
            fields[f.name] = (hint, Field(default_factory=f.default_factory))
        else:
            fields[f.name] = (hint, ...)
    config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [dict(route.example)]} if route.example else None
    )
    model: type[BaseModel] = create_model(
        f"{command.__name__}Request", __config__=config, __doc__=(command.__doc__ or None), **fields
    )
    return model


def fill_template(template: str, value: Any) -> Any:
    if isinstance(value, str):
        return template.format(value)
    if isinstance(value, list | tuple):
        return [template.format(v) for v in value]
    return value


def build_command(
    route: CommandRoute, body: Mapping[str, Any], path: Mapping[str, str], principal: Principal
) -> Command[Any]:
    """The command from the body, the path, the caller and the server's generators."""
    data = dict(route.convert(dict(body)) if route.convert else body)
    data.update(path)
    for name in route.caller_fields:
        data[name] = principal.id
    for name, make in route.generated.items():
        data[name] = make()
    for name, template in route.streams.items():
        if name in data:
            data[name] = fill_template(template, data[name])
    return route.command(**data)


def authorize(route: CommandRoute, principal: Principal, command: Command[Any]) -> None:
    if route.permission is not None and not route.permission(principal, command):
        raise Forbidden(f"Insufficient permissions to run {route.operation}")


def result_body(
    route: CommandRoute, command: Command[Any], result: ExecutionResult, request_id: str
) -> dict[str, Any]:
    """What a successful command returns: where it wrote, at which positions, after how many attempts."""
    generated = [getattr(command, n) for n in route.generated if isinstance(getattr(command, n), str)]
    read = [str(s) for s in command.read_streams()]
    body: dict[str, Any] = {
        "status": "success",
        "command": route.operation,
        "resource_id": generated[0] if generated else (read[0] if read else None),
        "events": [
            {
                "stream_id": e.stream_id,
                "version": e.version,
                "position": e.position,
                "event_type": e.event_type,
            }
            for e in result.events_written
        ],
        "streams_affected": [str(s) for s in result.streams_affected],
        "position": result.events_written[-1].position if result.events_written else None,
        "attempts": result.attempts,
        "correlation_id": request_id,
    }
    return route.present(body) if route.present else body


def fingerprint(route: CommandRoute, body: Mapping[str, Any], path: Mapping[str, str]) -> str:
    """A digest of what the request asks for, insensitive to JSON key order and whitespace."""
    canonical = msgspec.json.encode({"body": body, "path": dict(path)}, order="sorted")
    return hashlib.sha256(route.operation.encode() + b"\0" + canonical).hexdigest()
