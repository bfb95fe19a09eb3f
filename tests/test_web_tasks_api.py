"""The task API example: two versions side by side, negotiation, deprecation headers, permission to
assign, command-level idempotency, and the manual's task counts over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from eventcore_lab.examples.tasks_api import CAN_ASSIGN_TASKS, build
from eventcore_lab.web import negotiate_version, serve


@pytest.fixture(scope="module")
def api() -> Iterator[Any]:
    api = build(secret="a-secret-for-the-task-api-tests-0123456789")
    with serve(api.app) as server:
        api.server = server
        api.admin = server.client(token=api.auth.mint("alice", roles=["admin"]))
        api.bob = server.client(token=api.auth.mint("bob", roles=["member"]))
        yield api
        api.admin.close()
        api.bob.close()


def test_v2_creates_assigns_and_completes_with_the_manuals_counts(api: Any) -> None:
    created = api.admin.post("/api/v2/tasks", json={"title": "Ship", "description": "it", "priority": "high"})
    assert created.status_code == 201
    task = created.json()
    assert (len(task["events"]), len(task["streams_affected"])) == (1, 1)
    tid = task["task_id"]
    assert task["_links"] == {"self": f"/api/v2/tasks/{tid}"}
    forbidden = api.bob.post(f"/api/v2/tasks/{tid}/assign", json={"assignee_id": "bob"})
    assert forbidden.status_code == 403
    assigned = api.admin.post(f"/api/v2/tasks/{tid}/assign", json={"assignee_id": "bob"}).json()
    assert (len(assigned["events"]), len(assigned["streams_affected"])) == (3, 2)
    done = api.bob.post(f"/api/v2/tasks/{tid}/complete")
    assert done.status_code == 200
    assert (len(done.json()["events"]), len(done.json()["streams_affected"])) == (2, 2)
    view = api.admin.get(f"/api/v2/tasks/{tid}", params={"min_position": done.json()["position"]}).json()
    assert (view["status"], view["priority"], view["assigned_to"]) == ("completed", "high", ["bob"])
    events = api.executor.store.read_stream(f"task-{tid}")
    assert [e.metadata.user_id for e in events] == ["alice", "alice", "bob"]


def test_v1_is_served_beside_v2_with_its_own_shapes_and_deprecation(api: Any) -> None:
    created = api.admin.post("/api/v1/tasks", json={"title": "Old client", "description": ""})
    assert created.status_code == 201
    assert created.json() == {"task_id": created.json()["task_id"], "message": "Task created successfully"}
    assert created.headers["Deprecation"] == "true"
    assert created.headers["Sunset"] == "Fri, 31 Dec 2027 23:59:59 GMT"
    assert created.headers["Link"] == '</api/v2/docs>; rel="successor-version"'
    refused = api.admin.post("/api/v1/tasks", json={"title": "x", "priority": "high"})
    assert refused.status_code == 400 and "priority" in refused.json()["error"]["field_errors"]
    tid = created.json()["task_id"]
    position = api.admin.post(f"/api/v1/tasks/{tid}/assign", json={"assignee_id": "carol"}).json()["position"]
    v1 = api.admin.get(f"/api/v1/tasks/{tid}", params={"min_position": position})
    v2 = api.admin.get(f"/api/v2/tasks/{tid}", params={"min_position": position})
    assert v1.json()["assigned_to"] == "carol" and "priority" not in v1.json()
    assert v2.json()["assigned_to"] == ["carol"] and v2.json()["priority"] == "medium"
    assert "Deprecation" not in v2.headers
    by_header = api.admin.get(f"/api/tasks/{tid}", headers={"API-Version": "v1"}).json()
    by_media = api.admin.get(
        f"/api/tasks/{tid}", headers={"Accept": "application/vnd.eventcore.v1+json"}
    ).json()
    default = api.admin.get(f"/api/tasks/{tid}", headers={"API-Version": "v9"}).json()
    assert by_header == by_media == v1.json()
    assert default == v2.json()
    vendor = api.admin.get(f"/api/v2/tasks/{tid}", headers={"Accept": "application/vnd.eventcore.v2+json"})
    assert vendor.headers["content-type"] == "application/vnd.eventcore.v2+json"
    vendor_body = api.admin.post(
        "/api/v2/tasks",
        content=b'{"title": "sent as a vendor type"}',
        headers={"Content-Type": "application/vnd.eventcore.v2+json"},
    )
    assert vendor_body.status_code == 201


def test_a_repeated_comment_id_writes_nothing(api: Any) -> None:
    tid = api.admin.post("/api/v2/tasks", json={"title": "Talk"}).json()["task_id"]
    first = api.bob.post(f"/api/v2/tasks/{tid}/comments", json={"comment_id": "c-1", "comment": "hi"})
    again = api.bob.post(f"/api/v2/tasks/{tid}/comments", json={"comment_id": "c-1", "comment": "hi"})
    empty = api.bob.post(f"/api/v2/tasks/{tid}/comments", json={"comment_id": "c-2", "comment": " "})
    assert (first.status_code, len(first.json()["events"])) == (201, 1)
    assert (again.status_code, again.json()["events"]) == (201, [])
    assert (empty.status_code, empty.json()["error"]["code"]) == (422, "BUSINESS_RULE_VIOLATION")
    assert len(api.executor.store.read_stream(f"task-{tid}")) == 2


def test_negotiation_rules() -> None:
    assert negotiate_version({"api-version": "1"}, ("1", "2"), "2") == "1"
    assert negotiate_version({"api-version": "V2"}, ("1", "2"), "2") == "2"
    assert negotiate_version({"content-type": "application/vnd.eventcore.v1+json"}, ("1", "2"), "2") == "1"
    assert negotiate_version({"api-version": "7"}, ("1", "2"), "2") == "2"
    assert negotiate_version({}, ("1", "2"), "2") == "2"
    assert set(CAN_ASSIGN_TASKS) == {"admin", "manager", "lead"}
