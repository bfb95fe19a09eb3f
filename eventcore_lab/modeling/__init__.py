"""Event modeling: describe a domain as events, commands, read models and automations on a timeline,
derive that description from the code, draw it as a board, and check it against recorded history."""

from .board import COLOURS, Board, GraphvizMissing
from .checks import HistoryReport, check_history, run_specs
from .derive import command_emits, consumed_events, derive_model, field_categories
from .model import (
    Automation,
    Element,
    EventModel,
    Flow,
    Kind,
    Slice,
    SpecReport,
    SpecResult,
    automation,
    category,
)
from .timeline import Timeline, timeline

__all__ = [
    "COLOURS",
    "Automation",
    "Board",
    "Element",
    "EventModel",
    "Flow",
    "GraphvizMissing",
    "HistoryReport",
    "Kind",
    "Slice",
    "SpecReport",
    "SpecResult",
    "Timeline",
    "automation",
    "category",
    "check_history",
    "command_emits",
    "consumed_events",
    "derive_model",
    "field_categories",
    "run_specs",
    "timeline",
]
