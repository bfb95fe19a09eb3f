"""One pure-ASGI middleware for what every response needs: the request id, security headers,
deprecation headers on old versions, and a timing log line.

Pure ASGI (not ``BaseHTTPMiddleware``) so that streamed responses (server-sent events) pass untouched.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Sequence

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._versioning import ApiVersion

log = logging.getLogger("eventcore_lab.web")

#: An incoming X-Request-ID is kept when it looks like an id (so it cannot inject into logs or headers).
REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")

SECURITY_HEADERS = (
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Content-Security-Policy", "default-src 'self'"),
    ("Strict-Transport-Security", "max-age=31536000; includeSubDomains"),
)
# The interactive docs load their script and styles from a CDN; a strict CSP would blank them.
_DOCS_PATHS = ("/docs", "/redoc")


def request_id_of(scope: Scope) -> str:
    state = scope.get("state") or {}
    return str(state.get("request_id", ""))


class RequestContext:
    def __init__(
        self,
        app: ASGIApp,
        *,
        versions: Sequence[ApiVersion] = (),
        security_headers: bool = True,
        max_body_size: int | None = None,
    ) -> None:
        self.app = app
        self.max_body_size = max_body_size
        self.security_headers = security_headers
        self.deprecated = [(v.prefix.rstrip("/") + "/", v.deprecation) for v in versions if v.deprecation]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = Headers(scope=scope).get("x-request-id", "")
        request_id = incoming if REQUEST_ID.match(incoming) else str(uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = request_id
        path: str = scope.get("path", "")
        started = time.perf_counter()
        status = 0

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers["X-Request-ID"] = request_id
                if self.security_headers:
                    for name, value in SECURITY_HEADERS:
                        if name == "Content-Security-Policy" and path.startswith(_DOCS_PATHS):
                            continue
                        if name not in headers:
                            headers[name] = value
                for prefix, deprecation in self.deprecated:
                    if path.startswith(prefix) and deprecation is not None:
                        for name, value in deprecation.headers():
                            headers[name] = value
            await send(message)

        limit = self.max_body_size
        received = 0

        async def receive_within_limit() -> Message:
            # Counted as it arrives, so a chunked body without Content-Length is bounded too. Raised as an
            # HTTPException because FastAPI passes those through its body parsing to the error handlers.
            nonlocal received
            message = await receive()
            if limit is not None and message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413)
            return message

        try:
            await self.app(scope, receive_within_limit if limit is not None else receive, send_with_headers)
        finally:
            log.info(
                "Request completed",
                extra={
                    "method": scope.get("method"),
                    "path": path,
                    "status": status or 500,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                    "request_id": request_id,
                },
            )
