"""Integrity of a live store: versions gap-free, positions increasing, ids unique, payloads decodable."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..core.errors import EventCoreError
from ..stores.bulk import progress_bar


@dataclass
class IntegrityReport:
    """What :func:`check_integrity` found: ``ok`` and the problems (at most ``limit`` are kept)."""

    events: int = 0
    streams: int = 0
    head: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events": self.events,
            "streams": self.streams,
            "head": self.head,
            "problems": list(self.problems),
        }


def check_integrity(
    store: Any, *, page: int = 10_000, limit: int = 20, progress: bool | None = None
) -> IntegrityReport:
    """Read the whole log once, page by page, and report every broken invariant (up to ``limit``).

    A payload that cannot be decoded makes the read itself fail: that is reported as a problem at the
    position where reading stopped.
    """
    report = IntegrityReport(head=int(store.head()))
    versions: dict[str, int] = {}
    ids: set[int] = set()
    last = 0

    def problem(text: str) -> None:
        if len(report.problems) < limit:
            report.problems.append(text)

    with progress_bar(total=report.head, desc="check", progress=progress) as bar:
        while True:
            try:
                batch = store.read_all(after=last, limit=page)
            except EventCoreError as exc:
                problem(f"reading after position {last} failed: {exc}")
                break
            if not batch:
                break
            for event in batch:
                if event.position <= last:
                    problem(f"position {event.position} does not increase (after {last})")
                last = event.position
                expected = versions.get(event.stream_id, 0) + 1
                if event.version != expected:
                    problem(
                        f"stream {event.stream_id!r}: version {event.version} at position {event.position}, "
                        f"expected {expected}"
                    )
                versions[event.stream_id] = event.version
                if event.event_id.int in ids:
                    problem(f"event id {event.event_id} is used twice (again at position {event.position})")
                ids.add(event.event_id.int)
                if type(event.payload).__name__ == "UnknownEvent":
                    problem(f"position {event.position}: event type {event.event_type!r} is not registered")
            report.events += len(batch)
            bar.update(len(batch))
    report.streams = len(versions)
    if last < report.head:
        problem(f"the log ends at position {last} but the head is {report.head}")
    return report
