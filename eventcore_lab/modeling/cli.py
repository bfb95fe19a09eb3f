"""The work behind ``eventcore-lab board``: import a module, derive its model, save the board."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from ..core.errors import InvalidFormat
from .board import DEFAULT_MAX_WIDTH
from .derive import derive_model


def load_module(spec: str) -> ModuleType:
    """A module from a dotted name or from a ``.py`` file path."""
    path = Path(spec)
    if path.suffix == ".py":
        if not path.is_file():
            raise InvalidFormat(f"no such file: {spec}")
        name = f"_eventcore_board_{path.stem}"
        loader = importlib.util.spec_from_file_location(name, path)
        if loader is None or loader.loader is None:
            raise InvalidFormat(f"cannot import {spec} as a Python module")
        module = importlib.util.module_from_spec(loader)
        sys.modules[name] = module
        loader.loader.exec_module(module)
        return module
    try:
        return importlib.import_module(spec)
    except ImportError as exc:
        raise InvalidFormat(f"cannot import module {spec!r}: {exc}") from exc


def draw_board(
    module: str, output: str | Path, *, title: str | None = None, max_width: float | None = DEFAULT_MAX_WIDTH
) -> str:
    """Save the board of ``module`` to ``output``; returns a one-line summary of what was drawn."""
    name = Path(module).stem if module.endswith(".py") else module
    model = derive_model(load_module(module), name=name)
    if not model.commands and not model.read_models:
        raise InvalidFormat(f"module {module!r} defines no commands or projections to draw")
    target = model.board(title=title, max_width=max_width).save(output)
    counts = ", ".join(_count(len(v), k) for k, v in model.summary().items() if k != "streams")
    return f"wrote {target} ({counts}, {_count(len(model.lanes), 'stream categories')})"


def _count(n: int, plural: str) -> str:
    """``1 automation``, ``2 automations``, ``1 stream category``."""
    if n != 1:
        return f"{n} {plural}"
    singular = plural[:-3] + "y" if plural.endswith("ies") else plural.removesuffix("s")
    return f"{n} {singular}"
