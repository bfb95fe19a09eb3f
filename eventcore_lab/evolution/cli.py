"""``eventcore-lab compat STORE --code MODULE``: the compatibility check before a deployment.

The module is the code about to be deployed: importing it registers its event classes (in the module's
``registry`` if it has one, else the default registry); an
:class:`~eventcore_lab.evolution.Upcasters` it defines (as ``upcasters``, or named with ``--upcasters``)
supplies the chains; the commands and projections it defines are listed as consumers. The exit status is 0
when the store is readable, 1 when it is not.
"""

from __future__ import annotations

import argparse
from typing import Any

import pandas as pd

from ..core.command import Command
from ..core.errors import InvalidFormat
from ..core.registry import EventRegistry, default_registry
from ..modeling.cli import load_module
from ..projections.base import Projection
from ..stores import open_store
from ._compatibility import check_compatibility
from ._upcasters import Upcasters


def _compat(args: argparse.Namespace) -> int:
    module = load_module(args.code)
    name = args.upcasters or "upcasters"
    chains = getattr(module, name, None)
    if args.upcasters and not isinstance(chains, Upcasters):
        raise InvalidFormat(f"{args.code}.{name} is not an eventcore_lab.evolution.Upcasters")
    upcasters = chains if isinstance(chains, Upcasters) else None
    own = getattr(module, "registry", None)
    registry = (
        upcasters.registry
        if upcasters is not None
        else own
        if isinstance(own, EventRegistry)
        else default_registry
    )
    consumers = [value for value in vars(module).values() if _is_consumer(value)]
    store = open_store(args.store, registry=registry)
    try:
        report = check_compatibility(store, registry, upcasters=upcasters, consumers=consumers)
    finally:
        store.close()
    if args.output:
        report.frame.to_csv(args.output, index=False)
    with pd.option_context("display.width", 200, "display.max_columns", None, "display.max_colwidth", 60):
        print(report.frame.drop(columns=["first_position", "sampled"]).to_string(index=False))
    print(report.summary())
    return 0 if report.ok else 1


def _is_consumer(value: Any) -> bool:
    return (
        isinstance(value, type)
        and issubclass(value, Projection | Command)
        and value not in (Projection, Command)
    )


def add_compat_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``eventcore-lab compat STORE --code MODULE``."""
    compat = commands.add_parser(
        "compat", help="check that the code of a module can read every event of a store (exit 1 if not)"
    )
    compat.add_argument("store", help="'memory', a DuckDB file or a postgresql:// URL")
    compat.add_argument("--code", required=True, help="the module to deploy: a dotted name or a .py file")
    compat.add_argument(
        "--upcasters", default=None, help="name of the module's Upcasters object (default: upcasters)"
    )
    compat.add_argument("-o", "--output", default=None, help="also write the report to this CSV file")
    compat.set_defaults(run=_compat)
