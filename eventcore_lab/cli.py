"""The ``eventcore-lab`` command."""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from collections.abc import Sequence

from .core.errors import EventCoreError
from .core.executor import Executor
from .modeling.board import DEFAULT_MAX_WIDTH

_DESCRIPTION = "EventCore Lab: multi-stream event sourcing in Python, with a Jupyter workbench."


def _demo(args: argparse.Namespace) -> int:
    """The task-management walk-through of the manual's chapter 2.3, on any store."""
    from .examples.tasks import AssignTask, CompleteTask, CreateTask
    from .stores import open_store

    store = open_store(args.store)
    executor = Executor(store)
    task_id = str(uuid.uuid4())
    print("Running demo...")
    print(f"EventCore Task Management Demo (store: {args.store or 'eventcore.duckdb'})")
    print("=" * 32)
    print()
    try:
        print(f"1. Creating task {task_id}...")
        created = executor.execute(
            CreateTask.new(task_id, "Build awesome features", "Use EventCore to build great things", "alice")
        )
        print(f"   Task created with {len(created.events_written)} event(s)")
        print()
        print("2. Assigning task to Bob...")
        assigned = executor.execute(AssignTask.new(task_id, "bob", "alice"))
        print(
            f"   Task assigned, {len(assigned.events_written)} event(s) in "
            f"{len(assigned.streams_affected)} stream(s) updated"
        )
        print()
        print("3. Bob completes the task...")
        completed = executor.execute(CompleteTask.new(task_id, "bob"))
        written, streams = len(completed.events_written), len(completed.streams_affected)
        print(f"   Task completed! {written} event(s) in {streams} stream(s)")
        print()
        print("History of the task stream:")
        for event in store.read_stream(f"task-{task_id}"):
            print(f"   v{event.version} @{event.position} {event.event_type}")
        print(f"The store now holds {store.head()} events.")
        print()
        print("Demo complete!")
    finally:
        store.close()
    return 0


def _board(args: argparse.Namespace) -> int:
    """Draw the event-modeling board of the commands and projections in a module."""
    from .modeling.cli import draw_board

    width = None if args.full_size else args.width
    print(draw_board(args.module, args.output, title=args.title, max_width=width))
    return 0


def add_board_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``eventcore-lab board MODULE -o board.svg``."""
    board = commands.add_parser(
        "board", help="draw the event-model board of a module's commands and projections"
    )
    board.add_argument("module", help="a module name (eventcore_lab.examples.coffee) or a .py file")
    board.add_argument(
        "-o", "--output", required=True, help="file to write: .svg, .png, .pdf or .dot (by suffix)"
    )
    board.add_argument("--title", default=None, help="title drawn on the board (default: the module's name)")
    board.add_argument(
        "--width",
        type=float,
        default=DEFAULT_MAX_WIDTH,
        help=f"widest row in points before the board wraps onto another row (default {DEFAULT_MAX_WIDTH:g})",
    )
    board.add_argument("--full-size", action="store_true", help="one row however wide (for a poster)")
    board.set_defaults(run=_board)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eventcore-lab", description=_DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run the task-management walk-through")
    demo.add_argument(
        "--store",
        default=None,
        help="'memory', a DuckDB file (default: eventcore.duckdb) or a postgresql:// URL",
    )
    demo.set_defaults(run=_demo)
    add_board_parser(commands)
    from .operator_cli import add_operator_commands

    add_operator_commands(commands)

    from .security._cli import add_audit_parser  # needs no optional dependency

    add_audit_parser(commands)

    from .evolution.cli import add_compat_parser

    add_compat_parser(commands)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("eventcore-lab")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except EventCoreError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # the reader went away (`eventcore-lab demo | head`): stop quietly, as Unix tools do; point
        # stdout at /dev/null so that the interpreter's final flush does not raise again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
