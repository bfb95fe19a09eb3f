"""Authentication hooks: bearer JWT and API keys, 401 with the manual's messages, 403 by permission rule,
and the caller's id in the metadata of the events written."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from _web_support import Probe

from eventcore_lab import Executor, MemoryStore
from eventcore_lab.web import (
    ApiKey,
    ApiKeyAuth,
    CommandRoute,
    JwtAuth,
    NotAuthenticated,
    any_role,
    create_app,
    first_of,
    has_permission,
    serve,
)

SECRET = "the-signing-secret-of-the-auth-tests-0123456789"
AUTH = JwtAuth(SECRET, issuer="eventcore-lab", audience="tests")
KEYS = ApiKeyAuth.from_keys(
    {
        "svc-key-1": ApiKey("billing", roles=frozenset({"lead"})),
        "svc-old": ApiKey("legacy", expires_at=datetime.now(UTC) - timedelta(days=1)),
    }
)


@pytest.fixture(scope="module")
def running() -> Iterator[Any]:
    store = MemoryStore()
    routes = [
        CommandRoute(
            Probe,
            path="/assign/{target}",
            streams={"target": "task-{}"},
            permission=any_role("admin", "manager", "lead"),
            name="AssignProbe",
        ),
        CommandRoute(
            Probe,
            path="/audit/{target}",
            streams={"target": "audit-{}"},
            permission=has_permission("ViewAnalytics"),
            name="AuditProbe",
        ),
    ]
    app = create_app(Executor(store), routes, auth=first_of(AUTH, KEYS))
    with serve(app) as server:
        server.store = store  # type: ignore[attr-defined]
        yield server


def _post(server: Any, path: str, headers: dict[str, str]) -> Any:
    with server.client(headers=headers) as http:
        return http.post(path, json={})


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "sub": "ann",
        "iat": now,
        "exp": now + 600,
        "roles": ["admin"],
        "permissions": [],
        "iss": "eventcore-lab",
        "aud": "tests",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


REJECTED = {
    "missing": ({}, "Missing authentication token"),
    "not bearer": ({"Authorization": "Basic YW5uOnB3"}, "Missing or invalid Authorization header"),
    "malformed": (_bearer("not.a.jwt"), "Invalid authentication token"),
    "garbage": (_bearer("x" * 300), "Invalid authentication token"),
    "expired": (_bearer(jwt.encode(_claims(exp=int(time.time()) - 60), SECRET)), "Token expired"),
    "other key": (
        _bearer(jwt.encode(_claims(), "another-secret-of-sufficient-length-000")),
        "Invalid authentication token",
    ),
    "wrong audience": (_bearer(jwt.encode(_claims(aud="elsewhere"), SECRET)), "Invalid authentication token"),
    "no subject": (_bearer(jwt.encode(_claims(sub=None), SECRET)), "Invalid authentication token"),
    "alg none": (_bearer(jwt.encode(_claims(), None, algorithm="none")), "Invalid authentication token"),
    "roles not a list": (_bearer(jwt.encode(_claims(roles="admin"), SECRET)), "Invalid authentication token"),
    "unknown api key": ({"X-API-Key": "nope"}, "Invalid API key"),
    "expired api key": ({"X-API-Key": "svc-old"}, "API key expired"),
}


@pytest.mark.parametrize("case", list(REJECTED))
def test_bad_credentials_are_401_and_write_nothing(running: Any, case: str) -> None:
    headers, message = REJECTED[case]
    before = running.store.head()
    response = _post(running, "/api/v1/assign/t1", headers)
    assert response.status_code == 401
    assert response.json()["error"] == {"code": "UNAUTHORIZED", "message": message}
    assert running.store.head() == before


def test_a_valid_token_without_the_role_is_403(running: Any) -> None:
    token = AUTH.mint("bob", roles=["member"])
    response = _post(running, "/api/v1/assign/t2", _bearer(token))
    assert response.status_code == 403
    assert response.json()["error"] == {
        "code": "FORBIDDEN",
        "message": "Insufficient permissions to run AssignProbe",
    }
    assert running.store.read_stream("task-t2") == []


def test_the_user_id_reaches_the_events_metadata(running: Any) -> None:
    ok = _post(running, "/api/v1/assign/t3", _bearer(AUTH.mint("carol", roles=["manager"])))
    service = _post(running, "/api/v1/assign/t3", {"X-API-Key": "svc-key-1"})
    assert ok.status_code == service.status_code == 200
    events = running.store.read_stream("task-t3")
    assert [e.metadata.user_id for e in events] == ["carol", "billing"]
    assert events[0].metadata.correlation_id == ok.headers["X-Request-ID"]


def test_permission_rules_read_permissions_too(running: Any) -> None:
    denied = _post(running, "/api/v1/audit/a", _bearer(AUTH.mint("dan", roles=["admin"])))
    allowed = _post(running, "/api/v1/audit/a", _bearer(AUTH.mint("dan", permissions=["ViewAnalytics"])))
    assert (denied.status_code, allowed.status_code) == (403, 200)


def test_minted_tokens_carry_issuer_and_audience_and_expire() -> None:
    token = AUTH.mint("eve", roles=["lead"], ttl=30, now=1_000_000.0)
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience="tests", options={"verify_exp": False})
    assert claims == {
        "sub": "eve",
        "iat": 1_000_000,
        "exp": 1_000_030,
        "roles": ["lead"],
        "permissions": [],
        "iss": "eventcore-lab",
        "aud": "tests",
    }
    with pytest.raises(NotAuthenticated, match="Token expired"):
        AUTH({"authorization": f"Bearer {token}"})
    assert AUTH({"authorization": f"Bearer {AUTH.mint('eve', roles=['lead'])}"}).roles == {"lead"}
