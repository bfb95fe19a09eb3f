"""Notebooks saved from JupyterLab keep only what belongs in version control.

When a kernel starts, JupyterLab records its ``language_info`` (including the interpreter's exact
version) in the notebook's metadata, and autosave writes it: simply opening a tracked notebook would
then show up as a change in git, different on every machine. The project's Jupyter server config
(``lab-settings/jupyter_server_config.json``, installed by ``scripts/lab.sh``) runs
:func:`drop_machine_metadata` before every save.
"""

from __future__ import annotations

from typing import Any

#: Notebook metadata that describes the machine that last ran the notebook, not the notebook.
MACHINE_METADATA = ("language_info",)


def drop_machine_metadata(model: dict[str, Any], **_: Any) -> None:
    """A Jupyter ``ContentsManager.pre_save_hook``: removes :data:`MACHINE_METADATA` from a notebook
    model in place (other kinds of files pass through)."""
    if model.get("type") != "notebook" or not isinstance(model.get("content"), dict):
        return
    metadata = model["content"].get("metadata")
    if isinstance(metadata, dict):
        for key in MACHINE_METADATA:
            metadata.pop(key, None)
