"""Saving a notebook through Jupyter's contents manager with the project's pre-save hook keeps the
file free of machine-specific metadata (what JupyterLab adds when a kernel starts)."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
from jupyter_server.services.contents.filemanager import FileContentsManager
from traitlets.config import Config

from eventcore_lab.display import drop_machine_metadata

REPO = Path(__file__).resolve().parent.parent

LANGUAGE_INFO = {"name": "python", "version": "3.99.1", "pygments_lexer": "ipython3"}


def _manager(root: Path) -> FileContentsManager:
    config = json.loads((REPO / "lab-settings" / "jupyter_server_config.json").read_text())
    return FileContentsManager(root_dir=str(root), config=Config(config))


def test_the_shipped_server_config_drops_language_info_on_save(tmp_path: Path) -> None:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    notebook.metadata["kernelspec"] = {
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
        "name": "python3",
    }
    notebook.metadata["language_info"] = dict(LANGUAGE_INFO)
    manager = _manager(tmp_path)
    manager.save({"type": "notebook", "format": "json", "content": notebook}, "tour.ipynb")
    saved = json.loads((tmp_path / "tour.ipynb").read_text())
    assert "language_info" not in saved["metadata"]
    assert saved["metadata"]["kernelspec"]["name"] == "python3"
    assert "".join(saved["cells"][0]["source"]) == "1 + 1"


def test_other_files_pass_through_the_hook(tmp_path: Path) -> None:
    model = {"type": "file", "format": "text", "content": '{"metadata": {"language_info": {}}}'}
    drop_machine_metadata(model)
    assert model["content"] == '{"metadata": {"language_info": {}}}'
    _manager(tmp_path).save(model, "notes.json")
    assert "language_info" in (tmp_path / "notes.json").read_text()


def test_tracked_notebooks_name_the_kernel_as_jupyterlab_does() -> None:
    """JupyterLab rewrites the kernelspec's display name to the kernel's own; stored the same way,
    opening a notebook changes nothing."""
    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        metadata = json.loads(path.read_text())["metadata"]
        assert metadata["kernelspec"]["display_name"] == "Python 3 (ipykernel)", path.name
        assert "language_info" not in metadata, path.name
