"""Reading over HTTP: stream and log pages with cursors and limits, ETag/304, read-model queries, health,
the batch endpoint, security headers and the generated OpenAPI document."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from _web_support import (
    Probe,
    ProbeWritten,
)

from eventcore_lab import Executor, MemoryStore
from eventcore_lab.projections import Projection, ProjectionRunner, handles
from eventcore_lab.web import CacheConfig, CommandRoute, QueryRoute, create_app, serve


class NotesByStream(Projection):
    def __init__(self) -> None:
        self.notes: dict[str, list[str]] = {}

    @handles(ProbeWritten)
    def _written(self, event: Any) -> None:
        self.notes.setdefault(event.stream_id, []).append(event.payload.note)


@pytest.fixture
def store() -> MemoryStore:
    store = MemoryStore()
    executor = Executor(store)
    for i in range(7):
        executor.execute(Probe("probe-a", note=f"a{i}"))
    executor.execute(Probe("probe-b", note="b0"))
    return store


@pytest.fixture
def running(store: MemoryStore) -> Iterator[Any]:
    runner = ProjectionRunner(store, NotesByStream())
    queries = [
        QueryRoute(
            "/notes/{stream}", lambda p, stream: p.notes.get(stream), runner, not_found="Stream notes"
        ),
        QueryRoute(
            "/notes-paged/{stream}",
            lambda p, stream: p.notes.get(stream, []),
            runner,
            paged=True,
            page_size=3,
            max_page_size=5,
            cache=CacheConfig(300, 60),
        ),
    ]
    app = create_app(
        Executor(store),
        [CommandRoute(Probe, example={"target": "probe-z", "note": "hi"})],
        queries,
        max_limit=50,
    )
    with serve(app) as server:
        yield server
    assert not runner.running, "the app did not stop the runner it started"


def test_stream_pages_follow_the_cursor_to_the_end(running: Any) -> None:
    seen, cursor = [], None
    with running.client() as http:
        while True:
            page = http.get(
                "/api/v1/streams/probe-a", params={"limit": 3, **({"cursor": cursor} if cursor else {})}
            )
            assert page.status_code == 200
            body = page.json()
            seen += [e["version"] for e in body["events"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        missing = http.get("/api/v1/streams/nobody")
        too_many = http.get("/api/v1/streams/probe-a", params={"limit": 51})
        zero = http.get("/api/v1/streams/probe-a", params={"limit": 0})
        bad_cursor = http.get("/api/v1/streams/probe-a", params={"cursor": "-1"})
    assert seen == list(range(1, 8))
    assert (missing.status_code, missing.json()["error"]["message"]) == (404, "Stream 'nobody' not found")
    assert (too_many.status_code, too_many.json()["error"]["message"]) == (400, "Limit cannot exceed 50")
    assert zero.status_code == 400 and bad_cursor.status_code == 400


def test_the_log_pages_by_position_and_answers_304_when_unchanged(running: Any, store: MemoryStore) -> None:
    with running.client() as http:
        first = http.get("/api/v1/events", params={"limit": 5})
        rest = http.get("/api/v1/events", params={"limit": 5, "cursor": first.json()["next_cursor"]})
        same = http.get(
            "/api/v1/events", params={"limit": 5}, headers={"If-None-Match": first.headers["ETag"]}
        )
        Executor(store).execute(Probe("probe-c"))
        tail = http.get(
            "/api/v1/events",
            params={"limit": 5, "cursor": "5"},
            headers={"If-None-Match": rest.headers["ETag"]},
        )
    assert [e["position"] for e in first.json()["events"]] == [1, 2, 3, 4, 5]
    assert [e["position"] for e in rest.json()["events"]] == [6, 7, 8]
    assert rest.json()["next_cursor"] is None
    assert same.status_code == 304 and same.content == b""
    assert tail.status_code == 200 and [e["position"] for e in tail.json()["events"]] == [6, 7, 8, 9]


def test_queries_read_the_live_read_model(running: Any, store: MemoryStore) -> None:
    with running.client() as http:
        written = http.post("/api/v1/commands/probe", json={"target": "probe-b", "note": "b1"}).json()
        notes = http.get("/api/v1/notes/probe-b", params={"min_position": written["position"]})
        cached = http.get("/api/v1/notes/probe-b", headers={"If-None-Match": notes.headers["ETag"]})
        nothing = http.get("/api/v1/notes/probe-x")
        page2 = http.get("/api/v1/notes-paged/probe-a", params={"page": 2})
        beyond = http.get("/api/v1/notes-paged/probe-a", params={"page": 9})
        too_big = http.get("/api/v1/notes-paged/probe-a", params={"page_size": 6})
        page0 = http.get("/api/v1/notes-paged/probe-a", params={"page": 0})
        size0 = http.get("/api/v1/notes-paged/probe-a", params={"page_size": 0})
    assert notes.json() == ["b0", "b1"]
    assert cached.status_code == 304
    assert (nothing.status_code, nothing.json()["error"]["message"]) == (404, "Stream notes not found")
    assert page2.json() == {
        "items": ["a3", "a4", "a5"],
        "pagination": {"page": 2, "page_size": 3, "total_items": 7, "total_pages": 3},
    }
    assert page2.headers["Cache-Control"] == "public, max-age=300, stale-while-revalidate=60"
    assert beyond.json()["items"] == []
    assert (too_big.status_code, too_big.json()["error"]["message"]) == (400, "Limit cannot exceed 5")
    assert page0.status_code == 400 and size0.status_code == 400


def test_a_query_may_answer_with_a_data_frame(store: MemoryStore) -> None:
    import pandas as pd

    def counts(projection: NotesByStream) -> pd.DataFrame:
        return pd.DataFrame(
            {"stream": list(projection.notes), "notes": [len(n) for n in projection.notes.values()]}
        )

    runner = ProjectionRunner(store, NotesByStream())
    app = create_app(Executor(store), [], [QueryRoute("/counts", counts, runner)])
    with serve(app) as running, running.client() as http:
        rows = http.get("/api/v1/counts", params={"min_position": store.head()}).json()
    assert rows == [{"stream": "probe-a", "notes": 7}, {"stream": "probe-b", "notes": 1}]


def test_a_query_for_a_position_the_read_model_cannot_reach_is_503(store: MemoryStore) -> None:
    runner = ProjectionRunner(store, NotesByStream())
    query = QueryRoute("/notes/{stream}", lambda p, stream: p.notes.get(stream), runner)
    app = create_app(Executor(store), [], [query], query_wait=0.2)
    with serve(app) as running, running.client() as http:
        behind = http.get("/api/v1/notes/probe-a", params={"min_position": store.head() + 5})
        reached = http.get("/api/v1/notes/probe-a", params={"min_position": store.head()})
    assert behind.status_code == 503 and behind.headers["Retry-After"] == "1"
    assert behind.json()["error"]["code"] == "READ_MODEL_BEHIND"
    assert reached.status_code == 200 and len(reached.json()) == 7


def test_batch_runs_in_order_and_stops_on_error_when_asked(running: Any, store: MemoryStore) -> None:
    ops = [
        {"command": "Probe", "body": {"target": "batch-1"}},
        {"command": "Probe", "body": {"target": "batch-2", "case": "rule"}},
        {"command": "Probe", "body": {"target": "batch-3"}},
        {"command": "Nope"},
    ]
    with running.client() as http:
        going_on = http.post("/api/v1/batch", json={"operations": ops})
        stopping = http.post("/api/v1/batch", json={"operations": ops, "stop_on_error": True})
        too_many = http.post("/api/v1/batch", json={"operations": [ops[0]] * 101})
    body = going_on.json()
    assert going_on.status_code == 200
    assert [r["status"] for r in body["results"]] == ["success", "error", "success", "error"]
    assert (body["successful"], body["failed"]) == (2, 2)
    assert body["results"][1]["error"]["code"] == "BUSINESS_RULE_VIOLATION"
    assert [r["status"] for r in stopping.json()["results"]] == ["success", "error"]
    assert too_many.status_code == 400
    assert len(store.read_stream("batch-1")) == 2 and len(store.read_stream("batch-3")) == 1


class Unreachable:
    """A store wrapper whose database has gone away."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def head(self) -> int:
        from eventcore_lab.errors import ConnectionFailed

        raise ConnectionFailed("connection refused by 10.1.2.3")


def test_health_is_503_only_when_unhealthy(store: MemoryStore) -> None:
    statuses = iter(["healthy", "degraded", "unhealthy", "bogus"])
    app = create_app(Executor(store), health=lambda: {"status": next(statuses), "checks": {}})
    default = create_app(Executor(store))
    unreachable = create_app(Executor(Unreachable(store)))
    with serve(app) as running, running.client() as http:
        codes = [http.get("/health").status_code for _ in range(4)]
    with serve(default) as running, running.client() as http:
        up = http.get("/health").json()
    with serve(unreachable) as running, running.client() as http:
        down = http.get("/health")
    assert codes == [200, 200, 503, 503]
    assert up["status"] == "healthy" and up["checks"]["event_store"]["details"] == "answers; head position 8"
    assert down.status_code == 503
    store_check = down.json()["checks"]["event_store"]
    assert store_check["status"] == "unhealthy" and store_check["details"].startswith("ConnectionFailed")


def test_security_headers_and_openapi_with_examples(running: Any) -> None:
    with running.client() as http:
        answer = http.get("/health")
        spec = http.get("/openapi.json").json()
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Content-Security-Policy"] == "default-src 'self'"
    assert answer.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    schema = spec["components"]["schemas"]["ProbeRequest"]
    assert set(schema["properties"]) == {"target", "case", "note"} and schema["required"] == ["target"]
    assert schema["examples"] == [{"target": "probe-z", "note": "hi"}]
    assert "/api/v1/events/live" in spec["paths"] and "/api/v1/commands/probe" in spec["paths"]
