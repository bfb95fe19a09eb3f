"""Build an event model from the code itself, so that the board cannot drift from what runs.

What is read, in order of trust:

* **commands**: the streams come from ``stream()`` fields (``Command.__stream_fields__``). Which events a
  command writes, and to which stream category, comes from an explicit class attribute
  ``emits = {EventClass: "category", ...}`` (or a tuple of event classes) when there is one; otherwise from
  the source of ``handle``: every ``emit(<stream>, <Event>(...))`` call, where the stream is a field, a
  ``<category>_stream(...)`` call or a local variable assigned from either;
* **stream categories of fields**: ``stream_categories = {"field": "category"}`` when declared; otherwise
  the ``<category>_stream(...)`` helpers passed to the class by its own constructors (``cls(...)`` calls in
  classmethods such as ``new``); otherwise the field's name (``from_account`` -> ``account``,
  ``task_id`` -> ``task``);
* **projections**: the events they handle: ``handled_types()`` (``@handles``), a ``consumes`` attribute, or
  the event classes named in their ``apply``;
* **automations**: :class:`~eventcore_lab.modeling.model.Automation` objects (what they read and issue).
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
import types
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..core.command import Command
from ..core.errors import InvalidFormat
from ..core.registry import EventRegistry, default_registry
from ..core.tags import TAGS_ATTRIBUTE
from .model import Automation, Element, EventModel, Kind

# -- commands ---------------------------------------------------------------------------------------------


def field_categories(command: type[Command[Any]]) -> dict[str, str]:
    """The stream category of each stream field of ``command``."""
    declared = dict(getattr(command, "stream_categories", None) or {})
    unknown = set(declared) - set(command.__stream_fields__)
    if unknown:
        raise InvalidFormat(
            f"{command.__name__}.stream_categories names fields that are not stream() fields: "
            f"{', '.join(sorted(unknown))}"
        )
    from_constructors = _categories_from_constructors(command)
    return {
        name: declared.get(name) or from_constructors.get(name) or _category_from_field_name(name)
        for name in command.__stream_fields__
    }


def command_emits(command: type[Command[Any]]) -> dict[type, tuple[str, ...]]:
    """Event classes ``command`` can write, each with the stream categories it writes them to."""
    declared = getattr(command, "emits", None)
    if declared is not None:
        return _declared_emits(command, declared)
    fields = field_categories(command)
    found = _emits_from_source(command, fields)
    if found is None:  # no source (e.g. defined in an exec'd string): names the bytecode mentions
        default = tuple(dict.fromkeys(fields.values()))
        found = {cls: default for cls in _event_classes_named(command.handle)}
    return found


def _declared_emits(command: type, declared: Any) -> dict[type, tuple[str, ...]]:
    fields = field_categories(command)
    default = tuple(dict.fromkeys(fields.values()))
    if isinstance(declared, Mapping):
        items = [
            (cls, (lanes,) if isinstance(lanes, str) else tuple(lanes)) for cls, lanes in declared.items()
        ]
    elif isinstance(declared, Iterable) and not isinstance(declared, str | bytes):
        items = [(cls, default) for cls in declared]
    else:
        raise InvalidFormat(f"{command.__name__}.emits must be event classes or a mapping, got {declared!r}")
    for cls, lanes in items:
        if not isinstance(cls, type):
            raise InvalidFormat(f"{command.__name__}.emits lists {cls!r}, which is not an event class")
        if not lanes:
            raise InvalidFormat(f"{command.__name__}.emits gives no stream category for {cls.__name__}")
    return dict(items)


def _source_tree(function: Any) -> ast.FunctionDef | None:
    try:
        source = textwrap.dedent(inspect.getsource(function))
    except (OSError, TypeError):
        return None
    node = ast.parse(source).body[0]
    return node if isinstance(node, ast.FunctionDef) else None


def _emits_from_source(command: type, fields: dict[str, str]) -> dict[type, tuple[str, ...]] | None:
    handle = command.handle  # type: ignore[attr-defined]
    tree = _source_tree(handle)
    if tree is None:
        return None
    names = _globals_of(handle)
    assigned = _assignments(tree)
    default = tuple(dict.fromkeys(fields.values()))
    result: dict[type, tuple[str, ...]] = {}
    calls = [
        n for n in ast.walk(tree) if isinstance(n, ast.Call) and _callee(n) == "emit" and len(n.args) >= 2
    ]
    for call in sorted(calls, key=lambda n: (n.lineno, n.col_offset)):  # source order = timeline order
        event_class = _event_class_of(call.args[1], assigned, names)
        if event_class is None:
            continue
        lane = _lane_of(call.args[0], assigned, fields)
        lanes = (lane,) if lane else default
        result[event_class] = tuple(dict.fromkeys(result.get(event_class, ()) + lanes))
    for cls in _event_classes_named(handle):  # built elsewhere in handle, passed on to emit later
        result.setdefault(cls, default)
    return result


def _globals_of(function: Any) -> dict[str, Any]:
    return dict(getattr(function, "__globals__", {}))


def _callee(call: ast.Call) -> str | None:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _assignments(tree: ast.AST) -> dict[str, ast.expr]:
    """Local names bound once to an expression (later bindings win, which is good enough for lanes)."""
    found: dict[str, ast.expr] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            found[node.targets[0].id] = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            found[node.target.id] = node.value
    return found


def _event_class_of(node: ast.expr, assigned: dict[str, ast.expr], names: dict[str, Any]) -> type | None:
    if isinstance(node, ast.Name) and node.id in assigned:
        node = assigned[node.id]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        candidate = names.get(node.func.id)
        if isinstance(candidate, type) and candidate in default_registry:
            return candidate
    return None


def _lane_of(node: ast.expr, assigned: dict[str, ast.expr], fields: dict[str, str]) -> str | None:
    if isinstance(node, ast.Name) and node.id in assigned:
        node = assigned[node.id]
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
        return fields.get(node.attr)
    if isinstance(node, ast.Call):
        name = _callee(node) or ""
        if name.endswith("_stream") and len(name) > len("_stream"):
            return name.removesuffix("_stream")
    return None


def _event_classes_named(function: Any) -> list[type]:
    code = getattr(function, "__code__", None)
    if code is None:
        return []
    names = _globals_of(function)
    seen: dict[type, None] = {}
    stack: list[types.CodeType] = [code]
    while stack:
        current = stack.pop()
        for name in current.co_names:
            value = names.get(name)
            if isinstance(value, type) and value in default_registry:
                seen[value] = None
            elif value is None and name in default_registry:  # module.EventClass: an attribute name
                seen[default_registry.event_class(name)] = None
        stack.extend(c for c in current.co_consts if isinstance(c, types.CodeType))
    return list(seen)


def _categories_from_constructors(command: type) -> dict[str, str]:
    """``cls(task_stream(t), user_stream(u), ...)`` in a classmethod tells the fields' categories."""
    fields = list(getattr(command, "__dataclass_fields__", {}))
    found: dict[str, str] = {}
    for attr in vars(command).values():
        if not isinstance(attr, classmethod):
            continue
        tree = _source_tree(attr.__func__)
        if tree is None:
            continue
        for call in ast.walk(tree):
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "cls"):
                continue
            pairs = list(zip(fields, call.args, strict=False))
            pairs += [(kw.arg, kw.value) for kw in call.keywords if kw.arg]
            for name, value in pairs:
                lane = _lane_of(value, {}, {})
                if lane and name in command.__stream_fields__:  # type: ignore[attr-defined]
                    found.setdefault(name, lane)
    return found


def query_boundary(command: type[Command[Any]]) -> tuple[str, ...]:
    """What a query-based command reads, one line per query item: ``Type, Type [tag:{field}]``.

    The query is built from a command whose fields hold their own names as placeholders
    (``course_id="{course_id}"``), so the tags read as templates; () for a command of streams only, or
    one whose query cannot be built that way (then the note says only that it decides by query).
    """
    if not command.__by_query__:
        return ()
    try:
        sample = command(**{f.name: "{" + f.name + "}" for f in dataclasses.fields(command)})  # type: ignore[arg-type]
        query = sample.query()
    except Exception:  # fields that are not strings, a query that checks its input: no template
        return ("by query",)
    if query is None or query.matches_all:
        return ("by query: every event",)
    lines = []
    for item in query.items:
        tags = f" [{', '.join(item.tags)}]" if item.tags else ""
        lines.append(f"{', '.join(item.types) or 'any type'}{tags}")
    return tuple(lines)


def _tags(cls: type) -> tuple[str, ...]:
    declared = getattr(cls, TAGS_ATTRIBUTE, ())
    return tuple(declared) if isinstance(declared, tuple | list) else ()


def _category_from_field_name(name: str) -> str:
    words = [w for w in name.split("_") if w]
    for suffix in ("id", "ids", "stream", "streams"):
        if len(words) > 1 and words[-1] == suffix:
            words.pop()
    return words[-1] if words else name


# -- projections and automations --------------------------------------------------------------------------


def consumed_events(projection: Any) -> tuple[type, ...]:
    """Event classes a projection (class or instance) reacts to."""
    handled = getattr(projection, "handled_types", None)
    if callable(handled):
        return tuple(handled())
    declared = getattr(projection, "consumes", None)
    if declared is not None:
        return tuple(declared)
    apply = getattr(projection, "apply", None)
    if apply is None:
        raise InvalidFormat(f"{_display_name(projection)} is not a projection: it has no apply(event)")
    return tuple(_event_classes_named(getattr(apply, "__func__", apply)))


def _display_name(thing: Any) -> str:
    if isinstance(thing, type):
        return thing.__name__
    if isinstance(thing, Automation):
        return thing.name
    return getattr(thing, "__name__", None) or type(thing).__name__


# -- the model ----------------------------------------------------------------------------------------------


def derive_model(
    source: Any,
    *,
    name: str | None = None,
    registry: EventRegistry = default_registry,
    specs: Iterable[Any] | None = None,
    category: Callable[[str], str] | None = None,
) -> EventModel:
    """The event model of a module (its ``COMMANDS``, ``PROJECTIONS``, ``AUTOMATIONS``, ``SPECS`` if it
    lists them, else the classes it defines) or of an iterable of commands, projections and automations.

    The timeline puts each command in a slice of its own, in the order given, with the events it writes;
    each read model right after the last slice that writes an event it consumes; each automation after
    the read model it watches. ``category`` gives the lane of a stream id when ids are not all
    ``<category>-<id>`` (a module may define it as ``stream_category``); a command that decides by query
    shows its query on its note (``Element.boundary``).
    """
    commands, projections, automations, found_specs, label = _collect(source)
    if category is None and isinstance(source, types.ModuleType):
        category = getattr(source, "stream_category", None)
    model = EventModel(name or label, category=category)
    type_names = {registry.event_class(n): n for n in registry}

    def event_name(cls: type) -> str:
        return type_names.get(cls, cls.__name__)

    for command in commands:
        emits = command_emits(command)
        for cls, lanes in emits.items():
            model.add(
                Element(Kind.EVENT, event_name(cls), lanes, _fields(cls), _doc(cls), cls, tags=_tags(cls)),
                command.__name__,
            )
        model.add(
            Element(
                Kind.COMMAND,
                command.__name__,
                tuple(field_categories(command).values()),
                _fields(command),
                _doc(command),
                command,
                query_boundary(command),
            ),
            command.__name__,
        )
        model.elements[command.__name__].lanes = ()  # commands sit above the lanes; keep streams apart
        model.elements[command.__name__].source = command
        for cls in emits:
            model.connect(command.__name__, event_name(cls))

    for projection in projections:
        label_ = _display_name(projection)
        consumed = [event_name(c) for c in consumed_events(projection)]
        missing = [e for e in consumed if e not in model.elements]
        for event in missing:  # consumed but written by no command here (e.g. imported history)
            model.add(Element(Kind.EVENT, event, ("?",), source=registry.event_class(event)), event)
        home = _after_last(model, consumed) or label_
        model.add(
            Element(Kind.READ_MODEL, label_, (), _fields(projection), _doc(projection), projection), home
        )
        for event in consumed:
            model.connect(event, label_)

    for robot in automations:
        watched = _display_name(robot.reads)
        if watched not in model.elements:
            raise InvalidFormat(
                f"automation {robot.name} reads {watched}, which is not among the projections"
            )
        model.add(
            Element(Kind.AUTOMATION, robot.name, doc=_doc(robot), source=robot), model.slice_of(watched).name
        )
        model.connect(watched, robot.name)
        for command in robot.issues:
            if command.__name__ not in model.elements:
                raise InvalidFormat(
                    f"automation {robot.name} issues {command.__name__}, which is not a command here"
                )
            model.connect(robot.name, command.__name__)

    model.add_specs(*(list(found_specs) + list(specs or ())))
    return model


def _after_last(model: EventModel, events: list[str]) -> str | None:
    index = -1
    for event in events:
        if event in model.elements:
            index = max(index, model.slices.index(model.slice_of(event)))
    return model.slices[index].name if index >= 0 else None


def _collect(source: Any) -> tuple[list[type], list[Any], list[Automation], list[Any], str]:
    if isinstance(source, types.ModuleType):
        label = source.__name__.rsplit(".", 1)[-1]
        listed = any(hasattr(source, a) for a in ("COMMANDS", "PROJECTIONS", "AUTOMATIONS"))
        items: list[Any] = (
            [
                *getattr(source, "COMMANDS", ()),
                *getattr(source, "PROJECTIONS", ()),
                *getattr(source, "AUTOMATIONS", ()),
            ]
            if listed
            else [v for k, v in vars(source).items() if not k.startswith("_") and _defined_in(v, source)]
        )
        specs = list(getattr(source, "SPECS", ()))
    else:
        label, specs = "event model", []
        items = list(source)
    commands, projections, automations = [], [], []
    for item in items:
        if isinstance(item, Automation):
            automations.append(item)
        elif isinstance(item, type) and issubclass(item, Command):
            if "handle" in {n for k in item.__mro__[:-1] if k is not Command for n in vars(k)}:
                commands.append(item)
        elif _is_projection(item):
            projections.append(item)
        elif not isinstance(source, types.ModuleType):
            raise InvalidFormat(
                f"cannot put {item!r} on a board: expected a Command class, a projection or an Automation"
            )
    if not isinstance(source, types.ModuleType) and not items:
        raise InvalidFormat("derive_model needs a module or at least one command, projection or automation")
    return commands, projections, automations, specs, label


def _defined_in(value: Any, module: types.ModuleType) -> bool:
    if isinstance(value, Automation):
        return getattr(value.decide, "__module__", None) == module.__name__
    return isinstance(value, type) and value.__module__ == module.__name__


def _is_projection(item: Any) -> bool:
    if isinstance(item, type):
        return callable(getattr(item, "handled_types", None)) or (
            callable(getattr(item, "apply", None)) and hasattr(item, "name") and not issubclass(item, Command)
        )
    return callable(getattr(item, "apply", None)) and hasattr(item, "name")


def _fields(thing: Any) -> tuple[str, ...]:
    """Instance fields only: a command's ``emits`` or other ``ClassVar`` is not something it carries."""
    cls = thing if isinstance(thing, type) else type(thing)
    if dataclasses.is_dataclass(cls):
        return tuple(f.name for f in dataclasses.fields(cls))
    return tuple(getattr(cls, "__struct_fields__", ()))


def _doc(thing: Any) -> str:
    cls = thing if isinstance(thing, type) else None
    own = cls.__dict__.get("__doc__") if cls is not None else getattr(thing, "__doc__", None)
    if not own or (cls is not None and own.startswith(f"{cls.__name__}(")):  # dataclass's generated doc
        return ""
    return inspect.cleandoc(own).split("\n\n", 1)[0]
