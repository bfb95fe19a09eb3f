"""The same workloads on the ``eventsourcing`` library (the peer), pinned by the ``bench`` extra.

"The same work" for each pair (see ``domain.py``):

- create: ``Account(owner)`` + ``credit(1)`` + ``app.save(a)``: a new aggregate, two events, one atomic write;
- update: ``repository.get`` (replays the aggregate) + ``credit(1)`` + ``save``;
- transfer: two ``repository.get`` + debit/credit + ``app.save(a, b)``, one atomic write of two events;
- hot read: ``repository.get`` of the account and of a 50-event ``Rates`` aggregate + credit + save of
  the account only. eventsourcing does not check the version of an aggregate it only read, so it does
  less work here than eventcore-lab, which guards the rates stream too.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from .harness import Sample, time_loop, time_once, time_threads

HOT_STREAM_EVENTS = 50


def es_version() -> str:
    from importlib.metadata import version

    return version("eventsourcing")


@contextmanager
def application(backend: str, pg: dict[str, str] | None = None, schema: str | None = None) -> Iterator[Any]:
    """A fresh ``Bank`` application on POPO (in memory) or PostgreSQL (own schema, dropped after)."""
    from .peer_domain import Bank

    if backend == "popo":
        env = {"PERSISTENCE_MODULE": "eventsourcing.popo"}
    elif backend == "postgres":
        if pg is None or schema is None:
            raise ValueError("the PostgreSQL peer needs connection settings and a schema")
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": pg["dbname"],
            "POSTGRES_HOST": pg["host"],
            "POSTGRES_PORT": pg["port"],
            "POSTGRES_USER": pg["user"],
            "POSTGRES_PASSWORD": pg.get("password", ""),
            "POSTGRES_SCHEMA": schema,
            # the faster of its two insert paths (one round trip through a stored function)
            "POSTGRES_ENABLE_DB_FUNCTIONS": "y",
            "POSTGRES_POOL_SIZE": "8",
        }
    else:
        raise ValueError(f"unknown peer backend {backend!r}")
    app = Bank(env=env)
    try:
        yield app
    finally:
        app.close()


def open_accounts(app: Any, count: int) -> list[Any]:
    from .peer_domain import Account

    ids = []
    for _ in range(count):
        account = Account("bench")
        account.credit(1_000_000)
        app.save(account)
        ids.append(account.id)
    return ids


def create(app: Any, count: int, warmup: int) -> Sample:
    from .peer_domain import Account

    def op(i: int) -> None:
        account = Account("bench")
        account.credit(1)
        app.save(account)

    return time_loop(op, count, warmup=warmup)


def _update_op(app: Any, ids: list[Any]) -> Callable[[int], None]:
    get, n = app.repository.get, len(ids)

    def op(i: int) -> None:
        account = get(ids[i % n])
        account.credit(1)
        app.save(account)

    return op


def update(app: Any, count: int, warmup: int, accounts: int) -> Sample:
    return time_loop(_update_op(app, open_accounts(app, accounts)), count, warmup=warmup)


def _transfer_op(app: Any, ids: list[Any]) -> Callable[[int], None]:
    get, n = app.repository.get, len(ids)

    def op(i: int) -> None:
        k = (2 * i + 1) % n
        source, target = get(ids[k]), get(ids[k - 1])
        if source.balance < 1:
            raise ValueError("insufficient funds")
        source.debit(1)
        target.credit(1)
        app.save(source, target)

    return op


def transfer(app: Any, count: int, warmup: int, accounts: int) -> Sample:
    return time_loop(_transfer_op(app, open_accounts(app, accounts)), count, warmup=warmup)


def hot_read(app: Any, count: int, warmup: int, accounts: int) -> Sample:
    from .peer_domain import Rates

    ids = open_accounts(app, accounts)
    rates = Rates()
    for r in range(HOT_STREAM_EVENTS - 1):  # the creation event counts as the first
        rates.set_rate(r % 5 + 1)
    app.save(rates)
    get = app.repository.get

    def op(i: int) -> None:
        account, current = get(ids[i % accounts]), get(rates.id)
        account.credit(1 * current.rate)
        app.save(account)

    return time_loop(op, count, warmup=warmup)


def clients(app: Any, kind: str, clients: int, count: int, accounts: int) -> Sample:
    def make_op(client: int) -> Callable[[int], None]:
        ids = open_accounts(app, accounts)
        return _transfer_op(app, ids) if kind == "transfer" else _update_op(app, ids)

    return time_threads(make_op, clients, count)


def stored_history(app: Any, count: int, streams: int) -> list[Any]:
    """``count`` of the peer's stored events over ``streams`` aggregates (opened, then credits)."""
    from .peer_domain import Account

    accounts = [Account("bench") for _ in range(streams)]
    for i in range(count - streams):
        accounts[i % streams].credit(i % 100 + 1)
    pending = [e for a in accounts for e in a.collect_events()]
    # interleave streams like the eventcore-lab history: event i belongs to aggregate i % streams
    by_version = sorted(pending, key=lambda e: (e.originator_version, str(e.originator_id)))
    return [app.mapper.to_stored_event(e) for e in by_version]


def bulk_insert(app: Any, stored: list[Any]) -> Sample:
    """The peer's nearest bulk path: one ``insert_events`` call (one transaction) with every event."""
    recorder = app.recorder

    def op() -> int:
        recorder.insert_events(stored)
        return len(stored)

    return time_once(op)


def replay(app: Any, batch: int = 1000) -> Sample:
    """Replay the whole application log into a dict of balances, as its projection runners do:
    notifications in pages, each mapped back to a domain event, then one handler call per event."""
    recorder, to_domain = app.recorder, app.mapper.to_domain_event
    balances: dict[uuid.UUID, int] = {}
    from .peer_domain import Account

    credited, opened = Account.Credited, Account.Opened

    def op() -> int:
        seen, start = 0, 1
        while True:
            page = recorder.select_notifications(start, batch)
            if not page:
                return seen
            for notification in page:
                event = to_domain(notification)
                if type(event) is credited:
                    balances[event.originator_id] = balances.get(event.originator_id, 0) + event.amount
                elif type(event) is opened:
                    balances[event.originator_id] = 0
            seen += len(page)
            start = page[-1].id + 1

    return time_once(op)
