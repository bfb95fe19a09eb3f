"""Authorization before execution: the executor's policy seam and the RBAC/ABAC/stream-rule policies."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from eventcore_lab import Command, Event, Executor, MemoryStore, emit, stream
from eventcore_lab.core.authorization import StreamAccess
from eventcore_lab.core.errors import Unauthorized
from eventcore_lab.security import (
    REDACTED,
    AllOf,
    AttributePolicy,
    PolicyDenied,
    Principal,
    RoleBasedPolicy,
    Rule,
    StreamRule,
    StreamRules,
    filter_rows,
    redact_columns,
)


class NoteWritten(Event, frozen=True):
    event_type = "security_policy_test.NoteWritten"
    text: str


class WriteNote(Command):
    target: str = stream()
    text: str

    def initial_state(self) -> int:
        return 0

    def apply(self, state: int, event: Any) -> int:
        return state + 1

    def handle(self, state: int, ctx: Any) -> list[Any]:
        return [emit(self.target, NoteWritten(text=self.text))]


class CopyNote(Command):
    """Reads ``source`` and discovers ``target`` at run time, so the policy must see the discovered stream."""

    source: str = stream()
    target: str

    def initial_state(self) -> int:
        return 0

    def apply(self, state: int, event: Any) -> int:
        return state + 1

    def handle(self, state: int, ctx: Any) -> list[Any]:
        ctx.add_streams(self.target)
        return [emit(self.target, NoteWritten(text=f"copied {state}"))]


class Recorder:
    """A policy that allows everything and remembers what it was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, str, StreamAccess]] = []

    def authorize(self, principal: Any, command: Any, streams: StreamAccess) -> None:
        self.calls.append((principal, type(command).__name__, streams))


ALICE = Principal.of("alice", ["editor"], department="sales")
BOB = Principal.of("bob", ["viewer"], department="support")


def test_without_a_policy_behaviour_is_unchanged_and_the_user_is_recorded() -> None:
    store = MemoryStore()
    result = Executor(store).execute(WriteNote("note-1", "hi"), user=ALICE)
    assert [e.metadata.user_id for e in result.events_written] == ["alice"]
    anonymous = Executor(store).execute(WriteNote("note-1", "again"))
    assert anonymous.events_written[0].metadata.user_id is None
    assert store.head() == 2


def test_a_plain_user_id_string_is_recorded_and_is_the_principal() -> None:
    recorder = Recorder()
    Executor(MemoryStore(), policy=recorder).execute(WriteNote("note-1", "hi"), user_id="carol")
    assert recorder.calls[0][0] == "carol"


def test_the_policy_sees_resolved_streams_including_discovered_ones() -> None:
    store = MemoryStore()
    Executor(store).execute(WriteNote("src", "a"))
    recorder = Recorder()
    Executor(store, policy=recorder).execute(CopyNote("src", "dst"), user=ALICE)
    principal, name, access = recorder.calls[-1]
    assert principal is ALICE and name == "CopyNote"
    assert access == StreamAccess(read=("src", "dst"), write=("dst",))


def test_rbac_denial_names_principal_and_rule_and_writes_nothing() -> None:
    store = MemoryStore()
    policy = RoleBasedPolicy({"editor": [WriteNote], "admin": ["*"]})
    executor = Executor(store, policy=policy)
    executor.execute(WriteNote("note-1", "ok"), user=ALICE)
    with pytest.raises(PolicyDenied) as denied:
        executor.execute(WriteNote("note-1", "no"), user=BOB)
    assert isinstance(denied.value, Unauthorized) and denied.value.code == "CE005"
    message = str(denied.value)
    assert "bob" in message and "'rbac'" in message and "WriteNote" in message and "viewer" in message
    assert denied.value.attempts == 1  # never retried
    assert store.head() == 1
    executor.execute(WriteNote("note-1", "admin"), user=Principal.of("root", ["admin"]))
    assert store.head() == 2  # the store stays usable


def test_a_policy_denies_anonymous_callers_by_default() -> None:
    store = MemoryStore()
    for policy in (
        RoleBasedPolicy({"editor": ["*"]}),
        AttributePolicy([Rule.of("any", lambda p, c, s: True)]),
        StreamRules([StreamRule.of("*", write=["*"])]),
    ):
        with pytest.raises(PolicyDenied, match="anonymous"):
            Executor(store, policy=policy).execute(WriteNote("n", "x"))
    assert store.head() == 0


def test_abac_rules_apply_by_command_and_uncovered_commands_are_refused() -> None:
    store = MemoryStore()
    same_department = Rule.of(
        "note-owner-department",
        lambda who, cmd, streams: cmd.target.startswith(f"note-{who.attributes['department']}-"),
        [WriteNote],
    )
    executor = Executor(store, policy=AttributePolicy([same_department]))
    executor.execute(WriteNote("note-sales-1", "ok"), user=ALICE)
    with pytest.raises(PolicyDenied, match="'note-owner-department'"):
        executor.execute(WriteNote("note-sales-2", "no"), user=BOB)
    Executor(store).execute(WriteNote("src", "seed"))
    with pytest.raises(PolicyDenied, match="no rule covers CopyNote"):
        executor.execute(CopyNote("src", "note-sales-9"), user=ALICE)
    assert [e.stream_id for e in store.read_all()] == ["note-sales-1", "src"]


def test_stream_rules_check_reads_and_writes_and_owners() -> None:
    store = MemoryStore()
    rules = StreamRules(
        [
            StreamRule.of("public-*", read=["*"], write=["editor"]),
            StreamRule.of("inbox-*", write=["owner"]),
        ]
    )
    executor = Executor(store, policy=rules)
    executor.execute(WriteNote("public-1", "hello"), user=ALICE)
    executor.execute(WriteNote("inbox-bob", "mine"), user=BOB)
    with pytest.raises(PolicyDenied, match=r"'inbox-\*'.*write of 'inbox-bob'"):
        executor.execute(WriteNote("inbox-bob", "not yours"), user=ALICE)
    # Bob may read public-1 but not write the discovered stream there.
    with pytest.raises(PolicyDenied, match="'public-\\*'"):
        executor.execute(CopyNote("inbox-bob", "public-1"), user=BOB)
    with pytest.raises(PolicyDenied, match="no rule matches stream 'secret'"):
        executor.execute(WriteNote("secret", "x"), user=ALICE)
    assert store.head() == 2
    assert rules.readable(BOB, "public-1") and not rules.readable(ALICE, "inbox-bob")


def test_all_of_requires_every_policy() -> None:
    store = MemoryStore()
    policy = AllOf(RoleBasedPolicy({"editor": ["*"]}), StreamRules([StreamRule.of("public-*", write=["*"])]))
    executor = Executor(store, policy=policy)
    executor.execute(WriteNote("public-1", "ok"), user=ALICE)
    with pytest.raises(PolicyDenied, match="streams"):
        executor.execute(WriteNote("private-1", "no"), user=ALICE)
    with pytest.raises(PolicyDenied, match="rbac"):
        executor.execute(WriteNote("public-1", "no"), user=BOB)
    with pytest.raises(ValueError):
        AllOf()
    assert store.head() == 1


def test_steps_carry_the_user_to_the_policy() -> None:
    store = MemoryStore()
    executor = Executor(store, policy=RoleBasedPolicy({"editor": ["*"]}))
    steps = executor.steps(WriteNote("n", "x"), user=BOB)
    with pytest.raises(PolicyDenied):
        for _ in steps:
            pass
    assert store.head() == 0


def test_read_side_row_filter_and_field_redaction() -> None:
    frame = pd.DataFrame(
        {"stream_id": ["public-1", "inbox-bob", "inbox-alice"], "email": ["a@x", None, "c@x"], "n": [1, 2, 3]}
    )
    rules = StreamRules([StreamRule.of("public-*", read=["*"]), StreamRule.of("inbox-*", read=["owner"])])
    assert filter_rows(frame, BOB, rules)["stream_id"].tolist() == ["public-1", "inbox-bob"]
    assert filter_rows(frame, None, rules).empty
    hidden = redact_columns(frame, ["email"], BOB, allowed_roles=["support-lead"])
    assert hidden["email"].tolist()[0] == REDACTED and hidden["email"].isna().tolist()[1]
    assert hidden["n"].tolist() == [1, 2, 3] and frame["email"].tolist()[0] == "a@x"
    shown = redact_columns(
        frame, ["email"], Principal.of("lead", ["support-lead"]), allowed_roles=["support-lead"]
    )
    assert shown["email"].tolist()[0] == "a@x"
