"""The audit trail: who did what and when, from metadata, as a DataFrame and on the command line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from eventcore_lab import Executor
from eventcore_lab.cli import main
from eventcore_lab.examples.customers import ChangeEmail, RegisterCustomer
from eventcore_lab.security import AUDIT_COLUMNS, DuckDBKeyStore, Principal, ProtectedStore, audit_frame
from eventcore_lab.stores.duckdb import DuckDBStore


def _history(path: Path) -> None:
    with DuckDBStore(path) as duck:
        store = ProtectedStore(duck, DuckDBKeyStore(duck))
        executor = Executor(store)
        clerk = Principal.of("clerk-7", ["clerk"])
        executor.execute(RegisterCustomer.new("c1", "Ada", "ada@example.com", "i1"), user=clerk)
        executor.execute(RegisterCustomer.new("c2", "Grace", "grace@example.com", "i2"), user=clerk)
        executor.execute(ChangeEmail.new("c1", "ada@new.org", "i3"), user="c1", correlation_id="req-42")


def test_audit_frame_filters_by_stream_user_and_time(tmp_path: Path) -> None:
    path = tmp_path / "audit.duckdb"
    _history(path)
    with DuckDBStore(path) as store:
        everything = audit_frame(store, batch_size=2)  # pages through the log
        assert list(everything.columns) == AUDIT_COLUMNS
        assert everything["user_id"].tolist() == ["clerk-7", "clerk-7", "c1"]
        assert everything["event_type"].tolist() == [
            "CustomerRegistered",
            "CustomerRegistered",
            "CustomerEmailChanged",
        ]
        assert "Ada" not in everything.to_string()  # the audit trail holds no payloads
        by_stream = audit_frame(store, stream="customer-c1")
        assert by_stream["version"].tolist() == [1, 2] and by_stream["correlation_id"].tolist()[1] == "req-42"
        assert audit_frame(store, user="clerk-7")["stream_id"].tolist() == ["customer-c1", "customer-c2"]
        second = everything["recorded_at"].iloc[1].to_pydatetime()
        assert audit_frame(store, since=second)["position"].tolist() == [2, 3]
        assert audit_frame(store, until=second)["position"].tolist() == [1]
        future = datetime.now(UTC) + timedelta(days=1)
        assert audit_frame(store, since=future).empty


def test_audit_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "audit.duckdb"
    _history(path)
    assert main(["audit", "--store", str(path), "--user", "clerk-7"]) == 0
    out = capsys.readouterr().out
    assert out.count("CustomerRegistered") == 2 and "CustomerEmailChanged" not in out and "clerk-7" in out
    assert main(["audit", "--store", str(path), "--stream", "customer-c1", "--last", "1"]) == 0
    out = capsys.readouterr().out
    assert "req-42" in out and "CustomerRegistered" not in out
    assert main(["audit", "--store", str(path), "--since", "2999-01-01"]) == 0
    assert "no events match" in capsys.readouterr().out
    assert main(["audit", "--store", str(path), "--since", "yesterday"]) == 1
    assert "--since must be an ISO date" in capsys.readouterr().err
