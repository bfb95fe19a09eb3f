"""Serving from a notebook: uvicorn on loopback in a background thread, and an httpx client for it."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

import httpx
import uvicorn


class Server:
    """A running uvicorn server: ``url`` to call it, ``stop()`` to shut it down gracefully."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread, url: str, app: Any) -> None:
        self._server = server
        self._thread = thread
        self._app = app
        self.url = url

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting requests, end live-event streams, let requests in flight finish, then exit."""
        from ._app import shutdown_streams

        shutdown_streams(self._app)
        self._server.should_exit = True
        self._thread.join(timeout)

    def client(self, **kwargs: Any) -> httpx.Client:
        return client(self.url, **kwargs)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<Server {self.url} {'running' if self.running else 'stopped'}>"


def serve(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    log_level: str = "warning",
    startup_timeout: float = 30.0,
    graceful_timeout: int = 5,
) -> Server:
    """Start ``app`` with uvicorn (one worker) in a background thread; return when it accepts requests.

    ``port=0`` picks a free port; the returned :class:`Server` has the URL.
    """
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        lifespan="on",
        timeout_graceful_shutdown=graceful_timeout,
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{host}:{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"the server on {host}:{port} did not start (see the log above)")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the server on {host}:{port} did not start within {startup_timeout} s")
        time.sleep(0.01)
    bound = port
    with contextlib.suppress(AttributeError, IndexError):
        bound = server.servers[0].sockets[0].getsockname()[1]
    return Server(server, thread, f"http://{host}:{bound}", app)


def client(
    url: str, *, token: str | None = None, api_key: str | None = None, timeout: float = 30.0, **kwargs: Any
) -> httpx.Client:
    """An httpx client for ``url``, with a bearer token or an API key when given."""
    headers = dict(kwargs.pop("headers", {}) or {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if api_key:
        headers["X-API-Key"] = api_key
    return httpx.Client(base_url=url, headers=headers, timeout=timeout, **kwargs)
