"""What an exploration found: counts a person can quote, and counterexamples a person can read."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ...core.command import Command
from ...core.errors import InvalidFormat
from ...stores.memory import MemoryStore
from ._clients import COMMIT, Move
from ._scenario import ConcurrentScenario


@dataclass(frozen=True)
class StepRecord:
    """One step of an interleaving, as shown in a counterexample's table."""

    step: int
    client: str
    command: str
    phase: str
    attempt: int
    streams: tuple[str, ...]
    detail: str = ""


@dataclass
class Counterexample:
    """A failing interleaving: which client stepped, in order, and what the invariant said at the end.

    It is a path, not a recording: :meth:`replay` runs it again step by step on a fresh store, so the
    tables, the timeline and the given/when/then scenario all come from a real run.
    """

    scenario: ConcurrentScenario
    order: tuple[int, ...]  # client index of each step
    message: str

    def __len__(self) -> int:
        return len(self.order)

    def replay(self) -> Iterator[tuple[StepRecord, MemoryStore]]:
        """Run the interleaving again on a fresh store, yielding each step and the store after it."""
        for record, _, store in self._walk():
            yield record, store

    def _walk(self) -> Iterator[tuple[StepRecord, Move, MemoryStore]]:
        store = self.scenario.new_store()
        clients = self.scenario.clients
        locals_ = [c.start() for c in clients]
        for number, index in enumerate(self.order, start=1):
            client = clients[index]
            if client.finished(locals_[index]):
                raise InvalidFormat(f"step {number}: {client.name} has already finished; not a valid path")
            move = client.step(locals_[index], store)
            locals_[index] = move.local
            yield _record(number, client.name, move), move, store

    def steps(self) -> list[StepRecord]:
        return [record for record, _ in self.replay()]

    def final_store(self) -> MemoryStore:
        """The store after the whole interleaving (the state that breaks the invariant)."""
        store = self.scenario.new_store()
        for _, store in self.replay():  # noqa: B007 - the last one is wanted
            pass
        return store

    def table(self) -> Any:
        """One row per step: the same columns as the phase log of tutorial 3.4."""
        import pandas as pd

        rows = [
            {
                "step": r.step,
                "client": r.client,
                "command": r.command,
                "phase": r.phase,
                "attempt": r.attempt,
                "streams": ", ".join(r.streams),
                "detail": r.detail,
            }
            for r in self.steps()
        ]
        return pd.DataFrame(rows).set_index("step") if rows else pd.DataFrame(rows)

    def phases(self) -> Any:
        """Phases per client: one column per client, one row per step, a cell where that client moved."""
        import pandas as pd

        names = [c.name for c in self.scenario.clients]
        rows = []
        for r in self.steps():
            row = dict.fromkeys(names, "")
            row[r.client] = f"{r.phase} ({r.command})" if r.phase == COMMIT else r.phase
            rows.append(row)
        return pd.DataFrame(rows, index=pd.RangeIndex(1, len(rows) + 1, name="step"), columns=names)

    def timeline(self) -> Any:
        """The final history on the workbench timeline, commits labelled with client and command."""
        from ...modeling.timeline import Timeline

        return Timeline(self.final_store().read_all(), title=f"counterexample: {self.message}")

    def scenario_spec(self) -> Any:
        """The failure as a given/when/then :class:`~eventcore_lab.testing.Scenario`.

        The executor checks every stream a command read, so a commit that succeeds acted on exactly the
        state its streams had at that moment: the whole interleaving collapses to *given* everything
        committed before the breaking commit, *when* that command, *then* what it wrote. ``verify()``
        reproduces it; turn ``then`` into the behaviour you want and keep it as a regression test.
        """
        from ...testing.scenario import Scenario

        last, before, written = self._breaking_commit()
        spec = Scenario(f"{self.scenario.name}: {self.message}")
        for stream_id, event in before:
            spec = spec.given(stream_id, event)
        spec = spec.when(last)
        for stream_id, event in written:
            spec = spec.then(stream_id, event)
        return spec.then_nothing() if not written else spec

    def scenario_code(self) -> str:
        """:meth:`scenario_spec` as Python source to paste into a test (events and commands by repr)."""
        last, before, written = self._breaking_commit()
        lines = ["spec = (", f"    Scenario({f'{self.scenario.name}: {self.message}'!r})"]
        lines += [f"    .given({s!r}, {e!r})" for s, e in before]
        lines.append(f"    .when({last!r})")
        lines += [f"    .then({s!r}, {e!r})" for s, e in written] or ["    .then_nothing()"]
        lines += [")", "spec.verify()"]
        return "\n".join(lines)

    def _breaking_commit(self) -> tuple[Command[Any], list[tuple[str, object]], list[tuple[str, object]]]:
        """The last step that wrote, the history before it and what it wrote."""
        head = self.scenario.new_store().head()
        writer: Move | None = None
        log: list[Any] = []
        for _, move, store in self._walk():
            if store.head() != head:
                head, writer, log = store.head(), move, store.read_all()
        if writer is None:
            raise InvalidFormat("this counterexample writes nothing: the initial history already breaks it")
        if not isinstance(writer.subject, Command) or writer.result is None:
            raise InvalidFormat(
                f"the breaking step ({writer.phase} {writer.action}) is not a command's commit; "
                "it has no given/when/then form"
            )
        written = [(e.stream_id, e.payload) for e in writer.result.events_written]
        history = log[: len(log) - len(written)]
        return writer.subject, [(e.stream_id, e.payload) for e in history], written

    def describe(self) -> str:
        lines = [f"{len(self)} steps break the invariant: {self.message}"]
        lines += [
            f"  {r.step:>3}. {r.client}: {r.phase} {r.command} (attempt {r.attempt})"
            + (f" [{', '.join(r.streams)}]" if r.streams else "")
            for r in self.steps()
        ]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.describe()

    def _repr_html_(self) -> str:
        return f"<p><b>{len(self)} steps</b> break the invariant: {self.message}</p>{self.phases().to_html()}"


@dataclass(frozen=True)
class ExplorationReport:
    """What :func:`explore` did.

    ``states`` distinct states visited; ``transitions`` steps taken; ``interleavings`` complete
    interleavings in the explored graph (all of them without reduction; one or more representatives of
    each class of equivalent ones with it); ``pruned`` steps skipped because they were asleep;
    ``complete`` is True when every interleaving within the bounds was explored (a violation stops the
    search, so a report with a counterexample is not complete). ``first_found_length`` is the length of
    the first violation found; ``shortest`` is True when the counterexample is known to be of minimal
    length (the breadth-first re-search finished).
    """

    scenario: str
    reduction: bool
    states: int
    transitions: int
    interleavings: int
    pruned: int
    cache_hits: int
    truncated: int
    terminal_states: int
    complete: bool
    stopped_by: str | None
    elapsed: float
    counterexample: Counterexample | None = None
    first_found_length: int | None = None
    shortest: bool = False

    @property
    def holds(self) -> bool:
        """True when the search was complete and no interleaving broke the invariant."""
        return self.complete and self.counterexample is None

    @property
    def states_per_second(self) -> float:
        return self.states / self.elapsed if self.elapsed > 0 else float("inf")

    def summary(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "reduction": self.reduction,
            "states": self.states,
            "transitions": self.transitions,
            "interleavings": self.interleavings,
            "pruned": self.pruned,
            "cache hits": self.cache_hits,
            "truncated": self.truncated,
            "complete": self.complete,
            "stopped by": self.stopped_by or "",
            "seconds": round(self.elapsed, 3),
            "states/s": round(self.states_per_second),
            "counterexample steps": len(self.counterexample) if self.counterexample else None,
            "shortest": self.shortest,
        }

    def __str__(self) -> str:
        if self.counterexample is not None:
            head = f"{self.scenario}: the invariant is broken (found after {self.states} states)"
            return f"{head}\n{self.counterexample.describe()}"
        if not self.complete:
            reason = self.stopped_by or f"{self.truncated} states at the depth bound"
            return (
                f"{self.scenario}: the invariant was not checked completely ({reason}); "
                f"{self.states} states, {self.transitions} steps, {self.elapsed:.2f} s"
            )
        kind = "representative interleavings (reduced)" if self.reduction else "interleavings"
        return (
            f"{self.scenario}: the invariant holds in every interleaving; {self.states} states, "
            f"{self.transitions} steps, {self.interleavings} {kind}, {self.elapsed:.2f} s"
        )

    def _repr_html_(self) -> str:
        import pandas as pd

        table = pd.Series(self.summary(), name="exploration").to_frame().to_html()
        return table + (self.counterexample._repr_html_() if self.counterexample else "")


def _record(number: int, client: str, move: Move) -> StepRecord:
    detail = ""
    if move.error is not None:
        detail = (
            f"{move.error.code} {type(move.error).__name__}: {getattr(move.error, 'message', move.error)}"
        )
    elif move.result is not None:
        detail = f"{len(move.result.events_written)} event(s) written"
    return StepRecord(number, client, move.action, move.phase, move.attempt, move.streams, detail)
