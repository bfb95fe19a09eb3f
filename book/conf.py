"""Sphinx configuration of the EventCore Lab manual.

Build it with ``bash scripts/build_book.sh``: that script first fetches the
widget JavaScript into ``_static/vendor/`` (git-ignored) so the HTML works
offline, then runs ``sphinx-build -W --keep-going -E -T -b html book book/_build/html``.

``book/tutorials`` is a symlink to ``../tutorials``: the chapters are the same
MyST notebooks that pytest runs with nbval. myst-nb executes every one of them
on each build, and a failing cell fails the build.
"""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# the package (for autodoc) and the book's own extensions (reference pages generated from the code)
sys.path[:0] = [str(HERE.parent), str(HERE / "_ext")]

# Kernel start noise: debugpy warns about frozen modules on Python 3.11.
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
# Prefer the kernelspec of the environment running Sphinx (the .venv) over a
# user-level "python3" kernelspec that may point at another interpreter.
os.environ.setdefault("JUPYTER_PREFER_ENV_PATH", "1")

project = "EventCore Lab"
author = "EventCore Lab contributors"
copyright = "EventCore Lab contributors"

extensions = ["myst_nb", "sphinx.ext.graphviz", "sphinx.ext.autodoc", "eventcore_reference"]
exclude_patterns = ["_build", "_static", "_ext", "**/.ipynb_checkpoints", "**/README.md"]

# API reference (reference/api.md): signatures with their type hints, members in source order
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"show-inheritance": True}

# MyST markdown
myst_enable_extensions = ["colon_fence", "deflist", "dollarmath"]
myst_heading_anchors = 3

# Notebook execution (myst-nb)
nb_execution_mode = "force"
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_execution_timeout = 300
# Whatever kernel a tutorial's front matter names, run it with the .venv's
# python3 kernel, like pytest does (--nbval-current-env).
nb_kernel_rgx_aliases = {".*": "python3"}

# Diagrams from sphinx.ext.graphviz need the `dot` program (Debian: graphviz).
graphviz_output_format = "svg"

# HTML
html_theme = "sphinx_book_theme"
html_title = "EventCore Lab manual"
html_static_path = ["_static"]
html_css_files = ["eventcore.css"]  # widgets are snapshots in the book: a note says so

# Widgets without a CDN: serve RequireJS and the ipywidgets HTML manager from
# _static/vendor/ (fetched by scripts/build_book.sh) instead of myst-nb's CDN
# defaults. "cdn-only" stops the manager from falling back to a public CDN for
# third-party widget modules; the CDN base is relative to the tutorial pages.
VENDOR = HERE / "_static" / "vendor"
if (VENDOR / "require.js").is_file() and (VENDOR / "html-manager" / "embed-amd.js").is_file():
    nb_ipywidgets_js = {
        "vendor/require.js": {},
        "vendor/html-manager/embed-amd.js": {
            "data-jupyter-widgets-cdn": "../_static/vendor/",
            "data-jupyter-widgets-cdn-only": "true",
        },
    }
else:
    print("book/conf.py: no _static/vendor/; widgets would load from a CDN (use scripts/build_book.sh)")
