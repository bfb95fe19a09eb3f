"""Fuzzed requests (wrong types, huge strings, deep nesting, invalid UTF-8, SQL and script strings) never
get a 500 and never write: against a real server running the task API on an empty store, where no
fuzzed request can be valid (the tasks they name do not exist, or the body cannot match the schema)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventcore_lab.examples.tasks_api import build
from eventcore_lab.web import serve

NASTY = [
    "'; DROP TABLE events; --",
    '" OR 1=1 --',
    "<script>alert(1)</script>",
    "${jndi:ldap://x}",
    "{{7*7}}",
    "../../etc/passwd",
    "\u0000",
    "\ud800",
    "🙂" * 50,
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.sampled_from(NASTY),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
not_a_string = st.none() | st.booleans() | st.integers() | st.floats() | st.lists(json_values, max_size=3)
huge = st.integers(300_000, 1_500_000).map(lambda n: "x" * n)
deep = st.integers(100, 200_000).map(lambda d: ("[" * d + "]" * d).encode())


@st.composite
def raw_bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["binary", "deep", "json", "wrong-create", "huge"]))
    if kind == "binary":
        return draw(st.binary(max_size=200))
    if kind == "deep":
        return draw(deep)
    if kind == "huge":
        return json.dumps({"title": draw(huge), "description": "d"}).encode()
    if kind == "wrong-create":
        title = draw(not_a_string)
        return json.dumps({"title": title, "priority": draw(json_values)}, default=str).encode()
    value = draw(json_values)
    if isinstance(value, dict) and isinstance(value.get("title"), str):
        value["title"] = 5  # a string title could make a valid task: keep every body invalid
    return json.dumps(value).encode("utf-8", "surrogatepass")


@pytest.fixture(scope="module")
def api() -> Iterator[Any]:
    api = build(secret="the-fuzzing-secret-0123456789-abcdefghij")
    with serve(api.app) as server:
        api.http = httpx.Client(
            base_url=server.url,
            timeout=60,
            headers={"Authorization": f"Bearer {api.auth.mint('fuzzer', roles=['admin'])}"},
        )
        yield api
        api.http.close()


def _check(api: Any, response: httpx.Response) -> None:
    assert response.status_code < 500, response.text[:500]
    assert response.status_code in (400, 401, 403, 404, 405, 413, 422), response.text[:300]
    assert response.json()["error"]["code"]
    assert api.executor.store.head() == 0, "a fuzzed request wrote events"


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=raw_bodies(), version=st.sampled_from(["v1", "v2"]))
def test_fuzzed_create_bodies(api: Any, body: bytes, version: str) -> None:
    response = api.http.post(
        f"/api/{version}/tasks", content=body, headers={"content-type": "application/json"}
    )
    _check(api, response)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    task_id=st.text(min_size=1, max_size=300) | st.sampled_from(NASTY),
    body=st.dictionaries(
        st.sampled_from(["assignee_id", "comment_id", "comment", "extra"]),
        json_values | st.sampled_from(NASTY),
        max_size=3,
    ),
    action=st.sampled_from(["assign", "comments", "complete"]),
)
def test_fuzzed_commands_on_tasks_that_do_not_exist(api: Any, task_id: str, body: Any, action: str) -> None:
    path = f"/api/v2/tasks/{quote(task_id.encode('utf-8', 'surrogatepass'), safe='')}/{action}"
    response = api.http.post(
        path,
        content=json.dumps(body).encode("utf-8", "surrogatepass"),
        headers={"content-type": "application/json"},
    )
    _check(api, response)
