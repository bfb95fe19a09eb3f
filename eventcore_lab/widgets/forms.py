"""A form generated from a command's dataclass fields: one input per field, typed by its annotation.

Parsing is separate from the widgets (:func:`parse_value`) so that it can be tested and reused without a
browser; the widgets only carry text, numbers and choices.
"""

from __future__ import annotations

import dataclasses
import enum
import html
import json
import types
import typing
from datetime import date, datetime
from typing import Any

import ipywidgets as widgets

from ..core.errors import InvalidFormat

_LIST_TYPES = (list, tuple, set, frozenset)


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(annotation)) == 2:
            return args[0], True
    return annotation, False


def parse_value(annotation: Any, raw: Any, field_name: str) -> Any:
    """Turn what an input holds into a value of ``annotation``; raises InvalidFormat naming the field."""
    inner, optional = _unwrap_optional(annotation)
    if optional and (raw is None or raw == ""):
        return None
    origin = typing.get_origin(inner) or inner
    try:
        if isinstance(origin, type) and issubclass(origin, enum.Enum):
            return raw if isinstance(raw, origin) else origin(raw)
        if origin in _LIST_TYPES:
            (item,) = typing.get_args(inner)[:1] or (str,)
            parts = (
                [p.strip() for p in str(raw).split(",") if p.strip()] if isinstance(raw, str) else list(raw)
            )
            return origin(parse_value(item, p, field_name) for p in parts)
        if origin is bool:
            return bool(raw)
        if origin is int:
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError(raw)
            return int(raw)
        if origin is float:
            return float(raw)
        if origin is str:
            return str(raw)
        if origin is datetime:
            return raw if isinstance(raw, datetime) else datetime.fromisoformat(str(raw))
        if origin is date:
            return raw if isinstance(raw, date) else date.fromisoformat(str(raw))
        return json.loads(raw) if isinstance(raw, str) else raw
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        name = getattr(inner, "__name__", str(inner))
        raise InvalidFormat(f"field {field_name!r}: {raw!r} is not a valid {name}") from exc


class FormInvalid(InvalidFormat):
    """Some inputs of a form do not make a command; ``errors`` maps each such field to what is wrong."""

    def __init__(self, command: str, errors: dict[str, str]) -> None:
        self.errors = dict(errors)
        listed = "; ".join(f"{name}: {problem}" for name, problem in errors.items())
        super().__init__(f"{command} cannot be built: {listed}")


def placeholder_for(annotation: Any, *, stream: bool = False) -> str:
    """What to type, in words a newcomer reads (not a type name such as ``str``)."""
    inner, optional = _unwrap_optional(annotation)
    origin = typing.get_origin(inner) or inner
    if stream:
        hint = "stream id, e.g. account-1"
    elif origin in _LIST_TYPES:
        (item,) = typing.get_args(inner)[:1] or (str,)
        hint = f"comma-separated: {placeholder_for(item)}, ..."
    elif origin is datetime:
        hint = "date and time, e.g. 2024-01-31T09:30"
    elif origin is date:
        hint = "date, e.g. 2024-01-31"
    elif origin is str:
        hint = "text"
    elif origin in (int, float):
        hint = "number"
    else:
        hint = 'JSON, e.g. {"key": 1}'
    return f"{hint} (optional)" if optional else hint


def input_for(field: dataclasses.Field[Any], annotation: Any, stream: bool) -> widgets.Widget:
    """The input widget for one field, pre-filled with its default, labelled, with a placeholder."""
    inner, optional = _unwrap_optional(annotation)
    origin = typing.get_origin(inner) or inner
    default = field.default if field.default is not dataclasses.MISSING else None
    if field.default_factory is not dataclasses.MISSING:
        default = field.default_factory()
    label = f"{field.name} (stream)" if stream else field.name
    common: dict[str, Any] = {
        "description": label,
        "tooltip": f"{field.name}: {getattr(inner, '__name__', inner)}",
        "style": {"description_width": "130px"},
        "layout": {"width": "calc(100% - 6px)"},  # the widget margins (2 px a side) stay inside
    }
    if isinstance(origin, type) and issubclass(origin, enum.Enum):
        options = [(member.name, member) for member in origin]
        box: widgets.Widget = widgets.Dropdown(options=options, value=default or options[0][1], **common)
    elif origin is bool:
        box = widgets.Checkbox(value=bool(default), indent=False, **common)
    elif origin is int and not optional:  # an optional number is a text box: blank means None
        box = widgets.IntText(value=default or 0, **common)
    elif origin is float and not optional:
        box = widgets.FloatText(value=default or 0.0, **common)
    else:
        text = (
            ", ".join(map(str, default or ()))
            if origin in _LIST_TYPES
            else ("" if default is None else str(default))
        )
        box = widgets.Text(value=text, placeholder=placeholder_for(annotation, stream=stream), **common)
    box.add_class("ec-field")
    box.add_class(f"ec-field-{field.name}")
    return box


class CommandForm(widgets.VBox):
    """Inputs for every field of ``command_class``; :meth:`build` makes the command from them.

    A field that does not parse (or a stream id left empty) gets its message right under its input;
    :meth:`build` raises :class:`FormInvalid` listing every such field at once.
    """

    def __init__(self, command_class: type, **kwargs: Any) -> None:
        if not dataclasses.is_dataclass(command_class):
            raise InvalidFormat(f"{command_class!r} is not a command class (a dataclass)")
        self.command_class = command_class
        hints = typing.get_type_hints(command_class)
        self.stream_fields = set(getattr(command_class, "__stream_fields__", ()))
        self.annotations = {f.name: hints.get(f.name, str) for f in dataclasses.fields(command_class)}
        self.inputs: dict[str, widgets.Widget] = {
            f.name: input_for(f, self.annotations[f.name], f.name in self.stream_fields)
            for f in dataclasses.fields(command_class)
            if f.init
        }
        self.errors: dict[str, widgets.HTML] = {}
        rows = []
        for name, box in self.inputs.items():
            message = widgets.HTML(layout={"margin": "0 0 0 138px"})
            message.add_class("ec-field-error")
            message.add_class(f"ec-field-error-{name}")
            self.errors[name] = message
            rows.append(widgets.VBox([box, message], layout={"width": "100%"}))
        super().__init__(children=rows, **kwargs)
        self.add_class("ec-command-form")
        self.add_class(f"ec-form-{command_class.__name__}")  # a stable hook for browser tests

    def set(self, **values: Any) -> CommandForm:
        """Fill inputs (tests and notebooks use this to script the form)."""
        for name, value in values.items():
            if name not in self.inputs:
                raise InvalidFormat(f"{self.command_class.__name__} has no field {name!r}")
            box = self.inputs[name]
            box.value = ", ".join(map(str, value)) if isinstance(value, list | tuple) else value
        return self

    def values(self) -> dict[str, Any]:
        """Every input parsed; :class:`FormInvalid` names each field that does not parse."""
        parsed: dict[str, Any] = {}
        problems: dict[str, str] = {}
        for name, box in self.inputs.items():
            if name in self.stream_fields and isinstance(box.value, str) and not box.value.strip():
                problems[name] = "a stream id is required"
                continue
            try:
                parsed[name] = parse_value(self.annotations[name], box.value, name)
            except InvalidFormat as error:
                problems[name] = str(getattr(error, "message", error)).removeprefix(f"field {name!r}: ")
        self.show_errors(problems)
        if problems:
            raise FormInvalid(self.command_class.__name__, problems)
        return parsed

    def show_errors(self, problems: dict[str, str]) -> None:
        """Put each message under its field (and clear the others)."""
        for name, message in self.errors.items():
            problem = problems.get(name)
            message.value = (
                f'<span style="color:#b71c1c;font-size:12px">⚠ {html.escape(problem)}</span>'
                if problem
                else ""
            )

    def build(self) -> Any:
        """The command the inputs describe; FormInvalid (naming the fields) when some do not parse."""
        return self.command_class(**self.values())
