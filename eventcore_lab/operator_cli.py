"""The operator's subcommands of ``eventcore-lab``: migrate, health, config, streams, events, backup,
restore, verify, check, stats, doctor and projections.

Every command takes ``--store`` (``memory``, ``memory:FILE`` for an in-memory store kept in an event
file, a DuckDB path, or a ``postgresql://`` URL; default from the configuration), ``--import MODULE``
(repeatable: modules whose event classes must be registered to decode payloads) and ``--json``.

Exit codes scripts can rely on: 0 success (healthy, verified); 1 an error (the message says what to
do); 2 wrong usage; 3 a problem was found (unhealthy store, failed verification, broken integrity);
4 degraded (health only).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from .config import load_config

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_PROBLEM, EXIT_DEGRADED = 0, 1, 2, 3, 4


# -- shared options and store opening ----------------------------------------------------------------


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--store", default=None, help="memory, memory:FILE, a DuckDB file or a postgresql:// URL"
    )
    common.add_argument("--schema", default=None, help="PostgreSQL schema (default: from the configuration)")
    common.add_argument(
        "--config", default=None, help="a TOML configuration file (default: $EVENTCORE_CONFIG)"
    )
    common.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE first, so that its event classes are registered (repeatable)",
    )
    common.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    return common


def _config(args: argparse.Namespace) -> Any:
    return load_config(
        args.config, overrides={"store.url": args.store, "database.schema": getattr(args, "schema", None)}
    )


def _load_modules(args: argparse.Namespace) -> None:
    for name in args.imports:
        try:
            if name.endswith(".py"):
                spec = importlib.util.spec_from_file_location(Path(name).stem, name)
                if spec is None or spec.loader is None:
                    raise ImportError(name)
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
            else:
                importlib.import_module(name)
        except ImportError as exc:
            raise SystemExit(f"error: cannot import {name!r}: {exc}; check --import and PYTHONPATH") from None


class _FileBackedMemory:
    """``memory:FILE``: a MemoryStore loaded from an event file, written back when a command changed it."""

    def __init__(self, path: Path) -> None:
        from .stores import MemoryStore
        from .stores.bulk import read_events

        self.path = path
        self.store = MemoryStore()
        if path.exists():
            self.store.import_events(read_events(path))
        self.loaded = self.store.head()

    def save(self) -> None:
        from .stores.bulk import iter_store, write_events

        if self.store.head() == self.loaded and self.path.exists():
            return
        partial = self.path.with_name(self.path.name + ".partial" + "".join(self.path.suffixes))
        write_events(_plain_ids(iter_store(self.store)), partial, self.store.registry, progress=False)
        os.replace(partial, self.path)


def _plain_ids(events: Iterator[Any]) -> Iterator[Any]:
    """Events with plain ``str`` stream ids: the bulk writer cannot encode the ``StreamId`` subclass
    that the memory store keeps."""
    import msgspec

    for event in events:
        yield (
            event
            if type(event.stream_id) is str
            else msgspec.structs.replace(event, stream_id=str(event.stream_id))
        )


@contextmanager
def _opened(args: argparse.Namespace) -> Iterator[Any]:
    _load_modules(args)
    config = _config(args)
    url = config.store_url()
    if url.startswith("memory:"):
        backed = _FileBackedMemory(Path(url.removeprefix("memory:")))
        yield backed.store
        backed.save()
        return
    store = config.open_store()
    try:
        yield store
    finally:
        store.close()


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2, default=str) if args.json else text)


# -- commands ---------------------------------------------------------------------------------------


def _migrate(args: argparse.Namespace) -> int:
    with _opened(args) as store:
        migrate = getattr(store, "migrate", None)
        version = migrate() if callable(migrate) else None
        head = store.head()
    note = f"schema at version {version}" if version is not None else "nothing to migrate for this store"
    _emit(args, {"schema_version": version, "head": head}, f"{note}; head position {head}")
    return EXIT_OK


def _health(args: argparse.Namespace) -> int:
    from .health import check_health, check_store_url

    _load_modules(args)
    config = _config(args)
    url = config.store_url()
    if url.startswith(("postgresql://", "postgres://")):  # opening may fail: that is a finding, not an error
        timeout = args.timeout or config["database.connect_timeout"]
        report = check_store_url(url, schema=config["database.schema"], connect_timeout=timeout)
    else:
        with _opened(args) as store:
            report = check_health(store, **config.health_options())
    lines = [f"{report.status.upper()}"] + [f"  {c.name}: {c.status} - {c.details}" for c in report.checks]
    _emit(args, report.to_dict(), "\n".join(lines))
    return {"healthy": EXIT_OK, "degraded": EXIT_DEGRADED}.get(report.status, EXIT_PROBLEM)


def _show_config(args: argparse.Namespace) -> int:
    config = _config(args)
    rows = config.describe()
    if args.json:
        print(json.dumps({"options": rows, "unread_variables": list(config.unread)}, indent=2, default=str))
        return EXIT_OK
    width = max(len(r["key"]) for r in rows)
    for row in rows:
        print(f"{row['key']:<{width}}  {json.dumps(row['value'], default=str):<40} {row['source']}")
    for name in config.unread:
        print(f"warning: {name} is set but is not an eventcore-lab option (misspelt?)")
    return EXIT_OK


def _stream_versions(store: Any) -> dict[str, tuple[int, int, datetime]]:
    from .stores.bulk import iter_store

    streams: dict[str, tuple[int, int, datetime]] = {}
    for event in iter_store(store):
        streams[event.stream_id] = (event.version, event.position, event.recorded_at)
    return streams


def _streams_list(args: argparse.Namespace) -> int:
    with _opened(args) as store:
        streams = _stream_versions(store)
    rows = [
        {"stream_id": sid, "version": v, "last_position": p, "last_recorded_at": t.isoformat()}
        for sid, (v, p, t) in sorted(streams.items())
        if sid.startswith(args.prefix)
    ][: args.limit]
    _emit(args, rows, "\n".join(f"{r['stream_id']}  v{r['version']}  @{r['last_position']}" for r in rows))
    return EXIT_OK


def _event_dict(event: Any, registry: Any) -> dict[str, Any]:
    import msgspec

    return {
        "position": event.position,
        "stream_id": event.stream_id,
        "version": event.version,
        "event_type": event.event_type,
        "event_id": str(event.event_id),
        "recorded_at": event.recorded_at.isoformat(),
        "payload": registry.to_dict(event.payload),
        "metadata": msgspec.to_builtins(event.metadata),
    }


def _streams_show(args: argparse.Namespace) -> int:
    with _opened(args) as store:
        events = store.read_stream(args.stream_id)
        rows = [_event_dict(e, store.registry) for e in events]
    if not rows:
        print(
            f"error: stream {args.stream_id!r} has no events (see `eventcore-lab streams list`)",
            file=sys.stderr,
        )
        return EXIT_ERROR
    _emit(
        args,
        rows,
        "\n".join(
            f"v{r['version']} @{r['position']} {r['event_type']} {json.dumps(r['payload'])}" for r in rows
        ),
    )
    return EXIT_OK


def _events_tail(args: argparse.Namespace) -> int:
    shown = 0
    with _opened(args) as store:
        after = args.after if args.after is not None else max(store.head() - args.last, 0)
        with store.subscribe(after=after) as subscription:
            while args.limit is None or shown < args.limit:
                event = subscription.poll(timeout=0.5 if args.follow else 0.0)
                if event is None:
                    if args.follow:
                        continue
                    break
                if args.type and event.event_type not in args.type:
                    continue
                if args.stream_prefix and not event.stream_id.startswith(args.stream_prefix):
                    continue
                row = _event_dict(event, store.registry)
                if args.json:
                    print(json.dumps(row, default=str), flush=True)
                else:
                    print(
                        f"@{event.position} {event.stream_id} v{event.version} {event.event_type}", flush=True
                    )
                shown += 1
    return EXIT_OK


def _events_export(args: argparse.Namespace) -> int:
    from .stores.bulk import iter_store, write_events

    with _opened(args) as store:
        events = _plain_ids(iter_store(store, after=args.after))
        count = write_events(events, args.file, store.registry, progress=None)
    _emit(args, {"events": count, "file": args.file}, f"exported {count} events to {args.file}")
    return EXIT_OK


def _events_import(args: argparse.Namespace) -> int:
    from .stores.bulk import read_events

    with _opened(args) as store:
        count = store.import_events(read_events(args.file, store.registry))
    _emit(args, {"events": count, "file": args.file}, f"imported {count} events from {args.file}")
    return EXIT_OK


def _backup(args: argparse.Namespace) -> int:
    from .backup import backup, load_manifest

    after = args.after
    if args.incremental_from:
        after = load_manifest(args.incremental_from).last_position
    with _opened(args) as store:
        manifest = backup(store, args.directory, after=after or 0)
    _emit(
        args,
        {
            "directory": args.directory,
            "kind": manifest.kind,
            "events": manifest.event_count,
            "first_position": manifest.first_position,
            "last_position": manifest.last_position,
        },
        f"{manifest.kind} backup of {manifest.event_count} events (positions {manifest.first_position}-"
        f"{manifest.last_position}) written to {args.directory}",
    )
    return EXIT_OK


def _restore(args: argparse.Namespace) -> int:
    from .backup import restore

    until_time = datetime.fromisoformat(args.until_time) if args.until_time else None
    if until_time is not None and until_time.tzinfo is None:
        print("error: --until-time needs a time zone, e.g. 2026-01-31T12:00:00+00:00", file=sys.stderr)
        return EXIT_USAGE
    with _opened(args) as store:
        result = restore(store, args.directories, until_position=args.until_position, until_time=until_time)
    _emit(args, result.to_dict(), f"restored {result.events} events in {result.streams} streams")
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    from .backup import verify

    _load_modules(args)
    reports = [verify(d) for d in args.directories]
    text = "\n".join(
        f"{r.directory}: "
        + (f"OK, {r.events} events in {r.streams} streams" if r.ok else f"FAILED: {r.problem}")
        for r in reports
    )
    _emit(args, [r.to_dict() for r in reports], text)
    return EXIT_OK if all(r.ok for r in reports) else EXIT_PROBLEM


def _check(args: argparse.Namespace) -> int:
    from .backup import check_integrity

    with _opened(args) as store:
        report = check_integrity(store)
    text = f"{report.events} events in {report.streams} streams: " + (
        "integrity OK" if report.ok else "PROBLEMS\n" + "\n".join(f"  {p}" for p in report.problems)
    )
    _emit(args, report.to_dict(), text)
    return EXIT_OK if report.ok else EXIT_PROBLEM


def _stats(args: argparse.Namespace) -> int:
    from .stores.bulk import iter_store
    from .stores.filters import category_of

    by_type: Counter[str] = Counter()
    by_category: Counter[str] = Counter()
    by_stream: Counter[str] = Counter()
    by_day: Counter[str] = Counter()
    with _opened(args) as store:
        for event in iter_store(store):
            by_type[event.event_type] += 1
            by_category[category_of(event.stream_id)] += 1
            by_stream[event.stream_id] += 1
            by_day[event.recorded_at.date().isoformat()] += 1
    data = {
        "events": sum(by_type.values()),
        "streams": len(by_stream),
        "by_type": dict(by_type.most_common()),
        "by_category": dict(by_category.most_common()),
        "per_day": dict(sorted(by_day.items())),
        "hot_streams": dict(by_stream.most_common(args.top)),
    }
    lines = [f"{data['events']} events in {data['streams']} streams"]
    for title in ("by_type", "by_category", "per_day", "hot_streams"):
        lines.append(f"{title.replace('_', ' ')}:")
        lines += [f"  {k}: {v}" for k, v in data[title].items()]  # type: ignore[attr-defined]
    _emit(args, data, "\n".join(lines))
    return EXIT_OK


def _checkpoint_lag(store: Any, name: str) -> tuple[int, int, float]:
    """(checkpoint position, events behind, seconds the oldest unapplied event has waited)."""
    from .projections import checkpoints_for

    position = checkpoints_for(store).load(name)
    pending = store.read_all(after=position, limit=1)
    head = store.head()
    waited = (
        (datetime.now(pending[0].recorded_at.tzinfo) - pending[0].recorded_at).total_seconds()
        if pending
        else 0.0
    )
    return position, (head - position) if pending else 0, max(waited, 0.0)


def _projections_status(args: argparse.Namespace) -> int:
    config = _config(args)
    warning, critical = config["health.lag_warning"], config["health.lag_critical"]
    rows = []
    with _opened(args) as store:
        for name in args.names:
            position, behind, waited = _checkpoint_lag(store, name)
            status = "unhealthy" if waited > critical else "degraded" if waited > warning else "healthy"
            rows.append(
                {
                    "projection": name,
                    "checkpoint": position,
                    "behind": behind,
                    "waiting_seconds": waited,
                    "status": status,
                }
            )
    text = "\n".join(
        f"{r['projection']}: {r['status']}, checkpoint {r['checkpoint']}, {r['behind']} event(s) behind, "
        f"oldest waiting {r['waiting_seconds']:.1f} s"
        for r in rows
    )
    _emit(args, rows, text)
    worst = {r["status"] for r in rows}
    return EXIT_PROBLEM if "unhealthy" in worst else EXIT_DEGRADED if "degraded" in worst else EXIT_OK


def _factory(spec: str) -> Any:
    """``module:attribute`` (or ``file.py:attribute``) -> the callable that makes a fresh projection."""
    module_name, _, attribute = spec.partition(":")
    if not attribute:
        raise SystemExit(f"error: --factory {spec!r} must be MODULE:CALLABLE, e.g. myapp.views:Balances")
    if module_name.endswith(".py"):
        spec_ = importlib.util.spec_from_file_location(Path(module_name).stem, module_name)
        if spec_ is None or spec_.loader is None:
            raise SystemExit(f"error: cannot load {module_name!r}")
        module = importlib.util.module_from_spec(spec_)
        spec_.loader.exec_module(module)
    else:
        module = importlib.import_module(module_name)
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise SystemExit(f"error: {module_name} has no {attribute!r}") from None


def _projections_rebuild(args: argparse.Namespace) -> int:
    """Replay the whole log into a fresh projection whose ``apply`` keeps its own read model (a table,
    a file), then move its checkpoint to where the replay ended."""
    from .projections import ProjectionRunner, checkpoints_for

    make = _factory(args.factory)
    with _opened(args) as store:
        checkpoints = checkpoints_for(store)
        checkpoints.save(args.name, 0)
        runner = ProjectionRunner(store, make(), checkpoints=checkpoints, name=args.name, factory=make)
        applied = runner.run_until_caught_up(progress=None)
        position = runner.position
    _emit(
        args,
        {"projection": args.name, "applied": applied, "checkpoint": position},
        f"rebuilt {args.name}: {applied} events applied, checkpoint at {position}",
    )
    return EXIT_OK


def _doctor(args: argparse.Namespace) -> int:
    """The manual's troubleshooting scenarios as checks: each finding says what to do."""
    import time as _time

    from .backup import check_integrity
    from .stores.base import PoolStatistics

    config = _config(args)
    findings: list[dict[str, str]] = []

    def found(check: str, status: str, detail: str, advice: str = "") -> None:
        findings.append({"check": check, "status": status, "detail": detail, "advice": advice})

    with _opened(args) as store:
        started = _time.perf_counter()
        head = store.head()
        recent = store.read_all(after=max(head - args.window, 0), limit=args.window)
        read_ms = (_time.perf_counter() - started) * 1000
        slow = read_ms > args.slow_ms
        found(
            "slow store",
            "warning" if slow else "ok",
            f"head and a read of {len(recent)} events took {read_ms:.0f} ms",
            "check the database's load, indexes and network; compare eventcore_event_store_latency_seconds"
            if slow
            else "",
        )
        if recent:
            hot, count = Counter(e.stream_id for e in recent).most_common(1)[0]
            share = count / len(recent)
            found(
                "conflict hot spot",
                "warning" if share > args.hot_share and len(recent) >= 20 else "ok",
                f"the busiest stream {hot!r} has {share:.0%} of the last {len(recent)} events",
                "commands on one busy stream conflict and retry: split the stream (per day, per shard) or "
                "read fewer streams"
                if share > args.hot_share
                else "",
            )
        if isinstance(store, PoolStatistics):
            pool = store.pool_stats()
            exhausted = pool.errors > 0 or pool.exhausted
            found(
                "connection pool",
                "warning" if exhausted else "ok",
                f"{pool.size} of {pool.max_size} connections, {pool.idle} idle, {pool.waiting} waiting, "
                f"{pool.errors} errors",
                "raise database.max_connections or lower the concurrency (ES003 means the pool ran dry)"
                if exhausted
                else "",
            )
        for name in args.projection:
            position, behind, waited = _checkpoint_lag(store, name)
            stuck = waited > config["health.lag_warning"]
            found(
                f"projection {name}",
                "problem" if waited > config["health.lag_critical"] else "warning" if stuck else "ok",
                f"checkpoint {position}, {behind} event(s) behind, oldest waiting {waited:.0f} s",
                "the runner is stopped or failing: look at its error (it names the event), fix, restart"
                if stuck
                else "",
            )
        integrity = check_integrity(store)
        found(
            "integrity",
            "ok" if integrity.ok else "problem",
            f"{integrity.events} events checked"
            + ("" if integrity.ok else ": " + "; ".join(integrity.problems[:3])),
            "" if integrity.ok else "restore from the last verified backup into a new store and compare",
        )
    text = "\n".join(
        f"[{f['status'].upper():>7}] {f['check']}: {f['detail']}"
        + (f"\n          -> {f['advice']}" if f["advice"] else "")
        for f in findings
    )
    _emit(args, findings, text)
    statuses = {f["status"] for f in findings}
    return EXIT_PROBLEM if "problem" in statuses else EXIT_DEGRADED if "warning" in statuses else EXIT_OK


# -- registration ----------------------------------------------------------------------------------


def add_operator_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the operator's subcommands on the ``eventcore-lab`` parser."""
    common = _common()

    def add(name: str, help: str, run: Any) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, help=help, parents=[common], description=help)
        parser.set_defaults(run=run)
        return parser

    add("migrate", "create or upgrade the store's schema", _migrate)
    health = add("health", "check the store; exit 0 healthy, 4 degraded, 3 unhealthy", _health)
    health.add_argument("--timeout", type=float, default=None, help="connect timeout in seconds")
    add("config", "print the effective configuration and where each value came from", _show_config)

    streams = commands.add_parser("streams", help="list streams or show one")
    streams_sub = streams.add_subparsers(dest="streams_command", required=True)
    listing = streams_sub.add_parser("list", parents=[common], help="streams with their versions")
    listing.add_argument("--prefix", default="", help="only streams whose id starts with this")
    listing.add_argument("--limit", type=int, default=None)
    listing.set_defaults(run=_streams_list)
    show = streams_sub.add_parser("show", parents=[common], help="the events of one stream")
    show.add_argument("stream_id")
    show.set_defaults(run=_streams_show)

    events = commands.add_parser("events", help="tail, export or import events")
    events_sub = events.add_subparsers(dest="events_command", required=True)
    tail = events_sub.add_parser("tail", parents=[common], help="print events as they are committed")
    tail.add_argument("--after", type=int, default=None, help="start after this position")
    tail.add_argument("--last", type=int, default=20, help="without --after: start this many events back")
    tail.add_argument("--follow", "-f", action="store_true", help="keep waiting for new events")
    tail.add_argument("--type", action="append", default=[], help="only this event type (repeatable)")
    tail.add_argument("--stream-prefix", default="", help="only streams whose id starts with this")
    tail.add_argument("--limit", type=int, default=None, help="stop after this many events")
    tail.set_defaults(run=_events_tail)
    export = events_sub.add_parser("export", parents=[common], help="write events to .jsonl[.gz] or .parquet")
    export.add_argument("file")
    export.add_argument("--after", type=int, default=0)
    export.set_defaults(run=_events_export)
    imported = events_sub.add_parser("import", parents=[common], help="load an event file into the store")
    imported.add_argument("file")
    imported.set_defaults(run=_events_import)

    backup = add("backup", "write a full or incremental backup to a new directory", _backup)
    backup.add_argument("directory")
    backup.add_argument("--after", type=int, default=0, help="incremental: events after this position")
    backup.add_argument(
        "--incremental-from", default=None, metavar="DIR", help="incremental after backup DIR"
    )
    restore = add("restore", "restore backups (full, then incrementals) into an empty store", _restore)
    restore.add_argument("directories", nargs="+")
    restore.add_argument("--until-position", type=int, default=None)
    restore.add_argument("--until-time", default=None, help="ISO time with zone: restore as of then")
    verify = add("verify", "recompute a backup's checksums and name the first mismatch", _verify)
    verify.add_argument("directories", nargs="+")
    add("check", "check a live store: versions, positions, ids, payloads", _check)
    stats = add("stats", "counts by event type, stream category and day; hot streams", _stats)
    stats.add_argument("--top", type=int, default=10, help="how many hot streams")
    doctor = add("doctor", "troubleshooting checks; exit 0 all ok, 4 warnings, 3 problems", _doctor)
    doctor.add_argument(
        "--projection", action="append", default=[], help="a checkpoint name to check (repeatable)"
    )
    doctor.add_argument("--window", type=int, default=10_000, help="recent events to look at")
    doctor.add_argument("--hot-share", type=float, default=0.2, help="busiest stream share that warns")
    doctor.add_argument("--slow-ms", type=float, default=1000.0, help="read latency that warns")

    projections = commands.add_parser("projections", help="status of projection checkpoints, or rebuild one")
    projections_sub = projections.add_subparsers(dest="projections_command", required=True)
    status = projections_sub.add_parser("status", parents=[common], help="lag of named checkpoints")
    status.add_argument("names", nargs="+", help="checkpoint (projection) names")
    status.set_defaults(run=_projections_status)
    rebuild = projections_sub.add_parser(
        "rebuild", parents=[common], help="replay the log into a fresh projection and reset its checkpoint"
    )
    rebuild.add_argument("name", help="the projection's checkpoint name")
    rebuild.add_argument("--factory", required=True, help="MODULE:CALLABLE making a fresh projection")
    rebuild.set_defaults(run=_projections_rebuild)
