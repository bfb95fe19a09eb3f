"""Partition leases in PostgreSQL: heartbeats, expiry, fencing tokens, and a fair share per worker.

A lease row per partition says who owns it, until when, and with which token. Claiming a free or expired
partition bumps its token, so a worker that was merely slow (not dead) finds a different token when it
next tries to commit, and gives the partition up instead of writing over the new owner's work. Time is
the database's ``now()``, so machines with skewed clocks still agree on expiry.
"""

from __future__ import annotations

import math
from typing import Any

from ._catalog import Names


class Leases:
    """The lease operations of one worker (``owner``) on one read model."""

    def __init__(self, names: Names, owner: str, *, seconds: float, leader: bool = False) -> None:
        self.names = names
        self.owner = owner
        self.seconds = seconds
        self.leader = leader
        #: partition -> fencing token of the leases this worker believes it holds
        self.held: dict[int, int] = {}

    def refresh(self, conn: Any, partitions: int) -> dict[int, int]:
        """Heartbeat, renew what is still ours, claim up to a fair share, release what is above it."""
        n, ttl = self.names, self.seconds
        with conn.transaction():
            conn.execute(
                f"INSERT INTO {n.members} (name, owner, seen_at, expires_at) "
                "VALUES (%s, %s, now(), now() + make_interval(secs => %s)) "
                "ON CONFLICT (name, owner) DO UPDATE SET seen_at = now(), expires_at = excluded.expires_at",
                (n.name, self.owner, ttl),
            )
            renewed = conn.execute(
                f"UPDATE {n.leases} SET expires_at = now() + make_interval(secs => %s) "
                "WHERE name = %s AND owner = %s RETURNING partition, token",
                (ttl, n.name, self.owner),
            ).fetchall()
            self.held = {int(p): int(t) for p, t in renewed}
            share = partitions if self.leader else self._fair_share(conn, partitions)
            if len(self.held) < share:
                claimed = conn.execute(
                    f"UPDATE {n.leases} SET owner = %s, token = token + 1, claimed_at = now(), "
                    "expires_at = now() + make_interval(secs => %s) "
                    f"WHERE name = %s AND partition IN (SELECT partition FROM {n.leases} "
                    "WHERE name = %s AND (owner IS NULL OR expires_at < now()) ORDER BY partition "
                    "LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING partition, token",
                    (self.owner, ttl, n.name, n.name, share - len(self.held)),
                ).fetchall()
                self.held.update({int(p): int(t) for p, t in claimed})
            elif len(self.held) > share:
                extra = sorted(self.held)[share:]
                self._release(conn, extra)
        return dict(self.held)

    def _fair_share(self, conn: Any, partitions: int) -> int:
        row = conn.execute(
            f"SELECT count(*) FROM {self.names.members} WHERE name = %s AND expires_at > now()",
            (self.names.name,),
        ).fetchone()
        members = max(int(row[0]) if row else 1, 1)
        return math.ceil(partitions / members)

    def fence(self, conn: Any) -> list[int]:
        """Inside the caller's transaction: lock our lease rows and keep those whose token is unchanged.

        The row locks make a takeover wait until this transaction ends, so a partition cannot change
        hands between this check and the commit.
        """
        if not self.held:
            return []
        rows = conn.execute(
            f"SELECT partition, owner, token FROM {self.names.leases} "
            "WHERE name = %s AND partition = ANY(%s) ORDER BY partition FOR UPDATE",
            (self.names.name, sorted(self.held)),
        ).fetchall()
        kept = [int(p) for p, owner, token in rows if owner == self.owner and int(token) == self.held[int(p)]]
        for lost in set(self.held) - set(kept):
            del self.held[lost]
        return kept

    def _release(self, conn: Any, partitions: list[int]) -> None:
        conn.execute(
            f"UPDATE {self.names.leases} SET owner = NULL, expires_at = '-infinity' "
            "WHERE name = %s AND owner = %s AND partition = ANY(%s)",
            (self.names.name, self.owner, partitions),
        )
        for partition in partitions:
            self.held.pop(partition, None)

    def release_all(self, conn: Any) -> None:
        """Give every lease back and leave the member list (a clean shutdown: no waiting for expiry)."""
        with conn.transaction():
            self._release(conn, list(self.held))
            conn.execute(
                f"DELETE FROM {self.names.members} WHERE name = %s AND owner = %s",
                (self.names.name, self.owner),
            )
