"""A small banking domain in three schema generations, for the evolution tests and the benchmark.

Classes are made with ``msgspec.defstruct`` so that each generation's class has the same module and
name as the one it replaces: re-registering it is what changing the code of a class does.
"""

from __future__ import annotations

from typing import Any

import msgspec

from eventcore_lab.core.events import EventToWrite
from eventcore_lab.core.registry import EventRegistry
from eventcore_lab.evolution import Upcasters

MODULE = "bank_domain"


def _event(name: str, fields: list[tuple[str, type]], version: int = 1) -> type:
    return msgspec.defstruct(
        name, fields, module=MODULE, frozen=True, kw_only=True, namespace={"schema_version": version}
    )


def register_v1(registry: EventRegistry) -> dict[str, type]:
    """Generation 1: ``owner`` in one field, ``amt`` for deposits, a Note event, FeeCharged."""
    classes = {
        "AccountOpened": _event("AccountOpened", [("owner", str)]),
        "Deposited": _event("Deposited", [("amt", int)]),
        "Withdrawn": _event("Withdrawn", [("amount", int)]),
        "Note": _event("Note", [("text", str)]),
        "FeeCharged": _event("FeeCharged", [("cents", int)]),
    }
    for name, cls in classes.items():
        registry.register(cls, name)
    return classes


def register_current(registry: EventRegistry) -> dict[str, type]:
    """Generation 3: owner split in two (v2), deposits renamed then in cents (v3), Note retired,
    FeeCharged renamed to Charged (v2)."""
    classes = {
        "AccountOpened": _event("AccountOpened", [("first", str), ("last", str)], 2),
        "Deposited": _event("Deposited", [("amount", int)], 3),
        "Withdrawn": _event("Withdrawn", [("amount", int)]),
        "Charged": _event("Charged", [("cents", int)], 2),
    }
    for name, cls in classes.items():
        registry.register(cls, name)
    return classes


def split_owner(owner: str) -> dict[str, str]:
    first, _, last = owner.partition(" ")
    return {"first": first, "last": last}


def upcasters(registry: EventRegistry, *, strict: bool = False) -> Upcasters:
    chains = Upcasters(registry, strict=strict)
    chains.split_field("AccountOpened", 1, "owner", split_owner)
    chains.rename_field("Deposited", 1, "amt", "amount")
    chains.convert_field("Deposited", 2, "amount", lambda euros: euros * 100)
    chains.retire("Note", 1)
    chains.rename_type("FeeCharged", 1, "Charged")
    return chains


def history_v1(classes: dict[str, type], accounts: int = 3) -> list[EventToWrite]:
    """Writes of a small history with the generation-1 classes."""
    writes = []
    for n in range(accounts):
        sid = f"account-{n}"
        writes.append(EventToWrite(sid, classes["AccountOpened"](owner=f"Ada{n} Lovelace")))
        writes.append(EventToWrite(sid, classes["Deposited"](amt=10 + n)))
        writes.append(EventToWrite(sid, classes["Note"](text="vip")))
        writes.append(EventToWrite(sid, classes["Withdrawn"](amount=3)))
        writes.append(EventToWrite(sid, classes["FeeCharged"](cents=25)))
    return writes


def expected_current(accounts: int = 3) -> list[tuple[str, Any]]:
    """(type, payload as builtins) of :func:`history_v1` read through :func:`upcasters`; Note is retired."""
    out: list[tuple[str, Any]] = []
    for n in range(accounts):
        out.append(("AccountOpened", {"first": f"Ada{n}", "last": "Lovelace"}))
        out.append(("Deposited", {"amount": (10 + n) * 100}))
        out.append(("Note", {"text": "vip"}))
        out.append(("Withdrawn", {"amount": 3}))
        out.append(("Charged", {"cents": 25}))
    return out
