"""Every row of the error -> HTTP status table, against a real uvicorn server, on memory and PostgreSQL.

Each failing request must also leave the store as it was: nothing half-written.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from _web_support import RACE, Probe, open_named_store

from eventcore_lab import BusinessRuleViolation, Executor, RetryConfig
from eventcore_lab.web import CommandRoute, JwtAuth, RateLimit, any_role, create_app, serve

SECRET = "test-secret-for-the-error-rows-of-the-web-api"


@pytest.fixture(params=["memory", "postgres"])
def store(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "postgres":
        url, schema = request.getfixturevalue("pg_url"), request.getfixturevalue("pg_schema")
        with open_named_store("postgres", pg_url=url, schema=schema) as s:
            yield s
    else:
        with open_named_store("memory") as s:
            yield s


@pytest.fixture
def server(store: Any) -> Iterator[Any]:
    auth = JwtAuth(SECRET)
    executor = Executor(store, retry=RetryConfig.none(), timeout=0.4)
    routes = [
        CommandRoute(Probe, path="/probe/{target}", streams={"target": "probe-{}"}),
        CommandRoute(
            Probe,
            path="/guarded/{target}",
            streams={"target": "probe-{}"},
            permission=any_role("admin"),
            name="GuardedProbe",
        ),
    ]
    app = create_app(executor, routes, auth=auth, max_body_size=10_000)
    with serve(app) as running:
        running.token = auth.mint("tester", roles=["member"])  # type: ignore[attr-defined]
        yield running


ROWS = [
    # (body, status, code)
    ({"case": "validation"}, 400, "VALIDATION_FAILED"),
    ({"case": 12}, 400, "VALIDATION_ERROR"),
    ({"case": "rule"}, 422, "BUSINESS_RULE_VIOLATION"),
    ({"case": "missing"}, 404, "RESOURCE_NOT_FOUND"),
    ({"case": "forbidden"}, 403, "FORBIDDEN"),
    ({"case": "unavailable"}, 503, "SERVICE_UNAVAILABLE"),
    ({"case": "slow"}, 504, "TIMEOUT"),
    ({"case": "crash"}, 500, "INTERNAL_ERROR"),
]


@pytest.mark.parametrize(("body", "status", "code"), ROWS, ids=[r[2] for r in ROWS])
def test_domain_and_store_errors_map_to_their_status(
    server: Any, store: Any, body: dict[str, Any], status: int, code: str
) -> None:
    with server.client(token=server.token) as http:
        response = http.post("/api/v1/probe/a", json=body)
    assert response.status_code == status, response.text
    payload = response.json()
    assert payload["error"]["code"] == code
    assert payload["request_id"] == response.headers["X-Request-ID"]
    assert store.head() == 0, "a refused request wrote events"
    assert "hunter2" not in response.text and "10.0.0.7" not in response.text
    if status in (503,):
        assert response.headers["Retry-After"] == "1"
    if code == "VALIDATION_ERROR":
        assert payload["error"]["field_errors"] == {"case": ["Input should be a valid string"]}


def test_conflict_is_409_with_retry_after(server: Any, store: Any) -> None:
    """A real conflict: two requests read the same version, meet, then both append; one loses."""
    import concurrent.futures

    from eventcore_lab.core.errors import ConcurrencyConflict
    from eventcore_lab.web import ERROR_STATUS

    RACE.reset()
    with server.client(token=server.token) as http, concurrent.futures.ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: http.post("/api/v1/probe/c", json={"case": "race"}), range(2)))
    assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
    lost = next(a for a in answers if a.status_code == 409)
    assert lost.headers["Retry-After"] == "1"
    assert lost.json()["error"] == {
        "code": "CONFLICT",
        "message": ERROR_STATUS[ConcurrencyConflict].message,
        "help": "The resource was modified. Please refresh and try again.",
    }
    assert [e.version for e in store.read_stream("probe-c")] == [1]


def test_authentication_and_permission_rows(server: Any, store: Any) -> None:
    with server.client() as anonymous:
        missing = anonymous.post("/api/v1/probe/a", json={})
    assert missing.status_code == 401
    assert missing.json()["error"] == {"code": "UNAUTHORIZED", "message": "Missing authentication token"}
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    with server.client(token=server.token) as member:
        denied = member.post("/api/v1/guarded/a", json={})
    assert denied.status_code == 403
    assert denied.json()["error"]["message"] == "Insufficient permissions to run GuardedProbe"
    assert store.head() == 0


def test_request_shape_rows(server: Any, store: Any) -> None:
    with server.client(token=server.token) as http:
        unknown_route = http.get("/api/v1/nothing-here")
        too_large = http.post("/api/v1/probe/a", json={"note": "x" * 20_000})
        json_type = {"content-type": "application/json"}
        not_json = http.post("/api/v1/probe/a", content=b"{nope", headers=json_type)
        parts = [b'{"note": "', b"y" * 20_000, b'"}']
        chunked = http.post("/api/v1/probe/a", content=iter(parts), headers=json_type)
        bad_stream = http.post("/api/v1/probe/%01", json={})
    assert (unknown_route.status_code, unknown_route.json()["error"]["code"]) == (404, "RESOURCE_NOT_FOUND")
    assert (too_large.status_code, too_large.json()["error"]["code"]) == (413, "PAYLOAD_TOO_LARGE")
    assert (chunked.status_code, chunked.json()["error"]["code"]) == (413, "PAYLOAD_TOO_LARGE")
    assert (not_json.status_code, not_json.json()["error"]["code"]) == (400, "VALIDATION_ERROR")
    assert (bad_stream.status_code, bad_stream.json()["error"]["code"]) == (400, "INVALID_VALUE")
    assert store.head() == 0


def test_rate_limit_row(store: Any) -> None:
    app = create_app(Executor(store), [Probe], rate_limit=RateLimit(3, 60.0))
    with serve(app) as running, running.client() as http:
        answers = [http.post("/api/v1/commands/probe", json={"target": "rl"}) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[3].json()["error"] == {"code": "RATE_LIMITED", "message": "Rate limit exceeded"}
    assert 1 <= int(answers[3].headers["Retry-After"]) <= 60
    assert len(store.read_stream("rl")) == 3


def test_request_id_is_kept_or_replaced_and_becomes_the_correlation_id(server: Any, store: Any) -> None:
    with server.client(token=server.token) as http:
        kept = http.post("/api/v1/probe/r", json={}, headers={"X-Request-ID": "client-req-42"})
        replaced = http.post("/api/v1/probe/r", json={}, headers={"X-Request-ID": "bad id\twith tab"})
    assert kept.headers["X-Request-ID"] == "client-req-42"
    assert replaced.headers["X-Request-ID"] not in ("bad id\twith tab", "")
    events = store.read_stream("probe-r")
    assert [e.metadata.correlation_id for e in events] == ["client-req-42", replaced.headers["X-Request-ID"]]
    assert {e.metadata.user_id for e in events} == {"tester"}


def test_the_table_is_looked_up_along_the_class_hierarchy_and_can_be_extended(store: Any) -> None:
    from eventcore_lab.core.errors import InvalidFormat
    from eventcore_lab.errors import ConnectionPoolExhausted, Timeout, TransactionError
    from eventcore_lab.web import ErrorRule, rule_for

    class Overdrawn(BusinessRuleViolation):
        pass

    assert rule_for(Overdrawn("no")).status == 422  # a subclass inherits its parent's row
    assert rule_for(InvalidFormat("bad")).status == 400
    assert rule_for(ConnectionPoolExhausted("busy")).status == 503
    assert rule_for(TransactionError("deadlock", retriable=True)).status == 503
    assert rule_for(TransactionError("constraint broken")).status == 500
    assert rule_for(Timeout("late")).status == 504
    assert rule_for(KeyError("x")).status == 500
    app = create_app(
        Executor(store), [Probe], errors={RuntimeError: ErrorRule(418, "TEAPOT", "short and stout")}
    )
    with serve(app) as running, running.client() as http:
        crashed = http.post("/api/v1/commands/probe", json={"target": "t", "case": "crash"})
    assert (crashed.status_code, crashed.json()["error"]) == (
        418,
        {"code": "TEAPOT", "message": "short and stout"},
    )
    assert store.head() == 0
