"""The widgets in a real browser: headless JupyterLab on loopback, Debian Chromium driven by Playwright.

Opens a notebook with the coffee-shop workbench, runs it, submits a command through the generated form,
and checks that the new event shows up in the stream explorer. A screenshot lands in
``test-output/browser/``. Without Chromium this skips locally and fails in CI (env ``CI`` set).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

CHROMIUM = os.environ.get("EVENTCORE_CHROMIUM", "/usr/bin/chromium")  # Debian's package; never a download
OUTPUT = Path(__file__).resolve().parent.parent / "test-output" / "browser"
TOKEN = "eventcore-browser-test"

NOTEBOOK_CELLS = [
    "from eventcore_lab import MemoryStore\n"
    "from eventcore_lab.examples import coffee\n"
    "from eventcore_lab.widgets import Workbench\n\n"
    "store = MemoryStore()\n"
    "bench = Workbench(store, coffee.COMMANDS)\n"
    "bench",
]


def _chromium() -> str | None:
    return CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")


def _require_browser() -> str:
    """The Chromium executable; fails with what to install when something is missing."""
    missing = []
    executable = _chromium()
    if executable is None:
        missing.append(f"Chromium ({CHROMIUM}; Debian package `chromium`)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the Playwright Python package (pip install playwright; never `playwright install`)")
    if missing:
        pytest.fail(
            "browser test needs " + " and ".join(missing) + " (scripts/setup.sh --browser installs them)"
        )
    assert executable is not None
    return executable


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A JupyterLab server on loopback with all its state under ``tmp_path``; yields (base URL, root)."""
    _require_browser()
    root, state = tmp_path / "notebooks", tmp_path / "state"
    root.mkdir()
    settings = state / "lab-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        '{"fetchNews": "false", "checkForUpdates": false}'
    )
    env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=str(state / "config"),
        JUPYTER_RUNTIME_DIR=str(state / "runtime"),
        JUPYTER_DATA_DIR=str(state / "data"),
        IPYTHONDIR=str(state / "ipython"),
        JUPYTERLAB_SETTINGS_DIR=str(state / "lab-settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(state / "workspaces"),
        PYDEVD_DISABLE_FILE_VALIDATION="1",
    )
    port = _free_port()
    log = (tmp_path / "lab.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
            f"--port={port}", f"--ServerApp.root_dir={root}", f"--IdentityProvider.token={TOKEN}",
            "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly", "--LabApp.expose_app_in_browser=True",
        ],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail(f"JupyterLab did not start:\n{(tmp_path / 'lab.log').read_text()[-3000:]}")
                time.sleep(0.5)
        yield base, root
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def test_missing_chromium_fails_and_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(sys.modules[__name__], "CHROMIUM", str(tmp_path / "no-chromium"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(pytest.fail.Exception, match="Debian package `chromium`"):
        _require_browser()


def test_command_runner_writes_an_event_that_the_explorer_shows(lab: tuple[str, Path]) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, root = lab
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in NOTEBOOK_CELLS])
    notebook.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nbformat.write(notebook, root / "workbench.ipynb")
    OUTPUT.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(root.parent / "chromium-profile"),
            executable_path=_require_browser(),
            headless=True,
            viewport={"width": 1400, "height": 900},
            args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
            ],
        )  # fmt: skip
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(60_000)
            page.goto(f"{base}/lab/tree/workbench.ipynb?token={TOKEN}")
            page.wait_for_selector(".jp-Notebook .jp-Cell")
            page.wait_for_function(
                "() => document.querySelector('#jp-main-statusbar')?.textContent.includes('Idle')"
            )
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")

            runner = page.locator(".ec-command-runner")
            explorer = page.locator(".ec-stream-explorer")
            expect(runner).to_be_visible()
            expect(explorer).to_be_visible()
            expect(explorer.locator(".ec-explorer-table")).to_contain_text("no events")

            runner.locator(".widget-dropdown select").first.select_option("EnterShop")
            field = runner.locator(".ec-form-EnterShop .ec-field-customer input")
            field.fill("customer-ann")
            field.press("Enter")  # commit the text to the kernel before clicking (continuous_update)
            runner.locator("button.ec-run").click()

            expect(runner.locator(".ec-runner-output")).to_contain_text("1 event(s) on 1 stream(s)")
            table = explorer.locator(".ec-explorer-table")
            expect(table).to_contain_text("CustomerEntered")
            expect(table).to_contain_text("ann")
            expect(explorer.locator(".widget-dropdown select").first).to_have_value("customer-ann")
            page.screenshot(path=str(OUTPUT / "workbench-event-written.png"), full_page=True)

            # a failing command shows its error, and the explorer keeps what was written
            runner.locator(".widget-dropdown select").first.select_option("LeaveShop")
            leave = runner.locator(".ec-form-LeaveShop .ec-field-customer input")
            leave.fill("customer-zed")
            leave.press("Enter")
            runner.locator("button.ec-run").click()
            expect(runner.locator(".ec-error")).to_contain_text("customer zed is not in the shop")
            expect(table).to_contain_text("CustomerEntered")
            page.screenshot(path=str(OUTPUT / "workbench.png"), full_page=True)
        finally:
            context.close()
    assert (OUTPUT / "workbench.png").stat().st_size > 10_000
