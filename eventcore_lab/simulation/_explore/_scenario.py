"""A concurrent scenario: an initial history and a few clients whose steps run in every order."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from ...core.command import Command
from ...core.errors import EventCoreError, InvalidFormat
from ...core.events import EventToWrite, Metadata
from ...core.ids import RepeatableIds, StreamId
from ...stores.memory import MemoryStore
from ._clients import Client, CommandClient


@dataclass(frozen=True)
class ConcurrentScenario:
    """A value describing what to explore; building it runs nothing.

    >>> scenario = (ConcurrentScenario("two payments")
    ...             .given("wallet-a", WalletFunded(amount=100))
    ...             .client(PayFast("wallet-a", "wallet-b", 60))
    ...             .client(PayFast("wallet-a", "wallet-c", 60)))  # doctest: +SKIP
    """

    name: str
    givens: tuple[tuple[str, object], ...] = ()
    clients: tuple[Client, ...] = ()
    max_retries: int = 2

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise InvalidFormat(f"a concurrent scenario needs a non-empty name, got {self.name!r}")

    def given(self, stream_id: str, *events: object) -> ConcurrentScenario:
        """History committed before any client starts (one atomic append of every given, in order)."""
        try:
            sid = str(StreamId(stream_id))
        except EventCoreError as exc:
            raise type(exc)(f"scenario {self.name!r}: {exc.message}") from None
        if not events:
            raise InvalidFormat(f"scenario {self.name!r}: given({sid!r}) needs at least one event")
        return replace(self, givens=self.givens + tuple((sid, e) for e in events))

    def client(self, *commands: Command[Any] | Client, name: str | None = None) -> ConcurrentScenario:
        """Add a client running ``commands`` in order (or one ready-made :class:`Client`)."""
        label = name or f"client {len(self.clients) + 1}"
        if label in {c.name for c in self.clients}:
            raise InvalidFormat(f"scenario {self.name!r} already has a client named {label!r}")
        if len(commands) == 1 and not isinstance(commands[0], Command):
            actor = commands[0]
            if not isinstance(actor, Client):
                raise InvalidFormat(
                    f"scenario {self.name!r}: client() takes commands or a Client, got {type(actor).__name__}"
                )
            return replace(self, clients=(*self.clients, actor))
        if not all(isinstance(c, Command) for c in commands):
            raise InvalidFormat(f"scenario {self.name!r}: client() takes Command instances or one Client")
        made = CommandClient(label, tuple(c for c in commands if isinstance(c, Command)), self.max_retries)
        return replace(self, clients=(*self.clients, made))

    def retries(self, max_retries: int) -> ConcurrentScenario:
        """Retries per command for the clients added *after* this call (bounds the exploration)."""
        if max_retries < 0:
            raise InvalidFormat(f"scenario {self.name!r}: max_retries must be >= 0, got {max_retries}")
        return replace(self, max_retries=max_retries)

    def new_store(self, clock: Callable[[], datetime] | None = None) -> MemoryStore:
        """A fresh in-memory store holding the givens, with repeatable ids on ``clock``."""
        if clock is None:
            from ...testing.scenario import DEFAULT_NOW

            fixed = DEFAULT_NOW
            clock = lambda: fixed  # noqa: E731
        store = MemoryStore(clock=clock, new_id=RepeatableIds(clock, 0))
        if self.givens:
            metadata = Metadata(correlation_id=f"given:{self.name}")
            store.append([EventToWrite(s, e, metadata) for s, e in self.givens])
        return store

    def describe(self) -> str:
        lines = [f"Concurrent scenario: {self.name}", "  Given"]
        lines += [f"    {s}: {e!r}" for s, e in self.givens] or ["    (no events)"]
        for client in self.clients:
            commands = getattr(client, "commands", None)
            body = ", ".join(repr(c) for c in commands) if commands else repr(client)
            lines.append(f"  {client.name}: {body}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.describe()
