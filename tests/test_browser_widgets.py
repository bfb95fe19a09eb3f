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
from typing import Any

import nbformat
import pytest
from nbformat.sign import NotebookNotary

CHROMIUM = os.environ.get("EVENTCORE_CHROMIUM", "/usr/bin/chromium")  # Debian's package; never a download
REPO = Path(__file__).resolve().parent.parent
OUTPUT = REPO / "test-output" / "browser"
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
    root = tmp_path / "notebooks"
    root.mkdir()
    yield from _serve(tmp_path, root)


@pytest.fixture
def lab_project(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """JupyterLab as ``scripts/lab.sh`` sets it up: the project's notebooks and tutorials, the
    shipped settings overrides (tutorials open as notebooks) in the app settings directory, and the
    shipped server config (notebooks saved without machine metadata)."""
    yield from _serve_project(tmp_path)


def _serve_project(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "project"
    for folder, pattern in (("notebooks", "*.ipynb"), ("tutorials", "*.md")):
        (root / folder).mkdir(parents=True)
        for source in (REPO / folder).glob(pattern):
            shutil.copy(source, root / folder / source.name)
    overrides = tmp_path / "state" / "app" / "settings" / "overrides.d"
    overrides.mkdir(parents=True)
    shutil.copy(REPO / "lab-settings" / "overrides.json", overrides / "eventcore-lab.json")
    server_config = REPO / "lab-settings" / "jupyter_server_config.json"
    yield from _serve(
        tmp_path, root, f"--LabApp.app_settings_dir={overrides.parent}", f"--config={server_config}"
    )


def _serve(tmp_path: Path, root: Path, *options: str) -> Iterator[tuple[str, Path]]:
    _require_browser()
    state = tmp_path / "state"
    settings = state / "lab-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "notification.jupyterlab-settings").write_text(
        '{"fetchNews": "false", "checkForUpdates": false}'
    )
    # every cell laid out (not only those in view), so that outputs out of view are measured too
    notebook_settings = state / "lab-settings" / "@jupyterlab" / "notebook-extension"
    notebook_settings.mkdir(parents=True, exist_ok=True)
    (notebook_settings / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
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
            "--LabApp.extension_manager=readonly", "--LabApp.expose_app_in_browser=True", *options,
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


# -- what a person sees: the tour and a tutorial in JupyterLab at 1440x900 --------------------------------

VIEWPORT = {"width": 1440, "height": 900}
MIN_TEXT_PX = 10.0

#: Measures every output of the open notebook: how far it overflows sideways, the smallest text in it
#: (SVG text scaled by its viewBox, HTML text by its computed size), and how much images are shrunk.
MEASURE = """() => {
  const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook')
    || document.querySelector('.jp-Notebook');
  const outputs = [...panel.querySelectorAll('.jp-OutputArea-output')];
  const found = {overflow: [], smallest: [], shrunk: [], errors: 0, outputs: outputs.length};
  const name = (el) => (el.querySelector('svg title, b, h1, .jp-RenderedText')?.textContent || el.className)
    .trim().slice(0, 60);
  for (const out of outputs) {
    if (out.scrollWidth > out.clientWidth + 1) {
      const right = out.getBoundingClientRect().right + 1;
      const beyond = [...out.querySelectorAll('*')].filter(e => e.getBoundingClientRect().right > right);
      found.overflow.push({
        what: out.innerText.trim().slice(0, 60) || out.innerHTML.slice(0, 120),
        scroll: out.scrollWidth, width: out.clientWidth,
        beyond: beyond.slice(0, 3).map(e => e.tagName + ' ' + Math.round(e.getBoundingClientRect().width)),
      });
    }
    for (const svg of out.querySelectorAll('svg')) {
      const box = svg.viewBox && svg.viewBox.baseVal;
      const scale = box && box.width ? svg.getBoundingClientRect().width / box.width : 1;
      for (const t of svg.querySelectorAll('text')) {
        if (!t.textContent.trim()) continue;
        const px = parseFloat(getComputedStyle(t).fontSize) * scale;
        if (px < 10) found.smallest.push({text: t.textContent.trim().slice(0, 30), px});
      }
    }
    const walker = document.createTreeWalker(out, NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) {
      const el = walker.currentNode.parentElement;
      if (!walker.currentNode.textContent.trim() || el.closest('svg')) continue;
      const px = parseFloat(getComputedStyle(el).fontSize);
      if (px < 10 && el.getClientRects().length) {
        found.smallest.push({text: walker.currentNode.textContent.trim().slice(0, 30), px});
      }
    }
    for (const img of out.querySelectorAll('img')) {
      if (img.naturalWidth && img.clientWidth < img.naturalWidth - 1) {
        found.shrunk.push({natural: img.naturalWidth, shown: img.clientWidth});
      }
      // an SVG shown as an image (graphviz's image/svg+xml): its text as drawn at the image's size
      if (img.src.startsWith('data:image/svg+xml')) {
        const raw = img.src.slice(img.src.indexOf(',') + 1);
        const base64 = img.src.slice(0, img.src.indexOf(',')).endsWith(';base64');
        const text = base64 ? atob(raw) : decodeURIComponent(raw);
        const doc = new DOMParser().parseFromString(text, 'image/svg+xml').documentElement;
        const box = doc.viewBox && doc.viewBox.baseVal;
        const scale = box && box.width ? img.clientWidth / box.width : 1;
        for (const t of doc.querySelectorAll('text')) {
          const sized = t.closest('[font-size]');
          const size = parseFloat(sized ? sized.getAttribute('font-size') : '16');
          if (t.textContent.trim() && size * scale < 10) {
            found.smallest.push({text: t.textContent.trim().slice(0, 30), px: size * scale});
          }
        }
      }
    }
    if (out.textContent.includes('Error displaying widget')) found.errors += 1;
  }
  return found;
}"""


def _run_all_and_wait(page: Any) -> None:
    page.wait_for_selector(".jp-Notebook .jp-Cell")
    page.wait_for_function("() => document.querySelector('#jp-main-statusbar')?.textContent.includes('Idle')")
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    # every code cell has run when no prompt shows [*] and the kernel is idle again
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jp-InputArea-prompt')]"
        ".every(p => !p.textContent.includes('*'))"
        " && document.querySelector('#jp-main-statusbar')?.textContent.includes('Idle')",
        timeout=300_000,
    )
    page.wait_for_timeout(1500)  # widgets render after their models arrive


def _assert_legible(page: Any, label: str, *, allow_none: bool = False) -> dict[str, Any]:
    found = page.evaluate(MEASURE)
    assert found["outputs"] > 0 or allow_none, f"{label}: no outputs to measure"
    assert found["errors"] == 0, f"{label}: 'Error displaying widget' shown"
    assert found["overflow"] == [], f"{label}: outputs wider than the output area: {found['overflow']}"
    assert found["smallest"] == [], f"{label}: text under {MIN_TEXT_PX:g} px: {found['smallest'][:10]}"
    assert found["shrunk"] == [], f"{label}: images shrunk to fit (their text with them): {found['shrunk']}"
    return dict(found)


def _shoot(page: Any, selector: str, name: str) -> None:
    element = page.locator(selector).first
    element.scroll_into_view_if_needed()
    element.screenshot(path=str(OUTPUT / name))
    assert (OUTPUT / name).stat().st_size > 5_000, f"{name} is (nearly) empty"


def _open_page(p: Any) -> tuple[Any, Any]:
    browser = p.chromium.launch(executable_path=_require_browser(), args=["--no-sandbox", "--disable-gpu"])
    page = browser.new_page(viewport=VIEWPORT)
    page.set_default_timeout(120_000)
    return browser, page


def test_tour_fits_the_output_and_reads_at_100_percent(lab_project: tuple[str, Path]) -> None:
    """The must-show of the workbench issue, measured on the tour: at 1440x900 every board, timeline,
    plot, table and widget fits its output area with no sideways scrolling, its smallest text renders
    at 10 px or more, and no widget fails to display. Screenshots land in ``test-output/browser/``
    for a person to look at."""
    from playwright.sync_api import sync_playwright

    base, _ = lab_project
    OUTPUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser, page = _open_page(p)
        try:
            page.goto(f"{base}/lab/tree/notebooks/start-here.ipynb?token={TOKEN}")
            _run_all_and_wait(page)
            _assert_legible(page, "start-here")
            _shoot(page, ".jp-OutputArea-output .ec-board", "start-here-board.png")
            _shoot(page, ".jp-OutputArea-output .ec-timeline", "start-here-timeline.png")
            _shoot(page, ".ec-workbench", "start-here-workbench.png")
            _shoot(page, ".ec-timeline-slider", "start-here-slider.png")
            _shoot(page, ".jp-OutputArea-output img", "start-here-plot.png")
        finally:
            page.screenshot(path=str(OUTPUT / "start-here-last.png"))
            browser.close()


def test_tutorial_md_opens_as_a_notebook_and_its_boards_fit(lab_project: tuple[str, Path]) -> None:
    """A tutorial opened from its URL shows as a notebook (the shipped settings overrides), not as
    MyST text; chapter 1.3's boards and timeline fit and read at 100% like the tour's."""
    from playwright.sync_api import sync_playwright

    base, _ = lab_project
    OUTPUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser, page = _open_page(p)
        try:
            page.goto(f"{base}/lab/tree/tutorials/1.3-event-modeling.md?token={TOKEN}")
            page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=60_000)
            assert page.locator(".jp-FileEditor:visible").count() == 0
            _run_all_and_wait(page)
            _assert_legible(page, "1.3-event-modeling.md")
            _shoot(page, ".jp-OutputArea-output .ec-board", "1.3-board.png")
            _shoot(page, ".jp-OutputArea-output .ec-timeline", "1.3-timeline.png")
        finally:
            page.screenshot(path=str(OUTPUT / "1.3-last.png"))
            browser.close()


def test_opening_and_saving_start_here_leaves_the_tracked_file_unchanged(
    lab_project: tuple[str, Path],
) -> None:
    """Opening the tour starts a kernel, and JupyterLab then records the kernel's details in the
    notebook; saving it (autosave does) must not turn into a change to the tracked file."""
    from playwright.sync_api import sync_playwright

    base, root = lab_project
    saved = root / "notebooks" / "start-here.ipynb"
    before = saved.read_text()
    with sync_playwright() as p:
        browser, page = _open_page(p)
        try:
            page.goto(f"{base}/lab/tree/notebooks/start-here.ipynb?token={TOKEN}")
            page.wait_for_selector(".jp-Notebook .jp-Cell")
            page.wait_for_function(
                "() => document.querySelector('#jp-main-statusbar')?.textContent.includes('Idle')"
            )
            page.wait_for_timeout(1000)
            stamp = saved.stat().st_mtime_ns
            page.evaluate("window.jupyterapp.commands.execute('docmanager:save')")
            deadline = time.monotonic() + 30
            while saved.stat().st_mtime_ns == stamp and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            browser.close()
    assert saved.stat().st_mtime_ns != stamp, "JupyterLab did not save the notebook"
    after = saved.read_text()
    import difflib

    assert after == before, "".join(difflib.unified_diff(before.splitlines(True), after.splitlines(True)))


# -- every notebook: what each board, timeline, plot and table looks like in JupyterLab ----------------

#: Measured with their kernel by the tests above (widgets, screenshots), so not again below.
MEASURED_ABOVE = {"notebooks/start-here.ipynb", "tutorials/1.3-event-modeling.md"}
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
FIGURES = ".jp-OutputArea-output .ec-board, .jp-OutputArea-output .ec-timeline, .jp-OutputArea-output img"


def every_notebook() -> list[str]:
    """Every workbench notebook and every tutorial (a ``.md`` with jupytext front matter), found on
    disk so that a chapter added later is measured without editing this file."""
    found = [f"notebooks/{p.name}" for p in sorted((REPO / "notebooks").glob("*.ipynb"))]
    found += [
        f"tutorials/{p.name}"
        for p in sorted((REPO / "tutorials").glob("*.md"))
        if p.read_text(encoding="utf-8").startswith("---\njupytext:")
    ]
    return [path for path in found if path not in MEASURED_ABOVE]


@pytest.fixture(scope="module")
def lab_page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Path]]:
    """One JupyterLab (set up like ``scripts/lab.sh``) and one Chromium page at 1440x900 for every
    notebook: each is opened in the running app, measured and closed, so the app loads once."""
    from playwright.sync_api import sync_playwright

    tmp = tmp_path_factory.mktemp("every-notebook")
    served = _serve_project(tmp)
    base, root = next(served)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as p:
            browser, page = _open_page(p)
            try:
                page.goto(f"{base}/lab?token={TOKEN}")
                page.wait_for_function("() => window.jupyterapp?.shell?.currentWidget !== undefined")
                page.wait_for_selector("#jp-main-statusbar")
                yield page, root
            finally:
                browser.close()
    finally:
        served.close()


def _executed(config: pytest.Config, path: str) -> nbformat.NotebookNode:
    """The notebook with its outputs: as nbval ran it earlier in this session (conftest.py keeps what
    the kernel sent), or executed now when this test runs without the notebooks."""
    repository_conftest = config.pluginmanager.get_plugin(str(REPO / "conftest.py"))
    kept = config.stash.get(repository_conftest.NOTEBOOK_OUTPUTS, {}).get(path)
    if kept is not None:
        return kept
    import jupytext
    from nbclient import NotebookClient

    source = REPO / path
    notebook = jupytext.read(source) if source.suffix == ".md" else nbformat.read(source, as_version=4)
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(source.parent)}}
    ).execute()
    return notebook


#: Opens a notebook in the running JupyterLab, as a double click would, and keeps its panel.
OPEN = """async ([path, factory]) => {
  window.ecPanel = await window.jupyterapp.commands.execute('docmanager:open', {path, factory});
  await window.ecPanel.context.ready;
  await window.ecPanel.sessionContext.ready;
}"""
CLOSE = "async () => { const p = window.ecPanel; await p.sessionContext.shutdown(); p.dispose(); }"
#: Widgets drawn (waiting a little for their views): outputs with a widget view and no "Loading" text.
WIDGETS_DRAWN = """async (expected) => {
  const count = () => [...window.ecPanel.node.querySelectorAll('.jp-OutputArea-output')]
    .filter(o => o.querySelector('.jupyter-widgets') && !o.textContent.includes('Loading widget')).length;
  for (let i = 0; i < 50 && count() < expected; i++) await new Promise(r => setTimeout(r, 100));
  return count();
}"""
#: Outputs drawn: as many output areas as the notebook has rich outputs, every image decoded.
DRAWN = """(expected) => {
  const panel = window.ecPanel.node;
  const outputs = panel.querySelectorAll('.jp-OutputArea-output');
  return outputs.length >= expected && [...panel.querySelectorAll('img')].every(i => i.complete);
}"""


def _open_rendered(page: Any, root: Path, notebook: nbformat.NotebookNode, path: str) -> tuple[int, int]:
    """Opens ``notebook`` (with its outputs) in the running JupyterLab, without running it, and waits
    until every output is drawn; returns how many widgets it holds and how many are drawn."""
    notebook.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    shown = Path("rendered") / Path(path).with_suffix(".ipynb")
    (root / shown).parent.mkdir(parents=True, exist_ok=True)
    # trusted, as a notebook one has just run is: JupyterLab would otherwise strip its SVG and scripts
    NotebookNotary(data_dir=str(root.parent / "state" / "data")).sign(notebook)
    nbformat.write(notebook, root / shown)
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    rich = sum(o.output_type in ("display_data", "execute_result") for o in outputs)
    page.evaluate(OPEN, [shown.as_posix(), "Notebook"])
    page.wait_for_function(DRAWN, arg=rich)
    pictures = sum("<svg" in o.get("data", {}).get("text/html", "") for o in outputs)
    drawn = page.evaluate("() => window.ecPanel.node.querySelectorAll('.jp-OutputArea-output svg').length")
    assert drawn >= pictures, f"{path}: {pictures} SVG pictures sent, {drawn} drawn (not trusted?)"
    views = sum(WIDGET_VIEW in o.get("data", {}) for o in outputs)
    return views, page.evaluate(WIDGETS_DRAWN, arg=views)


@pytest.mark.after_notebooks  # beside the test it checks, to share its JupyterLab
def test_the_measure_finds_overflow_small_text_and_shrunk_images(lab_page: tuple[Any, Path]) -> None:
    """The checks of the test above can fail: outputs made to break each rule are caught."""
    import base64
    import io

    from matplotlib.figure import Figure

    png = io.BytesIO()
    Figure(figsize=(20, 1), dpi=100).savefig(png, format="png")  # 2000 px: shrunk to fit
    small_svg = '<svg xmlns="http://www.w3.org/2000/svg" width="100" height="20" viewBox="0 0 100 20">'
    bundles = [
        {"text/html": '<div style="width:1600px">a row wider than the output</div>'},
        {"text/html": small_svg + '<text x="2" y="12" font-size="7">tiny inline</text></svg>'},
        {
            "image/svg+xml": small_svg.replace('width="100"', 'width="50"')
            + '<text x="2" y="12" font-size="12">tiny image</text></svg>'
        },
        {"image/png": base64.b64encode(png.getvalue()).decode("ascii")},
        {WIDGET_VIEW: {"model_id": "0" * 32, "version_major": 2, "version_minor": 0}},  # no state saved
    ]
    cells = [
        nbformat.v4.new_code_cell("", outputs=[nbformat.v4.new_output("display_data", data=b)])
        for b in bundles
    ]
    page, root = lab_page
    views, shown = _open_rendered(page, root, nbformat.v4.new_notebook(cells=cells), "rendered/broken.ipynb")
    try:
        found = page.evaluate(MEASURE)
    finally:
        page.evaluate(CLOSE)
    assert [o["what"] for o in found["overflow"]] == ["a row wider than the output"]
    small = {f["text"]: f["px"] for f in found["smallest"]}
    assert small["tiny inline"] == pytest.approx(7, abs=0.5)  # an inline SVG at 100%
    assert small["tiny image"] == pytest.approx(6, abs=0.5)  # an SVG image drawn at half its viewBox
    assert found["shrunk"] == [{"natural": 2000, "shown": found["shrunk"][0]["shown"]}]
    assert (views, shown) == (1, 0)  # a widget without its state is not counted as drawn


@pytest.mark.after_notebooks
@pytest.mark.parametrize("path", every_notebook())
def test_every_notebook_fits_the_output_and_reads_at_100_percent(
    request: pytest.FixtureRequest, lab_page: tuple[Any, Path], path: str
) -> None:
    """The must-show over every notebook and tutorial at 1440x900: no output wider than the output
    area, no text under 10 px (SVG text as scaled, HTML text as computed), no image shrunk to fit, no
    widget error. The outputs are the ones the kernel sent when nbval ran the notebook in this session,
    rendered by JupyterLab itself, widgets (progress bars too) from the state saved with them; without
    that state a notebook that shows widgets runs live instead. A screenshot of each board, timeline
    and plot lands in ``test-output/browser/``."""
    page, root = lab_page
    notebook = _executed(request.config, path)
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    # widgets draw from the state saved with the outputs; without it they need their kernel
    live = any(WIDGET_VIEW in o.get("data", {}) for o in outputs) and "widgets" not in notebook.metadata
    if live:
        page.evaluate(OPEN, [path, "Jupytext Notebook" if path.endswith(".md") else "Notebook"])
        _run_all_and_wait(page)
    else:
        views, shown = _open_rendered(page, root, notebook, path)
        assert shown >= views, f"{path}: {views} widgets sent, {shown} drawn from their saved state"
    try:
        found = _assert_legible(page, path, allow_none=not outputs)
        figures = page.locator(FIGURES)
        for n in range(min(figures.count(), 6)):
            shot = OUTPUT / f"{Path(path).stem}-{n + 1}.png"
            figures.nth(n).scroll_into_view_if_needed()
            figures.nth(n).screenshot(path=str(shot))
        assert found["outputs"] >= (1 if outputs else 0)
    finally:
        page.evaluate(CLOSE)
