"""Every figure the notebooks show follows the house style: shown once, axes labelled, a legend when
there are several series, text of 10 px or more, no wider than a JupyterLab output at 1440x900.

Each notebook (and tutorial) that draws with matplotlib runs in a kernel whose figure formatter records
what is displayed (``eventcore_lab.display.watch_figures``); a last cell reports the problems found.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
DRAWS = re.compile(r"\bplt\.|\.plot\b|\.hist\(|plot_\w+\(|\.imshow\(")


def notebooks_with_figures() -> list[Path]:
    found = sorted((ROOT / "notebooks").glob("*.ipynb"))
    found += sorted(
        p
        for p in (ROOT / "tutorials").glob("*.md")
        if p.read_text(encoding="utf-8").startswith("---\njupytext:")
    )
    return [p for p in found if DRAWS.search(p.read_text(encoding="utf-8"))]


def test_the_audit_finds_a_figure_shown_twice_and_a_missing_legend() -> None:
    """The checker itself, on a notebook made to break every rule."""
    bad = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                "import matplotlib.pyplot as plt\n"
                "fig, ax = plt.subplots(figsize=(14, 3))\n"
                "ax.plot([1, 2]); ax.plot([2, 1])\n"
                "ax.set_title('bad', fontsize=5)\n"
                "fig"  # returned and shown by the inline backend: twice
            )
        ]
    )
    problems = _audit(bad, ROOT)
    text = "\n".join(problems)
    assert "displayed twice" in text
    assert "x axis has no label" in text and "y axis has no label" in text
    assert "2 series and no legend" in text
    assert re.search(r"\d{4} px wide, more than 980 px", text) and "under 10 px" in text


@pytest.mark.parametrize("path", notebooks_with_figures(), ids=lambda p: p.name)
def test_notebook_figures_follow_the_house_style(path: Path) -> None:
    notebook = jupytext.read(path) if path.suffix == ".md" else nbformat.read(path, as_version=4)
    assert _audit(notebook, path.parent) == []


def _audit(notebook: nbformat.NotebookNode, cwd: Path) -> list[str]:
    from nbclient import NotebookClient

    notebook.cells.insert(
        0, nbformat.v4.new_code_cell("from eventcore_lab.display import watch_figures\nwatch_figures()")
    )
    notebook.cells.append(
        nbformat.v4.new_code_cell(
            "import json\nfrom eventcore_lab.display import figure_report\nprint(json.dumps(figure_report()))"
        )
    )
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    ).execute()
    last = notebook.cells[-1].outputs
    text = "".join(o.get("text", "") for o in last if o.get("output_type") == "stream")
    return list(json.loads(text))
