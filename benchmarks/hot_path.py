"""The in-memory hot path, counted in instructions rather than timed.

Wall-clock ratios on a shared machine move 10-50% between runs; the number of instructions the
interpreter executes per command does not. Run the commands under callgrind twice, with ``N`` and with
0 commands after the same set-up, and divide the difference by ``N``::

    valgrind --tool=callgrind --callgrind-out-file=/dev/null python -m benchmarks.hot_path update 1000
    valgrind --tool=callgrind --callgrind-out-file=/dev/null python -m benchmarks.hot_path update 0

(``Collected :`` is the count). Kinds: ``update`` (a ``Credit`` on an open account), ``create`` (an
``Open`` of a new stream, two events) and ``transfer`` (two streams read and written).
"""

from __future__ import annotations

import sys

from eventcore_lab.core.executor import Executor
from eventcore_lab.stores.memory import MemoryStore

from .domain import Credit, Open, Transfer

KINDS = ("update", "create", "transfer")
_ACCOUNTS = 2001


def run(kind: str, commands: int) -> MemoryStore:
    """Set up accounts and warm every path (same work whatever ``commands``), then run ``commands``."""
    if kind not in KINDS:
        raise SystemExit(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if not 0 <= commands < _ACCOUNTS:
        raise SystemExit(f"commands must be between 0 and {_ACCOUNTS - 1}, got {commands}")
    store = MemoryStore()
    executor = Executor(store)
    names = [f"a-{k}" for k in range(_ACCOUNTS)]
    for name in names:
        executor.execute(Open(name, amount=1000))
    for i in range(50):
        executor.execute(Credit(names[i]))
        executor.execute(Open(f"warm-{i}"))
        executor.execute(Transfer(names[i + 1], names[i]))
    for i in range(commands):
        if kind == "create":
            executor.execute(Open(f"new-{i}"))
        elif kind == "update":
            executor.execute(Credit(names[i]))
        else:
            executor.execute(Transfer(names[i + 1], names[i]))
    return store


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        raise SystemExit("usage: python -m benchmarks.hot_path {update,create,transfer} N")
    run(args[0], int(args[1]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
