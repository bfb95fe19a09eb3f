"""Process managers on an event-modeling board, derived from their code.

In event modeling a process is an automation (a gear) that watches a to-do list (a read model) and issues
commands. A process manager declares exactly that: the events it reacts to (its to-do list, kept in its
own stream) and the commands it may issue. :func:`add_processes` puts both notes on a board derived with
:func:`~eventcore_lab.modeling.derive_model`, connected to the events and commands already there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..core.errors import InvalidFormat
from ..core.registry import EventRegistry, default_registry
from .manager import ProcessManager

if TYPE_CHECKING:  # the modeling package is imported on use, so that processes stay light
    from ..modeling.model import EventModel


def add_processes(
    model: EventModel, managers: Sequence[ProcessManager[Any]], *, registry: EventRegistry = default_registry
) -> EventModel:
    """Add, per manager, a read model ``"<name> state"`` fed by its trigger events and an automation
    ``<name>`` that watches it and issues its commands. Commands not yet on the board are added bare.

    Returns ``model``. Trigger events missing from the board are added in a ``"?"`` lane (written by
    something the board does not show, such as a person or another service).
    """
    from ..modeling.model import Element, Kind

    names = {registry.event_class(n): n for n in registry}
    for manager in managers:
        if not isinstance(manager, ProcessManager):
            raise InvalidFormat(f"expected ProcessManager instances, got {type(manager).__name__}")
        manager.check()
        doc = (type(manager).__doc__ or "").strip().split("\n")[0]
        state = f"{manager.name} state"
        triggers = [names.get(t, t.__name__) for t in manager.triggers]
        for event in triggers:
            if event not in model.elements:
                model.add(Element(Kind.EVENT, event, ("?",), source=registry.event_class(event)), event)
        home = _after_last(model, triggers) or state
        model.add(
            Element(Kind.READ_MODEL, state, (), doc=f"what {manager.name} waits for", source=manager), home
        )
        for event in triggers:
            model.connect(event, state)
        model.add(Element(Kind.AUTOMATION, manager.name, doc=doc, source=manager), home)
        model.connect(state, manager.name)
        for command in manager.commands:
            if command.__name__ not in model.elements:
                model.add(Element(Kind.COMMAND, command.__name__, source=command), command.__name__)
            model.connect(manager.name, command.__name__)
    return model


def _after_last(model: EventModel, events: list[str]) -> str | None:
    index = -1
    for event in events:
        if event in model.elements:
            index = max(index, model.slices.index(model.slice_of(event)))
    return model.slices[index].name if index >= 0 else None
