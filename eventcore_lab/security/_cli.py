"""The work behind ``eventcore-lab audit``: the audit trail of a store, filtered, as a text table."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from ..core.errors import InvalidArgument
from ._audit import audit_frame


def _when(text: str | None, name: str) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidArgument(
            f"--{name} must be an ISO date or time (2026-01-31 or 2026-01-31T12:00), got {text!r}"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _audit(args: argparse.Namespace) -> int:
    from ..stores import open_store

    since, until = _when(args.since, "since"), _when(args.until, "until")
    store = open_store(args.store)
    try:
        frame = audit_frame(store, stream=args.stream, user=args.user, since=since, until=until)
    finally:
        store.close()
    if args.last is not None:
        frame = frame.tail(args.last)
    if frame.empty:
        print("no events match")
    else:
        print(frame.to_string(index=False))
    return 0


def add_audit_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``eventcore-lab audit [--stream S] [--user U] [--since T] [--until T]``."""
    audit = commands.add_parser("audit", help="who did what and when: the audit trail from event metadata")
    audit.add_argument("--store", default=None, help="'memory', a DuckDB file or a postgresql:// URL")
    audit.add_argument("--stream", default=None, help="only this stream")
    audit.add_argument("--user", default=None, help="only events recorded for this user id")
    audit.add_argument(
        "--since", default=None, help="only events recorded at or after this ISO time (UTC if no zone)"
    )
    audit.add_argument(
        "--until", default=None, help="only events recorded before this ISO time (UTC if no zone)"
    )
    audit.add_argument("--last", type=int, default=None, help="only the last N matching events")
    audit.set_defaults(run=_audit)
