"""Compatibility check, its CLI, and copy-and-transform migration (interrupted, resumed, verified)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import msgspec
import pytest
from _evolution_domain import (
    expected_current,
    history_v1,
    register_current,
    register_v1,
    split_owner,
    upcasters,
)

from eventcore_lab.cli import main
from eventcore_lab.core.registry import EventRegistry, RetiredEvent
from eventcore_lab.evolution import (
    MigrationVerificationFailed,
    Upcasters,
    check_compatibility,
    content_hashes,
    migrate,
    verify,
)
from eventcore_lab.projections import Projection, handles
from eventcore_lab.stores.duckdb import DuckDBStore
from eventcore_lab.stores.memory import MemoryStore

TESTS = Path(__file__).parent


def v1_store(registry: EventRegistry | None = None, accounts: int = 3) -> MemoryStore:
    old = registry or EventRegistry()
    classes = register_v1(old)
    store = MemoryStore(registry=old)
    for write in history_v1(classes, accounts):
        store.append([write])
    return store


def current_registry() -> EventRegistry:
    registry = EventRegistry()
    register_current(registry)
    return registry


# -- compatibility -------------------------------------------------------------------------------


def test_the_check_fails_naming_type_version_and_count_and_passes_after_the_fix() -> None:
    store = v1_store()
    registry = current_registry()
    store.registry = registry
    report = check_compatibility(store, registry)
    assert not report.ok
    failing = report.frame[~report.frame["readable"]]
    assert failing[["event_type", "schema_version", "events"]].values.tolist() == [
        ["AccountOpened", 1, 3],
        ["Deposited", 1, 3],
        ["Note", 1, 3],
        ["FeeCharged", 1, 3],
    ]
    text = "\n".join(report.problems)
    assert "Deposited v1 (3 events): stored at v1 but the class is at v3" in text
    assert "Note v1 (3 events): type 'Note' is not registered" in text

    partial = Upcasters(registry)  # everything but Note
    partial.split_field("AccountOpened", 1, "owner", split_owner)
    partial.rename_field("Deposited", 1, "amt", "amount")
    partial.convert_field("Deposited", 2, "amount", lambda euros: euros * 100)
    partial.rename_type("FeeCharged", 1, "Charged")
    assert check_compatibility(store, registry, upcasters=partial).problems == [
        "Note v1 (3 events): type 'Note' is not registered and no upcaster reads it"
    ]

    fixed = check_compatibility(store, registry, upcasters=upcasters(registry))
    assert fixed.ok, fixed.problems
    rows = fixed.frame.set_index("event_type")
    assert rows.loc["Deposited", "upcast_steps"] == 2 and rows.loc["Deposited", "decoded"] == 3
    assert rows.loc["FeeCharged", "reads_as"] == "Charged"
    assert rows.loc["Note", "reads_as"] == "retired Note"


def test_the_check_reports_a_payload_an_upcaster_cannot_convert() -> None:
    store = v1_store()
    registry = current_registry()
    store.registry = registry
    broken = Upcasters(registry)
    broken.split_field("AccountOpened", 1, "owner", split_owner)
    broken.rename_field("Deposited", 1, "amt", "amount")
    broken.convert_field("Deposited", 2, "amount", lambda euros: f"{euros} EUR")
    broken.retire("Note", 1)
    broken.rename_type("FeeCharged", 1, "Charged")
    report = check_compatibility(store, registry, upcasters=broken)
    assert len(report.problems) == 1
    assert report.problems[0].startswith(
        "Deposited v1 (3 events): payload does not fit event type 'Deposited'"
    )
    assert check_compatibility(store, registry, upcasters=upcasters(registry)).ok


def test_the_check_names_the_projections_and_commands_that_consume_a_type() -> None:
    store = v1_store()
    registry = current_registry()
    store.registry = registry
    deposited = registry.event_class("Deposited")

    class Balances(Projection):
        @handles(deposited)
        def on_deposit(self, event: object) -> None: ...

    report = check_compatibility(store, registry, upcasters=upcasters(registry), consumers=[Balances])
    consumers = report.frame.set_index("event_type")["consumers"]
    assert consumers["Deposited"] == "Balances" and consumers["Withdrawn"] == ""


def test_the_cli_exits_1_on_an_incompatible_store_and_0_after_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bank.duckdb"
    old = EventRegistry()
    classes = register_v1(old)
    with DuckDBStore(path, registry=old) as store:
        for write in history_v1(classes):
            store.append([write])
    code = tmp_path / "bank_code.py"
    code.write_text(
        textwrap.dedent(
            f"""
            import sys
            sys.path.insert(0, {str(TESTS)!r})
            from eventcore_lab.core.registry import EventRegistry
            from _evolution_domain import register_current, upcasters as chains
            registry = EventRegistry()
            register_current(registry)
            upcasters = chains(registry)
            """
        )
    )
    report = tmp_path / "report.csv"
    assert main(["compat", str(path), "--code", str(code), "-o", str(report)]) == 0
    assert "compatible: 15 events" in capsys.readouterr().out
    assert report.read_text().startswith("event_type,schema_version,events")
    named = tmp_path / "named_code.py"
    named.write_text(code.read_text().replace("upcasters = chains(registry)", "chosen = chains(registry)"))
    assert main(["compat", str(path), "--code", str(named), "--upcasters", "chosen"]) == 0
    capsys.readouterr()
    assert main(["compat", str(path), "--code", str(named)]) == 1  # the module's registry, no upcasters
    out = capsys.readouterr().out
    assert "incompatible" in out and "Deposited v1 (3 events): stored at v1 but the class is at v3" in out


# -- migration -----------------------------------------------------------------------------------


def test_migrate_rewrites_every_event_at_its_current_version_and_keeps_the_envelope(tmp_path: Path) -> None:
    source = v1_store()
    registry = current_registry()
    upcasters(registry).install()
    source.registry = registry
    before = content_hashes(source)
    with DuckDBStore(tmp_path / "target.duckdb", registry=registry) as target:
        result = migrate(source, target, batch_size=4, progress=False)
        assert result.copied == 15 and result.resumed_after == 0
        assert result.verification["same"].all()
        versions = target.sql("select event_type, schema_version from events order by position")
        assert list(versions.itertuples(index=False, name=None))[:5] == [
            ("AccountOpened", 2),
            ("Deposited", 3),
            ("Note", 1),  # retired: kept as stored
            ("Withdrawn", 1),
            ("Charged", 2),
        ]
        old, new = source.read_all(), target.read_all()
        assert [(e.event_id, e.stream_id, e.version, e.metadata, e.recorded_at) for e in old] == [
            (e.event_id, e.stream_id, e.version, e.metadata, e.recorded_at) for e in new
        ]
        assert [
            (e.event_type, msgspec.to_builtins(e.payload)) for e in new if type(e.payload) is not RetiredEvent
        ] == [(t, p) for t, p in expected_current() if t != "Note"]
    assert content_hashes(source).equals(before)  # the source is only read


def test_verification_catches_a_corrupted_target(tmp_path: Path) -> None:
    source = v1_store()
    registry = current_registry()
    upcasters(registry).install()
    source.registry = registry
    path = tmp_path / "target.duckdb"
    with DuckDBStore(path, registry=registry) as target:
        migrate(source, target, progress=False)
    con = duckdb.connect(str(path))
    con.execute(
        """update events set payload = '{"amount": 1}' where stream_id = 'account-1' and version = 2"""
    )
    con.close()
    target = DuckDBStore(path, registry=registry)
    with target, pytest.raises(MigrationVerificationFailed, match=r"1 streams: 'account-1'"):
        verify(source, target)


def test_migrating_into_a_store_that_holds_other_events_is_refused(tmp_path: Path) -> None:
    source = v1_store()
    registry = current_registry()
    upcasters(registry).install()
    source.registry = registry
    other = v1_store(accounts=1)
    other.registry = registry
    with pytest.raises(MigrationVerificationFailed, match="not in the source"):
        migrate(source, other, progress=False)


_CHILD = """
import sys
sys.path.insert(0, {tests!r})
from eventcore_lab.core.registry import EventRegistry
from eventcore_lab.evolution import migrate
from eventcore_lab.stores.duckdb import DuckDBStore
from _evolution_domain import register_current, upcasters

registry = EventRegistry()
register_current(registry)
upcasters(registry).install()


class Announcing:
    # a target that says on stdout how many events each import committed: the parent kills it then
    def __init__(self, store):
        self.store = store
        self.registry = store.registry

    def __getattr__(self, name):
        return getattr(self.store, name)

    def import_events(self, events):
        count = self.store.import_events(events)
        print(self.store.head(), flush=True)
        return count


source = DuckDBStore({source!r}, registry=registry, read_only=True)
target = DuckDBStore({target!r}, registry=registry)
migrate(source, Announcing(target), batch_size=10, progress=False, verify_after=False)
print("done", flush=True)
"""


def test_a_migration_killed_midway_and_resumed_equals_an_uninterrupted_one(tmp_path: Path) -> None:
    old = EventRegistry()
    classes = register_v1(old)
    source_path = tmp_path / "source.duckdb"
    with DuckDBStore(source_path, registry=old) as store:
        writes = history_v1(classes, accounts=40)  # 200 events
        for start in range(0, len(writes), 5):
            store.append(writes[start : start + 5])
    killed_path, whole_path = tmp_path / "killed.duckdb", tmp_path / "whole.duckdb"
    script = _CHILD.format(tests=str(TESTS), source=str(source_path), target=str(killed_path))
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    committed = 0
    for line in child.stdout:
        committed = int(line)
        if committed >= 50:
            os.kill(child.pid, signal.SIGKILL)
            break
    child.wait()
    assert child.returncode == -signal.SIGKILL and 50 <= committed < 200

    registry = current_registry()
    upcasters(registry).install()
    with DuckDBStore(source_path, registry=registry, read_only=True) as source:
        with DuckDBStore(killed_path, registry=registry) as resumed:
            result = migrate(source, resumed, batch_size=10, progress=False)
            assert result.resumed_after >= committed and result.copied == 200 - result.resumed_after
            resumed_hashes = content_hashes(resumed)
            resumed_rows = resumed.sql("select * exclude (position) from events order by position")
        with DuckDBStore(whole_path, registry=registry) as whole:
            migrate(source, whole, batch_size=10, progress=False)
            assert content_hashes(whole).equals(resumed_hashes)
            whole_rows = whole.sql("select * exclude (position) from events order by position")
    assert whole_rows.equals(resumed_rows)


def test_the_check_sees_through_a_wrapping_store() -> None:
    from eventcore_lab.stores.chaos import ChaosStore

    store = v1_store()
    registry = current_registry()
    upcasters(registry).install()
    store.registry = registry
    wrapped = ChaosStore(store, failure_probability=0.0, seed=1)
    report = check_compatibility(wrapped)
    assert report.ok and report.frame["schema_version"].tolist() == [1, 1, 1, 1, 1]
    assert wrapped.registry is registry and store.registry is registry
