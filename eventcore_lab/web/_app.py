"""``create_app``: serve commands, read models and the log of one executor over HTTP (FastAPI).

The web layer stays thin: parse and validate the request, authenticate, authorize, build the command,
let the executor run it, and map the result or the error. Everything the domain decides stays in the
commands; the same classes run in a notebook and behind this app.
"""

from __future__ import annotations

import contextlib
import inspect
import re
import threading
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from enum import Enum
from typing import Annotated, Any

import msgspec
from fastapi import Body, FastAPI, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.sse import EventSourceResponse, format_sse_event
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..core.errors import EventCoreError
from ..core.executor import Executor
from ..stores.filters import LogFilter
from ._auth import Authenticator, Principal, anonymous
from ._commands import (
    CommandRoute,
    as_route,
    authorize,
    body_model_for,
    build_command,
    fingerprint,
    result_body,
)
from ._events import DEFAULT_LIMIT, check_limit, event_json, json_values, page_body, parse_cursor
from ._health import HealthCheck, library_health, normalise
from ._idempotency import Claim, IdempotencyStore, Stored, claim, idempotency_for
from ._middleware import RequestContext, request_id_of
from ._queries import QueryRoute, etag_of, not_modified, page_of, read_model
from ._ratelimit import RateLimit
from ._versioning import ApiVersion, vendor_media_type
from .errors import (
    ERROR_STATUS,
    ErrorRule,
    IdempotencyKeyReused,
    PayloadTooLarge,
    RequestInProgress,
    RequestInvalid,
    ResourceNotFound,
    error_body,
    rule_for,
)

JSON = "application/json"
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
MAX_BATCH = 100


def _plain(value: Any) -> Any:
    """JSON for the few types msgspec leaves out (str subclasses such as StreamId)."""
    if isinstance(value, str):
        return str(value)
    raise NotImplementedError(f"cannot encode {type(value).__name__} as JSON")


_encoder = msgspec.json.Encoder(enc_hook=_plain)


def _encode(value: Any) -> bytes:
    return _encoder.encode(value)


def _field_errors(errors: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """pydantic's error list as ``{field: [messages]}`` (``body.title`` -> ``title``)."""
    out: dict[str, list[str]] = {}
    for err in errors:
        loc = [str(p) for p in err.get("loc", ())]
        if loc and loc[0] == "body":
            loc = loc[1:] if len(loc) > 1 and not loc[1].isdigit() else ["body"]
        name = ".".join(loc) or "body"
        out.setdefault(name, []).append(str(err.get("msg", "invalid")))
    return out


class BatchOperation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    command: str = Field(description="the operation name of a command endpoint (its class name)")
    params: dict[str, str] = Field(default_factory=dict, description="the endpoint's path parameters")
    body: dict[str, Any] = Field(default_factory=dict)


class BatchRequest(BaseModel):
    """Commands run one after another, in order; with ``stop_on_error`` the rest is left out."""

    model_config = ConfigDict(extra="forbid")
    operations: list[BatchOperation] = Field(max_length=MAX_BATCH)
    stop_on_error: bool = False


class _Service:
    """The imperative shell behind the routes: authentication, limits, idempotency, execution."""

    def __init__(
        self,
        executor: Executor,
        *,
        auth: Authenticator,
        rate_limit: RateLimit | None,
        idempotency: IdempotencyStore,
        idempotency_ttl: float,
        idempotency_wait: float,
        idempotency_lock_timeout: float,
        errors: Mapping[type[BaseException], ErrorRule],
        query_wait: float,
    ) -> None:
        self.executor = executor
        self.store = executor.store
        self.auth = auth
        self.rate_limit = rate_limit
        self.idempotency = idempotency
        self.idempotency_ttl = idempotency_ttl
        self.idempotency_wait = idempotency_wait
        self.idempotency_lock_timeout = idempotency_lock_timeout
        self.errors = errors
        self.query_wait = query_wait
        self.closing = threading.Event()

    # -- who is calling ------------------------------------------------------------------------------

    def caller(self, request: Request) -> Principal:
        principal = self.auth(request.headers)
        if self.rate_limit is not None:
            if principal.kind == "anonymous":
                key = f"address:{request.client.host if request.client else 'unknown'}"
            else:
                key = f"{principal.kind}:{principal.id}"
            self.rate_limit.check(key)
        return principal

    # -- commands ------------------------------------------------------------------------------------

    async def run(
        self,
        route: CommandRoute,
        body: Mapping[str, Any],
        path: Mapping[str, str],
        principal: Principal,
        request_id: str,
    ) -> dict[str, Any]:
        command = build_command(route, body, path, principal)
        authorize(route, principal, command)
        user_id = None if principal.kind == "anonymous" else principal.id
        result = await run_in_threadpool(
            self.executor.execute, command, correlation_id=request_id, user_id=user_id
        )
        return result_body(route, command, result, request_id)

    async def command_response(
        self,
        route: CommandRoute,
        request: Request,
        body: BaseModel | None,
        path: Mapping[str, str],
        media_type: str,
    ) -> Response:
        principal = self.caller(request)
        request_id = request_id_of(request.scope)
        values = body.model_dump() if body is not None else {}
        key = request.headers.get("idempotency-key")
        if key is None:
            if route.require_idempotency_key:
                raise RequestInvalid(
                    "Idempotency-Key header required", {"Idempotency-Key": ["required on this endpoint"]}
                )
            payload = await self.run(route, values, path, principal, request_id)
            return Response(_encode(payload), route.status_code, media_type=media_type)
        if not _KEY.match(key):
            raise RequestInvalid(
                "Idempotency-Key must be 1-255 visible ASCII characters",
                {"Idempotency-Key": ["1-255 visible ASCII characters"]},
            )
        scope = "\n".join((principal.kind, principal.id, request.method, request.url.path, key))
        digest = fingerprint(route, body.model_dump(mode="json") if body is not None else {}, path)
        outcome = await claim(
            self.idempotency,
            scope,
            digest,
            ttl=self.idempotency_ttl,
            lock_timeout=self.idempotency_lock_timeout,
            wait=self.idempotency_wait,
        )
        if outcome.claim is Claim.REPLAY and outcome.stored is not None:
            stored = outcome.stored
            return Response(
                stored.body,
                stored.status,
                media_type=stored.content_type,
                headers={"Idempotent-Replayed": "true"},
            )
        if outcome.claim is Claim.MISMATCH:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was already used with a different request body; use a new key"
            )
        if outcome.claim is Claim.BUSY:
            raise RequestInProgress(
                f"a request with this Idempotency-Key is still running after {self.idempotency_wait} s; "
                "retry later"
            )
        try:
            payload = await self.run(route, values, path, principal, request_id)
        except BaseException:
            await run_in_threadpool(self.idempotency.release, scope, outcome.token)
            raise
        content = _encode(payload)
        await run_in_threadpool(
            self.idempotency.complete, scope, outcome.token, Stored(route.status_code, content, media_type)
        )
        return Response(content, route.status_code, media_type=media_type)

    # -- errors --------------------------------------------------------------------------------------

    def error_response(self, request: Request, error: BaseException) -> Response:
        rule = rule_for(error, self.errors)
        request_id = request_id_of(request.scope)
        headers = {"X-Request-ID": request_id} if request_id else {}
        if rule.retry_after is not None:
            headers["Retry-After"] = str(rule.retry_after)
        retry_after = getattr(error, "retry_after", None)
        if isinstance(retry_after, int | float):
            headers["Retry-After"] = str(max(1, int(retry_after + 0.999)))
        if rule.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return Response(_encode(error_body(error, rule, request_id)), rule.status, headers, JSON)


def _media_type(request: Request, version: ApiVersion) -> str:
    accept = request.headers.get("accept", "")
    if "vnd.eventcore." in accept and version.label[1:].isdigit():
        return vendor_media_type(version.label[1:])
    return JSON


def _add_command_route(app: FastAPI, service: _Service, version: ApiVersion, route: CommandRoute) -> None:
    model = body_model_for(route)
    required = any(f.is_required() for f in model.model_fields.values())
    names = route.path_params()

    async def endpoint(
        request: Request, body: Any = None, idempotency_key: Any = None, **path: str
    ) -> Response:
        return await service.command_response(route, request, body, path, _media_type(request, version))

    params = [inspect.Parameter("request", inspect.Parameter.KEYWORD_ONLY, annotation=Request)]
    params += [
        inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[str, Path()]) for n in names
    ]
    body_annotation = Annotated[model, Body()] if required else Annotated[model | None, Body()]
    params.append(
        inspect.Parameter(
            "body",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=body_annotation,
            default=inspect.Parameter.empty if required else None,
        )
    )
    params.append(
        inspect.Parameter(
            "idempotency_key",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=Annotated[
                str | None,
                Header(alias="Idempotency-Key", description="run once; repeats get the first 2xx answer"),
            ],
            default=None,
        )
    )
    endpoint.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    app.add_api_route(
        route.url(version.prefix),
        endpoint,
        methods=["POST"],
        status_code=route.status_code,
        name=f"{version.label}:{route.operation}",
        operation_id=f"{version.label}_{route.operation}",
        summary=route.summary or f"Run {route.command.__name__}",
        description=(route.command.__doc__ or "").strip(),
        tags=[version.label],
        response_class=Response,
        deprecated=version.deprecation is not None,
    )


def _add_query_route(app: FastAPI, service: _Service, version: ApiVersion, route: QueryRoute) -> None:
    names = route.path_params()

    async def endpoint(
        request: Request,
        page: int = 1,
        page_size: int | None = None,
        min_position: int | None = None,
        **path: str,
    ) -> Response:
        service.caller(request)
        result = await run_in_threadpool(read_model, route, path, min_position, service.query_wait)
        if route.paged:
            result = page_of(
                list(result), page, route.page_size if page_size is None else page_size, route.max_page_size
            )
        content = _encode(_jsonable(result))
        etag = etag_of(content)
        headers = {"ETag": etag, "Cache-Control": route.cache.header()}
        if not_modified(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        return Response(content, 200, headers, _media_type(request, version))

    params = [inspect.Parameter("request", inspect.Parameter.KEYWORD_ONLY, annotation=Request)]
    params += [
        inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[str, Path()]) for n in names
    ]
    if route.paged:
        params += [
            inspect.Parameter("page", inspect.Parameter.KEYWORD_ONLY, annotation=int, default=1),
            inspect.Parameter(
                "page_size", inspect.Parameter.KEYWORD_ONLY, annotation=int | None, default=None
            ),
        ]
    params.append(
        inspect.Parameter(
            "min_position",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=Annotated[
                int | None, Query(description="wait until the read model has applied this position")
            ],
            default=None,
        )
    )
    endpoint.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    app.add_api_route(
        route.url(version.prefix),
        endpoint,
        methods=["GET"],
        name=f"{version.label}:{route.name or route.path}",
        summary=route.summary,
        tags=[version.label],
        response_class=Response,
        deprecated=version.deprecation is not None,
    )


def _jsonable(value: Any) -> Any:
    """Read-model answers (dataclasses, enums, datetimes, frames) as JSON values."""
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict) and type(value).__module__.startswith("pandas"):
        return json_values(to_dict(orient="records"))
    return json_values(value)


def _add_log_routes(
    app: FastAPI, service: _Service, version: ApiVersion, max_limit: int, keepalive: float
) -> None:
    store = service.store
    base = version.prefix.rstrip("/")
    tags: list[str | Enum] = [version.label]

    @app.get(
        f"{base}/streams/{{stream_id}}",
        tags=tags,
        response_class=Response,
        summary="A stream's events, by version",
    )
    async def read_stream(
        request: Request, stream_id: str, cursor: str | None = None, limit: int | None = None
    ) -> Response:
        service.caller(request)
        limit = check_limit(min(DEFAULT_LIMIT, max_limit) if limit is None else limit, max_limit)
        after = parse_cursor(cursor, "stream version")
        events = await run_in_threadpool(store.read_stream, stream_id, after_version=after)
        if not events and after == 0:
            raise ResourceNotFound(f"Stream {stream_id!r} not found")
        return _cached(request, page_body(events[:limit], limit, "version"), version)

    @app.get(f"{base}/events", tags=tags, response_class=Response, summary="The whole log, by position")
    async def read_all(request: Request, cursor: str | None = None, limit: int | None = None) -> Response:
        service.caller(request)
        limit = check_limit(min(DEFAULT_LIMIT, max_limit) if limit is None else limit, max_limit)
        after = parse_cursor(cursor, "position")
        events = await run_in_threadpool(store.read_all, after=after, limit=limit)
        return _cached(request, page_body(events, limit, "position"), version)

    @app.get(
        f"{base}/events/live",
        tags=tags,
        response_class=Response,
        responses={200: {"content": {"text/event-stream": {}}, "description": "a stream of events"}},
        summary="Live events as server-sent events, resumable with Last-Event-ID",
    )
    async def live(
        request: Request,
        after: int = 0,
        category: Annotated[list[str] | None, Query()] = None,
        event_type: Annotated[list[str] | None, Query(alias="type")] = None,
        last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    ) -> Response:
        service.caller(request)
        if last_event_id is not None:
            after = parse_cursor(last_event_id.strip(), "position (the id of the last event received)")
        if after < 0:
            raise RequestInvalid("after must be >= 0", {"after": ["must be >= 0"]})
        wanted = LogFilter(
            frozenset(event_type) if event_type else None, frozenset(category) if category else None
        )
        return EventSourceResponse(
            _live_events(service, after, wanted, keepalive),
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )


async def _live_events(
    service: _Service, after: int, wanted: LogFilter, keepalive: float
) -> AsyncIterator[bytes]:
    subscription = service.store.subscribe(after=after)
    idle = 0.0
    step = 0.25
    try:
        yield format_sse_event(comment="connected", retry=1000)
        while not service.closing.is_set():
            event = await run_in_threadpool(subscription.poll, step)
            if event is None:
                idle += step
                if idle >= keepalive:
                    idle = 0.0
                    yield format_sse_event(comment="keep-alive")
                continue
            if not wanted.matches(event):
                continue
            idle = 0.0
            data = _encode(event_json(event)).decode()
            yield format_sse_event(data_str=data, event=event.event_type, id=str(event.position))
    finally:
        subscription.close()


def _cached(request: Request, body: Any, version: ApiVersion) -> Response:
    content = _encode(body)
    etag = etag_of(content)
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if not_modified(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(content, 200, headers, _media_type(request, version))


def _add_batch_route(
    app: FastAPI, service: _Service, version: ApiVersion, routes: Sequence[CommandRoute]
) -> None:
    by_name = {r.operation: (r, body_model_for(r)) for r in routes}

    @app.post(
        f"{version.prefix.rstrip('/')}/batch",
        tags=[version.label],
        response_class=Response,
        summary="Run commands one after another",
    )
    async def batch(request: Request, body: BatchRequest) -> Response:
        principal = service.caller(request)
        request_id = request_id_of(request.scope)
        results: list[dict[str, Any]] = []
        for index, op in enumerate(body.operations):
            try:
                if op.command not in by_name:
                    raise RequestInvalid(
                        f"operation {index}: unknown command {op.command[:80]!r}; "
                        f"choose one of {', '.join(sorted(by_name))}"
                    )
                route, model = by_name[op.command]
                missing = set(route.path_params()) - set(op.params)
                if missing or set(op.params) - set(route.path_params()):
                    raise RequestInvalid(
                        f"operation {index}: params must be exactly {sorted(route.path_params())}"
                    )
                try:
                    values = model.model_validate(op.body).model_dump()
                except PydanticValidationError as exc:
                    raise RequestInvalid(
                        f"operation {index}: invalid request data", _field_errors(exc.errors())
                    ) from None
                payload = await service.run(route, values, op.params, principal, f"{request_id}.{index}")
                results.append({"status": "success", "result": payload})
            except EventCoreError as error:
                rule = rule_for(error, service.errors)
                results.append({"status": "error", "error": error_body(error, rule, None)["error"]})
                if body.stop_on_error:
                    break
        failed = sum(1 for r in results if r["status"] == "error")
        summary = {"results": results, "successful": len(results) - failed, "failed": failed}
        return Response(_encode(summary), 200, media_type=JSON)


def create_app(
    executor: Executor,
    commands: Sequence[CommandRoute | type[Any]] = (),
    queries: Sequence[QueryRoute] = (),
    *,
    prefix: str = "/api/v1",
    versions: Sequence[ApiVersion] = (),
    auth: Authenticator | None = None,
    rate_limit: RateLimit | None = None,
    idempotency: IdempotencyStore | None = None,
    idempotency_ttl: float = 24 * 3600.0,
    idempotency_wait: float = 10.0,
    idempotency_lock_timeout: float = 60.0,
    health: HealthCheck | None = None,
    errors: Mapping[type[BaseException], ErrorRule] | None = None,
    runners: Sequence[Any] = (),
    title: str = "eventcore-lab API",
    version: str = "1.0.0",
    max_body_size: int = 1 << 20,
    max_limit: int = 1000,
    query_wait: float = 5.0,
    sse_keepalive: float = 15.0,
    security_headers: bool = True,
) -> FastAPI:
    """An ASGI app serving ``commands`` (POST), ``queries`` (GET) and the log of ``executor.store``.

    ``commands`` are Command classes or :class:`CommandRoute`; they and ``queries`` are served under
    ``prefix``; ``versions`` adds more :class:`ApiVersion` side by side (e.g. ``/api/v2``). Runners of
    the queries' read models (and ``runners``) are caught up and started with the app, stopped with it.
    ``idempotency`` defaults to a table in the store's own database (memory for the memory store).
    """
    all_versions = list(versions)
    if commands or queries or not all_versions:
        all_versions.insert(0, ApiVersion(prefix, commands, queries))
    service = _Service(
        executor,
        auth=auth or anonymous,
        rate_limit=rate_limit,
        idempotency=idempotency if idempotency is not None else idempotency_for(executor.store),
        idempotency_ttl=idempotency_ttl,
        idempotency_wait=idempotency_wait,
        idempotency_lock_timeout=idempotency_lock_timeout,
        errors={**ERROR_STATUS, **(errors or {})},
        query_wait=query_wait,
    )
    live_runners = list(runners) + [
        q.source for v in all_versions for q in v.queries if callable(getattr(q.source, "start", None))
    ]
    live_runners = list({id(r): r for r in live_runners}.values())
    check = health or library_health(executor.store, live_runners)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        started = []
        for runner in live_runners:
            if not runner.running:
                await run_in_threadpool(runner.run_until_caught_up)
                runner.start()
                started.append(runner)
        try:
            yield
        finally:
            service.closing.set()
            for runner in started:
                await run_in_threadpool(runner.stop)

    app = FastAPI(title=title, version=version, lifespan=lifespan)
    app.state.service = service

    @app.exception_handler(EventCoreError)
    async def on_library_error(request: Request, exc: EventCoreError) -> Response:
        return service.error_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> Response:
        error = RequestInvalid("Invalid request data", _field_errors(exc.errors()))
        return service.error_response(request, error)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> Response:
        error: EventCoreError
        if exc.status_code == 404:
            error = ResourceNotFound(f"no endpoint at {request.url.path[:200]}")
        elif exc.status_code == 413:
            error = PayloadTooLarge(f"the request body is larger than {max_body_size} bytes")
        elif exc.status_code == 400:
            error = RequestInvalid("the request body is not valid JSON", {"body": ["not valid JSON"]})
        else:
            code = re.sub(r"[^A-Z]+", "_", str(exc.detail).upper()).strip("_") or "HTTP_ERROR"
            rule = ErrorRule(exc.status_code, code, str(exc.detail))
            body = error_body(exc, rule, request_id_of(request.scope))
            return Response(_encode(body), exc.status_code, dict(exc.headers or {}), JSON)
        return service.error_response(request, error)

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> Response:
        return service.error_response(request, exc)

    @app.get("/health", tags=["health"], response_class=Response, summary="healthy, degraded or unhealthy")
    async def health_endpoint() -> Response:
        try:
            report = normalise(await run_in_threadpool(check))
        except Exception as exc:  # a failing check is an unhealthy service, never a 500
            report = {
                "status": "unhealthy",
                "checks": {"health_check": {"status": "unhealthy", "error": type(exc).__name__}},
            }
        report = {"status": report["status"], "version": version, "checks": report["checks"]}
        return Response(_encode(report), 503 if report["status"] == "unhealthy" else 200, media_type=JSON)

    for api in all_versions:
        routes = [as_route(c) for c in api.commands]
        for route in routes:
            _add_command_route(app, service, api, route)
        for query in api.queries:
            _add_query_route(app, service, api, query)
        _add_log_routes(app, service, api, max_limit, sse_keepalive)
        if routes:
            _add_batch_route(app, service, api, routes)

    app.add_middleware(
        RequestContext,
        versions=all_versions,
        security_headers=security_headers,
        max_body_size=max_body_size,
    )
    return app


def shutdown_streams(app: FastAPI) -> None:
    """Ask live-event streams to end, so a graceful shutdown does not wait on open SSE connections."""
    service = getattr(app.state, "service", None)
    if service is not None:
        service.closing.set()
