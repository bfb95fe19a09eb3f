"""Repository-wide pytest set-up: notebooks are tests too.

A plain ``pytest`` walks the ``testpaths`` of pyproject.toml (tests, tutorials,
notebooks) and, besides the usual test modules, runs with nbval:

* ``notebooks/*.ipynb``: workbench notebooks, committed without outputs;
* ``tutorials/*.md``: MyST markdown notebooks (jupytext format). They are
  collected only when their YAML front matter has a ``jupytext`` section, so a
  plain ``README.md`` is never mistaken for a notebook.

Notebooks run in nbval's "lax" mode: every code cell must run without error,
and ``assert`` cells are the checks. The kernel is the interpreter running
pytest (``--nbval-current-env``). Pass ``--nbval`` for strict output
comparison or ``--no-notebooks`` to run the Python tests only.

Reading ``.md`` files relies on an nbval internal (``nbval.plugin.nbformat``),
hence the ``nbval==0.11.*`` pin in pyproject.toml.
"""

from __future__ import annotations

import json
import os
from collections.abc import Generator
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

import jupytext
import nbformat
import pytest
import yaml
from nbval import plugin as nbval_plugin

SANITIZE_FILE = Path(__file__).with_name("nbval_sanitize.cfg")

# Kernel start noise: debugpy (used by ipykernel) warns about frozen modules on
# Python 3.11 each time a kernel starts. The kernel inherits this environment.
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--no-notebooks",
        action="store_true",
        help="do not run notebooks/*.ipynb and tutorials/*.md (Python tests only)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "after_notebooks: runs after every notebook of the session, to see what they showed"
    )
    opt = config.option
    if not hasattr(opt, "nbval"):  # nbval disabled with `-p no:nbval`
        return
    if opt.no_notebooks:
        opt.nbval = opt.nbval_lax = False
        return
    if not (opt.nbval or opt.nbval_lax):
        opt.nbval_lax = True  # notebooks run by default, checked by their asserts
    if not opt.nbval_kernel_name:
        opt.nbval_current_env = True  # the venv's interpreter, not a kernelspec
    if opt.nbval_sanitize_with is None and SANITIZE_FILE.exists():
        opt.nbval_sanitize_with = str(SANITIZE_FILE)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    # pyproject's norecursedirs replaces pytest's default ".*", so skip Jupyter's
    # autosave copies explicitly.
    return True if ".ipynb_checkpoints" in collection_path.parts else None


def is_text_notebook(path: Path) -> bool:
    """True when a .md file starts with YAML front matter holding a jupytext section."""
    text = path.read_text(encoding="utf-8")
    if not text.startswith("---\n"):
        return False
    end = text.find("\n---", 4)
    if end < 0:
        return False
    try:
        meta = yaml.safe_load(text[4:end])
    except yaml.YAMLError:
        return False
    return isinstance(meta, dict) and isinstance(meta.get("jupytext"), dict)


class TextNotebookFile(nbval_plugin.IPyNbFile):
    """nbval's notebook collector, reading the notebook with jupytext instead of nbformat."""

    def collect(self):
        shim = SimpleNamespace(read=lambda path, as_version=4: jupytext.read(path, as_version=as_version))
        # Patch only nbval's module-level reference, and only while cells are collected.
        with mock.patch.object(nbval_plugin, "nbformat", shim):
            yield from super().collect()


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    opt = parent.config.option
    notebooks_on = getattr(opt, "nbval", False) or getattr(opt, "nbval_lax", False)
    if notebooks_on and file_path.suffix == ".md" and is_text_notebook(file_path):
        return TextNotebookFile.from_parent(parent, path=file_path)
    return None  # .ipynb files are collected by nbval itself


# -- what the notebooks showed: kept for the browser test, which renders them in JupyterLab ---------------

#: Executed notebooks of this session by path relative to the repository (code cells and the outputs
#: nbval received from the kernel); a notebook is added once every one of its cells has run without error.
NOTEBOOK_OUTPUTS = pytest.StashKey[dict[str, nbformat.NotebookNode]]()
_CELLS = pytest.StashKey[dict[str, list[tuple[int, nbformat.NotebookNode] | None]]]()
_ROOT = Path(__file__).resolve().parent


@pytest.hookimpl(trylast=True)  # after -k/-m have deselected: count the cells that will run
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``after_notebooks`` run last, so that they find this session's notebook outputs."""
    counts: dict[str, int] = {}
    for item in items:
        if isinstance(item, nbval_plugin.IPyNbCell):
            counts[_notebook_key(item)] = counts.get(_notebook_key(item), 0) + 1
    config.stash[_CELLS] = {key: [None] * n for key, n in counts.items()}
    config.stash[NOTEBOOK_OUTPUTS] = {}
    items.sort(key=lambda item: item.get_closest_marker("after_notebooks") is not None)  # stable


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, None]:
    outcome = yield
    if isinstance(item, nbval_plugin.IPyNbCell) and _CELLS in item.config.stash:
        _record(item, failed=outcome.excinfo is not None and outcome.excinfo[0].__name__ != "Skipped")


def _notebook_key(item: pytest.Item) -> str:
    return Path(str(item.path)).resolve().relative_to(_ROOT).as_posix()


def _record(item: Any, *, failed: bool) -> None:
    cells = item.config.stash[_CELLS].get(_notebook_key(item))
    if cells is None or failed:
        item.config.stash[_CELLS].pop(_notebook_key(item), None)  # incomplete: never measured from here
        return
    cell = nbformat.v4.new_code_cell(item.cell.source, execution_count=None)
    cell.outputs = [nbformat.from_dict(dict(out)) for out in (item.test_outputs or [])]
    slot = cells.index(None)
    cells[slot] = (item.cell_num, cell)
    if None not in cells:
        notebook = nbformat.v4.new_notebook(cells=[c for _, c in sorted(cells, key=lambda pair: pair[0])])
        state = _widget_state(item.parent.kernel)
        if state:  # saved as JupyterLab saves it, so the widgets draw without their kernel
            notebook.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": state}
        item.config.stash[NOTEBOOK_OUTPUTS][_notebook_key(item)] = notebook


#: Asks the kernel for the state of every widget it made (progress bars included), as JSON on stdout.
_WIDGET_STATE = (
    "import sys as _s, json as _j\n"
    "_w = _s.modules.get('ipywidgets')\n"
    "print(_j.dumps(_w.Widget.get_manager_state() if _w else {}))"
)


def _widget_state(kernel: Any) -> dict[str, Any]:
    printed: list[str] = []

    def keep(message: dict[str, Any]) -> None:
        if message["msg_type"] == "stream" and message["content"]["name"] == "stdout":
            printed.append(message["content"]["text"])

    kernel.kc.execute_interactive(_WIDGET_STATE, store_history=False, output_hook=keep, timeout=60)
    state: dict[str, Any] = json.loads("".join(printed) or "{}")
    return state if state.get("state") else {}
