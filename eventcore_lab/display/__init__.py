"""The house style of what the lab shows: tables (:func:`tidy`) and plots (:func:`palette`,
:func:`use_house_style`, :func:`plot_problems`), so that every notebook reads the same way; and
notebooks saved from JupyterLab without machine-specific metadata (:func:`drop_machine_metadata`)."""

from ._audit import figure_report, min_text_px, watch_figures
from ._frames import tidy
from ._notebook_files import drop_machine_metadata
from ._plots import palette, plot_problems, use_house_style

__all__ = [
    "drop_machine_metadata",
    "figure_report",
    "min_text_px",
    "palette",
    "plot_problems",
    "tidy",
    "use_house_style",
    "watch_figures",
]
