"""The list of cases: one (workload, system, backend) each, with its set-up, timed part and tear-down.

Cases of one workload sit next to each other (eventcore-lab, then the peer, then the baseline), and the
runner goes through the whole list once per repeat, so each pair runs back to back under the same load.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eventcore_lab import MemoryStore
from eventcore_lab.stores.bulk import write_parquet

from . import baselines, ours, peer, reads, replay
from .harness import Sample

OURS, PEER, BASELINE = "eventcore-lab", "eventsourcing", "baseline"


@dataclass(frozen=True)
class Sizes:
    """How much work each case does; ``quick`` shrinks everything to a smoke run of seconds."""

    commands: int = 5000  # single-stream and hot-read commands, in memory
    transfers: int = 3000
    accounts: int = 1000
    warmup: int = 200
    pg_commands: int = 1500
    pg_peer_commands: int = 600
    duckdb_commands: int = 400
    client_counts: tuple[int, ...] = (1, 8, 32)
    client_total: int = 3200  # operations per client case, split among the clients
    pg_client_total: int = 1600
    pg_peer_client_total: int = 320
    duckdb_client_total: int = 3200
    bulk_events: int = 100_000
    peer_bulk_events: int = 20_000
    replay_events: int = 1_000_000
    peer_replay_events: int = 100_000
    pg_read_events: int = 100_000  # read_all_pages on PostgreSQL: the first events of the replay history
    rss_events: int = 1_000_000

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            commands=60,
            transfers=40,
            accounts=20,
            warmup=5,
            pg_commands=20,
            pg_peer_commands=10,
            duckdb_commands=10,
            client_total=64,
            pg_client_total=64,
            pg_peer_client_total=32,
            duckdb_client_total=64,
            bulk_events=500,
            peer_bulk_events=200,
            replay_events=2000,
            peer_replay_events=500,
            pg_read_events=1000,
            rss_events=2000,
        )


@dataclass
class Case:
    workload: str
    system: str
    backend: str
    unit: str
    run: Callable[[str], Sample]  # the tag of this repeat -> one timed sample
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.workload}/{self.system}/{self.backend}"


class Backends:
    """Opens fresh stores (and peer applications) for each case, and cleans up after them."""

    def __init__(self, dsn: str | None, workdir: Path) -> None:
        self.dsn = dsn
        self.workdir = workdir
        self.pg = None
        if dsn:
            from .environment import pg_settings

            self.pg = pg_settings(dsn)
        self.available: dict[str, str] = {"memory": "ok"}
        for name in ("duckdb", "postgres"):
            self.available[name] = self._check(name)

    def _check(self, name: str) -> str:
        if name == "postgres" and not self.dsn:
            return "no PostgreSQL server found"
        try:
            if name == "duckdb":
                from eventcore_lab.stores.duckdb import DuckDBStore  # noqa: F401
            else:
                from eventcore_lab.stores.postgres import PostgresStore  # noqa: F401
        except ImportError as exc:
            return f"store module not importable: {exc}"
        return "ok"

    @contextmanager
    def store(self, backend: str) -> Iterator[Any]:
        if backend == "memory":
            yield MemoryStore()
        elif backend == "duckdb":
            from eventcore_lab.stores.duckdb import DuckDBStore

            path = self.workdir / f"bench-{uuid.uuid4().hex[:8]}.duckdb"
            store = DuckDBStore(path, show_progress=False)
            try:
                yield store
            finally:
                store.close()
                for candidate in (path, Path(f"{path}.wal")):
                    candidate.unlink(missing_ok=True)
        elif backend == "postgres":
            from eventcore_lab.stores.postgres import PostgresStore

            with self.schema() as schema:
                store = PostgresStore(self.dsn, schema=schema, pool_max=40, cache_events=100_000)
                try:
                    yield store
                finally:
                    store.close()
        else:
            raise ValueError(backend)

    @contextmanager
    def schema(self) -> Iterator[str]:
        """A fresh PostgreSQL schema, dropped afterwards, so runs never see each other's rows."""
        import psycopg

        name = f"bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{name}"')
        try:
            yield name
        finally:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{name}" CASCADE')

    @contextmanager
    def peer_app(self, backend: str) -> Iterator[Any]:
        if backend == "popo":
            with peer.application("popo") as app:
                yield app
        else:
            with self.schema() as schema, peer.application("postgres", self.pg, schema) as app:
                yield app

    @contextmanager
    def tempdir(self) -> Iterator[Path]:
        path = Path(tempfile.mkdtemp(dir=self.workdir))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)


def build_cases(b: Backends, s: Sizes) -> list[Case]:
    """Every case this machine can run, grouped by workload (ours, peer, baseline)."""
    cases: list[Case] = []
    has = {name for name, status in b.available.items() if status == "ok"}
    w = s.warmup

    def add(
        workload: str, system: str, backend: str, unit: str, run: Callable[[str], Sample], note: str = ""
    ) -> None:
        cases.append(Case(workload, system, backend, unit, run, note))

    # -- commands, one client -------------------------------------------------------------------------
    def with_store(backend: str, fn: Callable[..., Sample], *args: Any) -> Callable[[str], Sample]:
        def run(tag: str) -> Sample:
            with b.store(backend) as store:
                return fn(store, tag, *args)

        return run

    def with_peer(backend: str, fn: Callable[..., Sample], *args: Any) -> Callable[[str], Sample]:
        def run(tag: str) -> Sample:
            with b.peer_app(backend) as app:
                return fn(app, *args)

        return run

    sized = {
        "memory": (s.commands, s.transfers),
        "duckdb": (s.duckdb_commands, s.duckdb_commands),
        "postgres": (s.pg_commands, s.pg_commands),
    }
    peer_of = {
        "memory": ("popo", s.commands, s.transfers),
        "postgres": ("postgres", s.pg_peer_commands, s.pg_peer_commands),
    }
    for backend in ("memory", "duckdb", "postgres"):
        if backend not in has:
            continue
        n, t = sized[backend]
        peer_backend, pn, pt = peer_of.get(backend, (None, 0, 0))
        # (workload, our function, our count, peer function, peer count, extra arguments)
        pairs = [
            ("single_stream_create", ours.single_stream_create, n, peer.create, pn, ()),
            ("single_stream_update", ours.single_stream_update, n, peer.update, pn, (s.accounts,)),
            ("two_stream_transfer", ours.two_stream_transfer, t, peer.transfer, pt, (s.accounts,)),
            ("hot_read", ours.hot_read, n, peer.hot_read, pn, (s.accounts,)),
        ]
        for workload, our_fn, count, peer_fn, peer_count, extra in pairs:
            add(workload, OURS, backend, "commands/s", with_store(backend, our_fn, count, w, *extra))
            if peer_backend:
                add(
                    workload,
                    PEER,
                    peer_backend,
                    "commands/s",
                    with_peer(peer_backend, peer_fn, peer_count, w, *extra),
                )
        if backend == "postgres":
            add(
                "single_stream_update",
                BASELINE,
                "postgres",
                "transactions/s",
                lambda tag: _in_schema(b, baselines.pg_insert, s.pg_commands, w),
                "bare one-row INSERT transaction (autocommit) over one psycopg connection",
            )
        if backend == "duckdb":
            add(
                "single_stream_update",
                BASELINE,
                "duckdb",
                "transactions/s",
                lambda tag: _in_dir(b, baselines.duckdb_insert, s.duckdb_commands, w),
                "bare one-row INSERT transaction into a DuckDB file",
            )

    # -- concurrent clients ---------------------------------------------------------------------------
    client_kind = {"memory": "update", "duckdb": "update", "postgres": "transfer"}
    totals = {"memory": s.client_total, "duckdb": s.duckdb_client_total, "postgres": s.pg_client_total}
    for backend in ("memory", "duckdb", "postgres"):
        if backend not in has:
            continue
        kind = client_kind[backend]
        for n_clients in s.client_counts:
            per = max(1, totals[backend] // n_clients)
            add(
                f"clients_{kind}_{n_clients}",
                OURS,
                backend,
                "commands/s",
                with_store(backend, ours.clients, kind, n_clients, per, max(2, s.accounts // 20)),
            )
            if backend == "postgres":
                pper = max(1, s.pg_peer_client_total // n_clients)
                add(
                    f"clients_{kind}_{n_clients}",
                    PEER,
                    "postgres",
                    "commands/s",
                    with_peer("postgres", peer.clients, kind, n_clients, pper, max(2, s.accounts // 20)),
                )

    # -- bulk import ----------------------------------------------------------------------------------
    history: dict[str, Any] = {}

    def events() -> Any:
        if "events" not in history:
            history["events"] = ours.make_history(s.bulk_events, 1000)
        return history["events"]

    for backend in ("memory", "duckdb", "postgres"):
        if backend in has:
            add(
                "bulk_import",
                OURS,
                backend,
                "events/s",
                with_store(backend, lambda st, tag: ours.bulk_import(st, events())),
            )
    if "duckdb" in has:

        def duckdb_file_import(tag: str) -> Sample:
            with b.tempdir() as directory, b.store("duckdb") as store:
                path = directory / "history.parquet"
                write_parquet(events(), path, progress=False)
                return ours.bulk_import_file(store, path)

        add(
            "bulk_import_file",
            OURS,
            "duckdb",
            "events/s",
            duckdb_file_import,
            "DuckDBStore.import_file of a Parquet export of the same events",
        )
    for peer_backend in ("popo", "postgres") if "postgres" in has else ("popo",):

        def peer_bulk(tag: str, pb: str = peer_backend) -> Sample:
            with b.peer_app(pb) as app:
                stored = peer.stored_history(app, s.peer_bulk_events, 1000)
                return peer.bulk_insert(app, stored)

        add(
            "bulk_import",
            PEER,
            peer_backend,
            "events/s",
            peer_bulk,
            "one insert_events call (one transaction)",
        )
    if "postgres" in has:
        add(
            "bulk_import",
            BASELINE,
            "postgres",
            "rows/s",
            lambda tag: _in_schema(b, baselines.pg_copy, s.bulk_events),
            "bare COPY of the same number of rows",
        )
    add(
        "bulk_import",
        BASELINE,
        "duckdb",
        "rows/s",
        lambda tag: _in_dir(b, baselines.duckdb_arrow, s.bulk_events),
        "bare Arrow insert of the same number of rows",
    )
    return cases


def _in_schema(b: Backends, fn: Callable[..., Sample], *args: Any) -> Sample:
    with b.schema() as schema:
        return fn(b.dsn, schema, *args)


def _in_dir(b: Backends, fn: Callable[..., Sample], *args: Any) -> Sample:
    with b.tempdir() as directory:
        return fn(directory, *args)


# -- replay: one big history built once, replayed each repeat ---------------------------------------------


class ReplayFixture:
    """A memory store (and a DuckDB store, a peer POPO application) holding the replay history."""

    def __init__(self, b: Backends, s: Sizes) -> None:
        self.b, self.s = b, s
        self._memory: Any = None
        self._duckdb: Any = None
        self._peer: Any = None
        self._postgres: Any = None
        self._bare_duckdb: Path | None = None
        self._closers: list[Callable[[], None]] = []
        self.expected: dict[str, int] | None = None

    def memory(self) -> Any:
        if self._memory is None:
            self._memory = MemoryStore()
            self._memory.import_events(
                ours.make_history(self.s.replay_events, _streams(self.s.replay_events))
            )
        return self._memory

    def duckdb(self) -> Any:
        if self._duckdb is None:
            from eventcore_lab.stores.duckdb import DuckDBStore

            path = self.b.workdir / f"replay-{uuid.uuid4().hex[:8]}.duckdb"
            store = DuckDBStore(path, show_progress=False)
            store.import_events(self.memory().read_all())
            self._duckdb = store
            self._closers.append(store.close)
        return self._duckdb

    def postgres(self) -> Any:
        """A PostgreSQL store holding the first ``pg_read_events`` events of the history."""
        if self._postgres is None:
            from eventcore_lab.stores.postgres import PostgresStore

            schema = self.b.schema()
            name = schema.__enter__()
            self._closers.append(lambda: schema.__exit__(None, None, None))
            store = PostgresStore(self.b.dsn, schema=name)
            store.import_events(self.memory().read_all(limit=self.s.pg_read_events))
            self._postgres = store
            self._closers.append(store.close)
        return self._postgres

    def bare_duckdb(self) -> Path:
        """A bare DuckDB file holding the history in the DuckDB store's ``events`` table."""
        if self._bare_duckdb is None:
            parquet = self.b.workdir / f"replay-{uuid.uuid4().hex[:8]}.parquet"
            write_parquet(self.memory().read_all(), parquet, progress=False)
            self._bare_duckdb = self.b.workdir / f"bare-{uuid.uuid4().hex[:8]}.duckdb"
            reads.duckdb_table(parquet, self._bare_duckdb)
            parquet.unlink()
        return self._bare_duckdb

    def peer(self) -> Any:
        if self._peer is None:
            context = peer.application("popo")
            app = context.__enter__()
            count = self.s.peer_replay_events
            app.recorder.insert_events(peer.stored_history(app, count, _streams(count)))
            self._peer = app
            self._closers.append(lambda: context.__exit__(None, None, None))
        return self._peer

    def check(self, result: dict[str, int]) -> None:
        """Every replay path over the same history must produce the same balances."""
        if self.expected is None:
            self.expected = result
        elif result != self.expected:
            raise AssertionError("replay paths disagree on the read model")

    def close(self) -> None:
        for close in reversed(self._closers):  # a store closes before its schema is dropped
            close()


def _streams(events: int) -> int:
    """Streams of a replay history: 100 events each, like long-lived accounts."""
    return max(1, events // 100)


def replay_cases(b: Backends, fixture: ReplayFixture) -> list[Case]:
    has = {name for name, status in b.available.items() if status == "ok"}

    def ours_run(
        source: Callable[[], Any], fn: Callable[[Any], tuple[Sample, dict[str, int]]]
    ) -> Callable[[str], Sample]:
        def run(tag: str) -> Sample:
            sample, result = fn(source())
            fixture.check({k: int(v) for k, v in result.items()})
            return sample

        return run

    cases = [
        Case(
            "replay_per_event",
            OURS,
            "memory",
            "events/s",
            ours_run(fixture.memory, replay.per_event),
            "Projection with @handles methods, driven by ProjectionRunner (batches of 10,000)",
        ),
        Case(
            "replay_per_event",
            PEER,
            "popo",
            "events/s",
            lambda tag: peer.replay(fixture.peer()),
            "select_notifications pages + mapper.to_domain_event + one handler per event",
        ),
        Case(
            "replay_vectorised",
            OURS,
            "memory",
            "events/s",
            ours_run(fixture.memory, replay.vectorised_pandas),
            "events_frame(store) + pandas groupby, end to end",
        ),
    ]
    note = f"read_all(after=, limit={reads.PAGE}) page after page: StoredEvents with decoded payloads"
    cases.append(
        Case(
            "read_all_pages", OURS, "memory", "events/s", lambda tag: reads.read_pages(fixture.memory()), note
        )
    )
    if "duckdb" in has:
        cases += [
            Case(
                "read_all_pages",
                OURS,
                "duckdb",
                "events/s",
                lambda tag: reads.read_pages(fixture.duckdb()),
                note,
            ),
            Case(
                "read_all_pages",
                BASELINE,
                "duckdb",
                "rows/s",
                lambda tag: reads.duckdb_fetch_pages(fixture.bare_duckdb()),
                "bare fetchall of the same rows as tuples, same pages",
            ),
        ]
    if "postgres" in has:
        cases += [
            Case(
                "read_all_pages",
                OURS,
                "postgres",
                "events/s",
                lambda tag: reads.read_pages(fixture.postgres()),
                note,
            ),
            Case(
                "read_all_pages",
                BASELINE,
                "postgres",
                "rows/s",
                lambda tag: reads.pg_fetch_pages(fixture.b.dsn, fixture.postgres().schema),
                "bare psycopg fetchall of the same rows as tuples, same pages",
            ),
        ]
    cases.append(
        Case(
            "read_all_pages",
            PEER,
            "popo",
            "events/s",
            lambda tag: reads.peer_read_pages(fixture.peer()),
            "select_notifications pages + mapper.to_domain_event",
        )
    )
    if "duckdb" in has:
        cases.append(
            Case(
                "replay_vectorised",
                OURS,
                "duckdb",
                "events/s",
                ours_run(fixture.duckdb, replay.vectorised_duckdb),
                "one DuckDB SQL aggregate over the events table",
            )
        )
    return cases
