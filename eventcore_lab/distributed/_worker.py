"""Competing consumers: worker processes that share a durable read model by partition leases.

Each worker heartbeats its leases, claims a fair share of the partitions (or all of them in ``leader``
mode, which leaves the other workers standing by), reads the log after the lowest checkpoint of what it
holds, and applies the events of its partitions in one transaction with their checkpoints, after
checking under row locks that its fencing tokens are still current. A killed worker's partitions expire
after ``lease_seconds`` and are claimed by the others at their next heartbeat, so a takeover takes at most
``lease_seconds + heartbeat`` seconds plus one batch.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from ..core.errors import InvalidFormat
from ..stores.base import EventStore
from ._model import DurableReadModel
from ._partitions import partition_of
from ._tables import TableProjection, check_declaration


class PartitionWorker:
    """One competing consumer of ``model``; run it with :meth:`run` (until stopped) or step by step.

    ``leader=True`` is the manual's leader mode: the worker takes every partition or stands by.
    Use a separate worker (and so a separate database connection) per process or thread.
    """

    def __init__(
        self,
        store: EventStore,
        model: DurableReadModel,
        projection: TableProjection | None = None,
        *,
        owner: str | None = None,
        leader: bool = False,
        lease_seconds: float = 5.0,
        heartbeat: float | None = None,
        batch_size: int = 500,
        poll_interval: float = 0.1,
    ) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise InvalidFormat(f"batch_size must be an int >= 1, got {batch_size!r}")
        if not lease_seconds > 0:
            raise InvalidFormat(f"lease_seconds must be > 0, got {lease_seconds!r}")
        from ._leases import Leases

        self.store = store
        self.model = model
        self.projection = check_declaration(projection or model.projection)
        self.owner = owner or f"worker-{uuid.uuid4().hex[:12]}"
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.heartbeat = heartbeat if heartbeat is not None else lease_seconds / 3
        self._conn = model.connect()
        self.leases = Leases(model.names, self.owner, seconds=lease_seconds, leader=leader)
        self._refreshed = float("-inf")
        self._seen = 0
        #: events applied, and events dead-lettered, by this worker
        self.applied = 0
        self.dead = 0

    def __repr__(self) -> str:
        return f"<PartitionWorker {self.owner} of {self.model.name!r}, partitions {sorted(self.leases.held)}>"

    @property
    def partitions(self) -> list[int]:
        """The partitions this worker currently holds."""
        return sorted(self.leases.held)

    def refresh(self) -> list[int]:
        """Heartbeat and rebalance now (``step`` does it every ``heartbeat`` seconds)."""
        self.leases.refresh(self._conn, self.model.partitions)
        self._refreshed = time.monotonic()
        return self.partitions

    def step(self) -> int:
        """Read one batch after the lowest checkpoint held and apply this worker's share; return the
        number of events read (0: nothing to do, or no partitions held)."""
        if time.monotonic() - self._refreshed >= self.heartbeat:
            self.refresh()
        if not self.leases.held:
            return 0
        model, held = self.model, sorted(self.leases.held)
        generation = model.live_generation()
        start = min(model.checkpoints(generation)[p] for p in held)
        events = self.store.read_all(after=start, limit=self.batch_size)
        if not events:
            self._seen = max(self._seen, start)
            return 0
        with self._conn.transaction():
            generation = model._lock_model(self._conn, share=True, projection=self.projection)
            kept = self.leases.fence(self._conn)
            rows = self._conn.execute(
                f"SELECT partition, position FROM {model.names.checkpoints} "
                "WHERE name = %s AND generation = %s AND partition = ANY(%s) ORDER BY partition FOR UPDATE",
                (model.name, generation, kept),
            ).fetchall()
            checkpoint = {int(p): int(pos) for p, pos in rows if int(pos) >= start}
            count = model.partitions
            mine = [
                e
                for e in events
                if (p := partition_of(e.stream_id, count)) in checkpoint and e.position > checkpoint[p]
            ]
            outcome = model.apply_batch(self._conn, self.projection, generation, mine) if mine else None
            model.save_checkpoints(self._conn, generation, sorted(checkpoint), events[-1].position)
        if outcome is not None:
            self.applied += outcome.applied
            self.dead += outcome.dead
        self._seen = max(self._seen, events[-1].position)
        return len(events)

    def run(self, *, stop: threading.Event | None = None, until: float | None = None) -> None:
        """Work until ``stop`` is set (or the monotonic time ``until``), waiting for events when idle."""
        stop = stop or threading.Event()
        while not stop.is_set() and (until is None or time.monotonic() < until):
            if not self.step():
                wait = min(self.poll_interval, self.heartbeat)
                if self.leases.held:
                    self.store.wait_for_events(self._seen, wait)
                else:
                    stop.wait(wait)

    def run_until_caught_up(self, target: int | None = None, *, timeout: float = 60.0) -> int:
        """Step until every partition of the model reached ``target`` (default: the head now); return
        the events applied. Alone, a worker holds every partition; with others, they share the work."""
        target = self.store.head() if target is None else target
        before = self.applied
        deadline = time.monotonic() + timeout
        while self.model.position() < target:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.model.name!r} did not reach position {target} within {timeout} s")
            if not self.step():
                time.sleep(min(self.poll_interval, 0.05))
        return self.applied - before

    def close(self, *, release: bool = True) -> None:
        """Stop being a member; ``release`` gives the leases back at once instead of letting them expire."""
        try:
            if release and not self._conn.closed:
                self.leases.release_all(self._conn)
        finally:
            self._conn.close()

    def __enter__(self) -> PartitionWorker:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
