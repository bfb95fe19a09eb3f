"""Live events over server-sent events: a client that drops and resumes with Last-Event-ID receives every
event exactly once, in order, while four writers append (memory and PostgreSQL, whose subscription is
woken by LISTEN/NOTIFY)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from _web_support import SLOW_STARTED, Probe, open_named_store

from eventcore_lab import Executor
from eventcore_lab.web import create_app, serve

WRITERS = 4
PER_WRITER = 25


@pytest.fixture(params=["memory", "postgres"])
def store(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "postgres":
        url, schema = request.getfixturevalue("pg_url"), request.getfixturevalue("pg_schema")
        with open_named_store("postgres", pg_url=url, schema=schema) as s:
            yield s
    else:
        with open_named_store("memory") as s:
            yield s


def read_events(http: httpx.Client, path: str, last_id: str | None, stop_after: int) -> list[dict[str, Any]]:
    """Read SSE messages until ``stop_after`` events came, then drop the connection."""
    headers = {"Last-Event-ID": last_id} if last_id is not None else {}
    got: list[dict[str, Any]] = []
    message: dict[str, str] = {}
    with http.stream("GET", path, headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line == "":
                if "data" in message:
                    got.append(
                        {"id": message["id"], "event": message["event"], **json.loads(message["data"])}
                    )
                    if len(got) >= stop_after:
                        return got
                message = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(":")
                message[name] = value.removeprefix(" ")
    return got


def test_resuming_with_last_event_id_misses_and_repeats_nothing(store: Any) -> None:
    executor = Executor(store)
    app = create_app(executor, [Probe], sse_keepalive=0.5)
    total = WRITERS * PER_WRITER
    start = threading.Barrier(WRITERS + 1)

    def writer(n: int) -> None:
        start.wait()
        for i in range(PER_WRITER):
            executor.execute(Probe(f"writer-{n}", note=f"{n}:{i}"))
            time.sleep(0.01)  # keep appending while the client drops and resumes

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for t in threads:
        t.start()
    received: list[dict[str, Any]] = []
    connections = 0
    resumed_while_writing = 0
    with serve(app) as running, running.client(timeout=20) as http:
        start.wait()
        last_id: str | None = None
        while len(received) < total:
            batch = read_events(
                http, "/api/v1/events/live", last_id, stop_after=min(13, total - len(received))
            )
            connections += 1
            resumed_while_writing += any(t.is_alive() for t in threads)
            received += batch
            last_id = batch[-1]["id"] if batch else last_id
        for t in threads:
            t.join()
    stored = store.read_all()
    assert len(stored) == total
    assert [int(e["id"]) for e in received] == [e.position for e in stored]
    assert [e["payload"]["note"] for e in received] == [e.payload.note for e in stored]
    assert connections >= total // 13
    assert resumed_while_writing >= 2, "the client never reconnected while the writers were appending"
    for n in range(WRITERS):  # each writer's events arrive in its own order too
        mine = [e["payload"]["note"] for e in received if e["stream_id"] == f"writer-{n}"]
        assert mine == [f"{n}:{i}" for i in range(PER_WRITER)]


def test_filters_by_category_and_type(store: Any) -> None:
    executor = Executor(store)
    for target in ("order-1", "task-1", "order-2"):
        executor.execute(Probe(target, note=target))
    app = create_app(executor, [Probe], sse_keepalive=0.5)
    with serve(app) as running, running.client(timeout=20) as http:
        orders = read_events(http, "/api/v1/events/live?category=order&type=ProbeWritten", None, stop_after=2)
        after_first = read_events(http, "/api/v1/events/live?after=1", None, stop_after=2)
        bad = http.get("/api/v1/events/live", headers={"Last-Event-ID": "abc"})
    assert [e["stream_id"] for e in orders] == ["order-1", "order-2"]
    assert [e["stream_id"] for e in after_first] == ["task-1", "order-2"]
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "VALIDATION_ERROR"


def test_graceful_shutdown_ends_live_streams_and_finishes_requests_in_flight() -> None:
    from eventcore_lab import MemoryStore

    store = MemoryStore()
    app = create_app(Executor(store), [Probe], sse_keepalive=0.5)
    server = serve(app)
    http = server.client(timeout=20)
    lines: list[str] = []
    slow: list[httpx.Response] = []

    opened = threading.Event()

    def follow() -> None:
        with http.stream("GET", "/api/v1/events/live") as response:
            for line in response.iter_lines():
                lines.append(line)
                opened.set()

    def slow_request() -> None:
        with server.client(timeout=20) as other:
            slow.append(other.post("/api/v1/commands/probe", json={"target": "s", "case": "slow"}))

    follower, writer = threading.Thread(target=follow), threading.Thread(target=slow_request)
    SLOW_STARTED.clear()
    follower.start()
    assert opened.wait(15), "the live stream did not open"
    writer.start()
    assert SLOW_STARTED.wait(15), "the slow command did not start"
    server.stop(timeout=15)
    follower.join(10)
    writer.join(10)
    http.close()
    assert not server.running and not follower.is_alive()
    assert slow and slow[0].status_code == 200, "the request in flight was cut off"
    assert lines and lines[0] == ": connected", "the live stream never opened"
    assert len(store.read_stream("s")) == 1


def test_each_request_is_logged_with_its_timing(caplog: pytest.LogCaptureFixture) -> None:
    from eventcore_lab import MemoryStore

    app = create_app(Executor(MemoryStore()), [Probe])
    with caplog.at_level("INFO", logger="eventcore_lab.web"), serve(app) as server, server.client() as http:
        http.post("/api/v1/commands/probe", json={"target": "x"}, headers={"X-Request-ID": "timed-1"})
    records = [r for r in caplog.records if getattr(r, "request_id", None) == "timed-1"]
    assert len(records) == 1
    record: Any = records[0]
    assert record.getMessage() == "Request completed"
    assert (record.method, record.path, record.status) == ("POST", "/api/v1/commands/probe", 200)
    assert record.duration_ms > 0
