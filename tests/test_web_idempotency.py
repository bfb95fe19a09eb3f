"""Idempotency-Key: one execution per key, the same answer for every duplicate, durable in the store's
database (DuckDB, PostgreSQL) or in memory, with body fingerprints, a TTL and an in-flight lock."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from _web_support import Probe, open_named_store

from eventcore_lab import Executor
from eventcore_lab.web import (
    CommandRoute,
    DuckDBIdempotency,
    JwtAuth,
    MemoryIdempotency,
    PostgresIdempotency,
    create_app,
    idempotency_for,
    serve,
)
from eventcore_lab.web._idempotency import Claim, Stored

ROUTE = CommandRoute(
    Probe, path="/probe", streams={"target": "probe-{}"}, generated={"target": lambda: uuid.uuid4().hex}
)


@pytest.fixture(params=["memory", "duckdb", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Any]:
    kind = request.param
    if kind == "postgres":
        url, schema = request.getfixturevalue("pg_url"), request.getfixturevalue("pg_schema")
        with open_named_store(kind, pg_url=url, schema=schema) as s:
            yield s
    else:
        with open_named_store(kind, path=tmp_path / "events.duckdb") as s:
            yield s


def test_the_store_decides_where_keys_live(store: Any) -> None:
    expected = {
        "MemoryStore": MemoryIdempotency,
        "DuckDBStore": DuckDBIdempotency,
        "PostgresStore": PostgresIdempotency,
    }[type(store).__name__]
    assert type(idempotency_for(store)) is expected


async def _fire(url: str, n: int, key: str, body: dict[str, Any]) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        return await asyncio.gather(
            *[http.post("/api/v1/probe", json=body, headers={"Idempotency-Key": key}) for _ in range(n)]
        )


def test_fifty_concurrent_duplicates_execute_once_and_get_one_answer(store: Any) -> None:
    app = create_app(Executor(store), [ROUTE], idempotency_ttl=60)
    with serve(app) as running:
        answers = asyncio.run(_fire(running.url, 50, "key-50", {"note": "once"}))
        assert {a.status_code for a in answers} == {200}
        assert len({a.content for a in answers}) == 1, "duplicates got different answers"
        assert store.head() == 1, "the command ran more than once"
        replayed = sum(1 for a in answers if a.headers.get("Idempotent-Replayed") == "true")
        assert replayed == 49
        with running.client() as http:
            other_body = http.post(
                "/api/v1/probe", json={"note": "changed"}, headers={"Idempotency-Key": "key-50"}
            )
            key_order = http.post(
                "/api/v1/probe",
                content=b'{ "note" : "once" }',
                headers={"Idempotency-Key": "key-50", "content-type": "application/json"},
            )
    assert other_body.status_code == 422
    assert other_body.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert key_order.status_code == 200 and key_order.content == answers[0].content
    assert store.head() == 1


def test_after_the_ttl_the_key_executes_again(store: Any) -> None:
    app = create_app(Executor(store), [ROUTE], idempotency_ttl=0.5)
    with serve(app) as running, running.client() as http:
        first = http.post("/api/v1/probe", json={}, headers={"Idempotency-Key": "ttl"})
        again = http.post("/api/v1/probe", json={}, headers={"Idempotency-Key": "ttl"})
        time.sleep(0.8)
        later = http.post("/api/v1/probe", json={}, headers={"Idempotency-Key": "ttl"})
    assert first.content == again.content
    assert later.status_code == 200 and later.json()["resource_id"] != first.json()["resource_id"]
    assert store.head() == 2


def test_errors_are_not_kept_so_a_retry_runs_again(store: Any) -> None:
    app = create_app(Executor(store), [CommandRoute(Probe)])
    headers = {"Idempotency-Key": "after-error"}
    with serve(app) as running, running.client() as http:
        refused = http.post("/api/v1/commands/probe", json={"target": "e", "case": "rule"}, headers=headers)
        # Same key, same body: not replayed, executed again (still refused by the rule).
        again = http.post("/api/v1/commands/probe", json={"target": "e", "case": "rule"}, headers=headers)
        fine = http.post("/api/v1/commands/probe", json={"target": "e"}, headers={"Idempotency-Key": "k2"})
    assert refused.status_code == again.status_code == 422
    assert again.headers.get("Idempotent-Replayed") is None
    assert refused.json()["request_id"] != again.json()["request_id"]
    assert fine.status_code == 200 and store.head() == 1


def test_keys_are_scoped_to_the_caller(store: Any) -> None:
    auth = JwtAuth("a-long-enough-secret-for-hs256-tokens!")
    app = create_app(Executor(store), [ROUTE], auth=auth)
    with (
        serve(app) as running,
        running.client(token=auth.mint("ann")) as ann,
        running.client(token=auth.mint("ben")) as ben,
    ):
        a = ann.post("/api/v1/probe", json={}, headers={"Idempotency-Key": "shared"})
        b = ben.post("/api/v1/probe", json={}, headers={"Idempotency-Key": "shared"})
    assert a.status_code == b.status_code == 200
    assert a.json()["resource_id"] != b.json()["resource_id"]
    assert store.head() == 2


def test_a_duplicate_that_waits_too_long_gets_409(store: Any) -> None:
    app = create_app(Executor(store), [CommandRoute(Probe)], idempotency_wait=0.0)
    body = {"target": "slow", "case": "slow"}

    async def both(url: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            first = asyncio.create_task(
                http.post("/api/v1/commands/probe", json=body, headers={"Idempotency-Key": "busy"})
            )
            await asyncio.sleep(0.2)
            second = await http.post("/api/v1/commands/probe", json=body, headers={"Idempotency-Key": "busy"})
            return [await first, second]

    with serve(app) as running:
        first, second = asyncio.run(both(running.url))
    assert first.status_code == 200
    assert second.status_code == 409 and second.json()["error"]["code"] == "REQUEST_IN_PROGRESS"
    assert second.headers["Retry-After"] == "1"
    assert store.head() == 1


def test_a_missing_or_malformed_key_is_refused_where_required(store: Any) -> None:
    route = CommandRoute(Probe, require_idempotency_key=True)
    with serve(create_app(Executor(store), [route])) as running, running.client() as http:
        missing = http.post("/api/v1/commands/probe", json={"target": "x"})
        malformed = http.post(
            "/api/v1/commands/probe", json={"target": "x"}, headers={"Idempotency-Key": "a b"}
        )
    assert missing.status_code == 400
    assert missing.json()["error"]["message"] == "Idempotency-Key header required"
    assert malformed.status_code == 400
    assert store.head() == 0


def test_keys_survive_a_restart_in_the_durable_stores(
    store: Any, request: pytest.FixtureRequest, tmp_path: Any
) -> None:
    keys = idempotency_for(store)
    owner = keys.try_claim("scope-1", "fp", 60, 60)
    assert owner.claim is Claim.OWNER
    keys.complete("scope-1", owner.token, Stored(201, b'{"ok":true}', "application/json"))
    if type(store).__name__ == "MemoryStore":
        assert keys.try_claim("scope-1", "fp", 60, 60).claim is Claim.REPLAY
        return
    if type(store).__name__ == "DuckDBStore":
        path = store.path
        store.close()
        with open_named_store("duckdb", path=path) as reopened:
            again = idempotency_for(reopened).try_claim("scope-1", "fp", 60, 60)
    else:
        url, schema = request.getfixturevalue("pg_url"), request.getfixturevalue("pg_schema")
        with open_named_store("postgres", pg_url=url, schema=schema) as other_process:
            again = idempotency_for(other_process).try_claim("scope-1", "fp", 60, 60)
    assert again.claim is Claim.REPLAY
    assert again.stored == Stored(201, b'{"ok":true}', "application/json")


def test_a_lock_whose_owner_died_is_taken_over_after_its_timeout() -> None:
    now = [100.0]
    keys = MemoryIdempotency(clock=lambda: now[0])
    first = keys.try_claim("s", "fp", ttl=60, lock_timeout=5)
    assert keys.try_claim("s", "fp", ttl=60, lock_timeout=5).claim is Claim.BUSY
    assert keys.try_claim("s", "other", ttl=60, lock_timeout=5).claim is Claim.MISMATCH
    now[0] += 6
    second = keys.try_claim("s", "fp", ttl=60, lock_timeout=5)
    assert second.claim is Claim.OWNER and second.token != first.token
    keys.complete("s", first.token, Stored(200, b"late", "application/json"))  # the dead owner wakes up
    assert keys.try_claim("s", "fp", ttl=60, lock_timeout=5).claim is Claim.BUSY  # its answer is ignored
