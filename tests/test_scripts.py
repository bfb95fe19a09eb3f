"""The README's user-facing scripts as a user runs them: ``scripts/demo.sh`` (set up, then the demo on the
embedded DuckDB default) and ``scripts/lab.sh`` (set up, then JupyterLab on the workbench tour).

``scripts/test.sh`` is what CI itself runs, so it needs no test of its own; these two would otherwise only
be tried by hand. Both reuse the ``.venv`` that set-up already made, so they cost seconds.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from eventcore_lab.stores.duckdb import DuckDBStore

REPO = Path(__file__).resolve().parent.parent
TOKEN = "eventcore-scripts-test"


def test_demo_script_runs_the_walkthrough_on_a_duckdb_file(tmp_path: Path) -> None:
    store = tmp_path / "demo.duckdb"
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "demo.sh"), "--store", str(store)],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    assert "Demo complete!" in done.stdout
    assert "The store now holds 6 events." in done.stdout
    reopened = DuckDBStore(store)  # what it said is what it wrote, in the file it was given
    try:
        assert [event.event_type for event in reopened.read_all()].count("TaskCreated") == 1
        assert reopened.head() == 6
    finally:
        reopened.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get_json(url: str, deadline: float, process: subprocess.Popen[bytes]) -> dict:
    """GET ``url`` until the server answers (or the script exits, or ``deadline`` passes)."""
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return dict(json.load(response))
        except (urllib.error.URLError, ConnectionError):
            if process.poll() is not None:
                raise AssertionError(f"lab.sh exited with {process.returncode} before serving") from None
            if time.monotonic() > deadline:
                raise AssertionError(f"JupyterLab did not answer at {url} in time") from None
            time.sleep(0.5)


def test_lab_script_serves_the_tour_with_the_project_settings(tmp_path: Path) -> None:
    port = _free_port()
    environment = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    process = subprocess.Popen(
        [
            "bash",
            str(REPO / "scripts" / "lab.sh"),
            "--no-browser",
            "--allow-root",
            f"--port={port}",
            f"--IdentityProvider.token={TOKEN}",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=environment,
        start_new_session=True,  # the script execs jupyter: stop the whole group afterwards
    )
    try:
        base = f"http://127.0.0.1:{port}"
        tour = _get_json(
            f"{base}/api/contents/notebooks/start-here.ipynb?token={TOKEN}", time.monotonic() + 120, process
        )
        assert tour["type"] == "notebook"
        assert tour["content"]["cells"], "the tour notebook served without cells"
        settings = REPO / ".venv" / "share" / "jupyter" / "lab" / "settings" / "overrides.d"
        installed = json.loads((settings / "eventcore-lab.json").read_text())
        assert installed == json.loads((REPO / "lab-settings" / "overrides.json").read_text())
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
