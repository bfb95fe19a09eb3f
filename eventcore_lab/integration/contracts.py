"""Integration event contracts: what a service promises to publish, and whether a consumer can read it.

A contract is an event type, a schema version and the JSON Schema of its payload (derived from the
event class with msgspec). Producers list theirs in a :class:`ContractCatalog` that consumers can read
(``to_json``). A consumer states its expectations as a contract of its *own* class; the check answers
"can every payload the producer may send be decoded into the consumer's class?" the same way schema
evolution does within one service: extra producer fields are ignored, a field the consumer needs must
always be sent, with a type the consumer accepts (an integer where a number is expected is fine).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import msgspec

from ..core.errors import InvalidFormat
from .errors import IncompatibleContract


class IntegrationContract(msgspec.Struct, frozen=True, kw_only=True):
    """The published shape of one integration event type at one schema version."""

    event_type: str
    version: int = 1
    service: str
    schema: dict[str, Any]

    @classmethod
    def of(
        cls, event_class: type[Any], *, service: str, version: int = 1, event_type: str | None = None
    ) -> IntegrationContract:
        """The contract of ``event_class`` (its payload schema as msgspec describes it)."""
        if not isinstance(version, int) or version < 1:
            raise InvalidFormat(f"a contract version is an int >= 1, got {version!r}")
        name = event_type or getattr(event_class, "event_type", None) or event_class.__name__
        try:
            schema = msgspec.json.schema(event_class)
        except TypeError as exc:
            raise InvalidFormat(f"cannot describe {event_class.__qualname__} as JSON Schema: {exc}") from exc
        return cls(event_type=name, version=version, service=service, schema=schema)


class ContractCatalog:
    """The contracts a producer publishes, by event type and version."""

    def __init__(self, contracts: Iterable[IntegrationContract] = ()) -> None:
        self._contracts: dict[tuple[str, int], IntegrationContract] = {}
        for contract in contracts:
            self.add(contract)

    def add(self, contract: IntegrationContract) -> IntegrationContract:
        """List ``contract``; a different schema under a listed (type, version) is an error."""
        key = (contract.event_type, contract.version)
        old = self._contracts.get(key)
        if old is not None and old.schema != contract.schema:
            raise InvalidFormat(
                f"{contract.event_type} v{contract.version} is already published with another schema; "
                "publish the change as a new version"
            )
        self._contracts[key] = contract
        return contract

    def publish(self, event_class: type[Any], *, service: str, version: int = 1) -> IntegrationContract:
        return self.add(IntegrationContract.of(event_class, service=service, version=version))

    def __iter__(self) -> Iterator[IntegrationContract]:
        return iter(sorted(self._contracts.values(), key=lambda c: (c.event_type, c.version)))

    def __len__(self) -> int:
        return len(self._contracts)

    def latest(self, event_type: str) -> IntegrationContract | None:
        versions = [c for (t, _), c in self._contracts.items() if t == event_type]
        return max(versions, key=lambda c: c.version) if versions else None

    def version_of(self, event_type: str) -> int:
        """The schema version messages of ``event_type`` carry (1 when it has no contract)."""
        latest = self.latest(event_type)
        return latest.version if latest is not None else 1

    def check(self, consumer: IntegrationContract) -> list[str]:
        """Problems of ``consumer`` against the latest contract of its event type ([] = compatible)."""
        producer = self.latest(consumer.event_type)
        if producer is None:
            return [f"the producer publishes no contract for {consumer.event_type!r}"]
        return compatibility_problems(producer, consumer)

    def require(self, consumer: IntegrationContract) -> None:
        problems = self.check(consumer)
        if problems:
            raise IncompatibleContract(consumer.event_type, problems)

    def to_json(self) -> bytes:
        return msgspec.json.encode(list(self))

    @classmethod
    def from_json(cls, data: bytes | str) -> ContractCatalog:
        try:
            return cls(msgspec.json.decode(data, type=list[IntegrationContract]))
        except msgspec.DecodeError as exc:
            raise InvalidFormat(f"not a contract catalog: {exc}") from exc


def compatibility_problems(producer: IntegrationContract, consumer: IntegrationContract) -> list[str]:
    """Why ``consumer`` cannot decode every payload ``producer`` may publish ([] when it can)."""
    if producer.event_type != consumer.event_type:
        return [f"event types differ: producer {producer.event_type!r}, consumer {consumer.event_type!r}"]
    problems: list[str] = []
    _compare(producer.schema, producer.schema, consumer.schema, consumer.schema, "payload", problems)
    return problems


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    seen = 0
    while "$ref" in schema and seen < 32:
        ref = schema["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#/$defs/"):
            raise InvalidFormat(f"only local $defs references are supported, got {ref!r}")
        schema = root.get("$defs", {})[ref.removeprefix("#/$defs/")]
        seen += 1
    return schema


def _types(schema: dict[str, Any], root: dict[str, Any]) -> set[str] | None:
    """The JSON types a schema admits; None for "anything"."""
    schema = _resolve(schema, root)
    if "anyOf" in schema:
        found: set[str] = set()
        for option in schema["anyOf"]:
            kinds = _types(option, root)
            if kinds is None:
                return None
            found |= kinds
        return found
    if "type" in schema:
        kind = schema["type"]
        return set(kind) if isinstance(kind, list) else {kind}
    if "enum" in schema:
        return {type_name(v) for v in schema["enum"]}
    if "const" in schema:
        return {type_name(schema["const"])}
    return None


def type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _option(schema: dict[str, Any], root: dict[str, Any], kind: str) -> dict[str, Any]:
    """The part of ``schema`` that describes values of JSON type ``kind``."""
    schema = _resolve(schema, root)
    for option in schema.get("anyOf", ()):
        kinds = _types(option, root)
        if kinds is None or kind in kinds or (kind == "integer" and "number" in kinds):
            return _resolve(option, root)
    return schema


def _compare(
    prod: dict[str, Any],
    prod_root: dict[str, Any],
    cons: dict[str, Any],
    cons_root: dict[str, Any],
    path: str,
    problems: list[str],
) -> None:
    cons_types = _types(cons, cons_root)
    if cons_types is None:
        return
    prod_types = _types(prod, prod_root)
    if prod_types is None:
        problems.append(f"{path}: producer may send any value, consumer accepts only {sorted(cons_types)}")
        return
    accepted = cons_types | ({"integer"} if "number" in cons_types else set())
    extra = prod_types - accepted
    if extra:
        problems.append(f"{path}: producer may send {sorted(extra)}, consumer accepts {sorted(cons_types)}")
    for kind in prod_types & accepted:
        p = _option(prod, prod_root, kind)
        c = _option(cons, cons_root, kind)
        if "enum" in c:
            missing = [v for v in p.get("enum", []) if v not in c["enum"]]
            if missing or "enum" not in p:
                problems.append(
                    f"{path}: producer may send values the consumer's enum lacks: {missing or 'any'}"
                )
        if kind == "string" and c.get("format") and p.get("format") != c.get("format"):
            problems.append(
                f"{path}: consumer expects format {c['format']!r}, producer sends {p.get('format')!r}"
            )
        if kind == "object":
            _compare_object(p, prod_root, c, cons_root, path, problems)
        if kind == "array" and isinstance(p.get("items"), dict) and isinstance(c.get("items"), dict):
            _compare(p["items"], prod_root, c["items"], cons_root, f"{path}[]", problems)


def _compare_object(
    prod: dict[str, Any],
    prod_root: dict[str, Any],
    cons: dict[str, Any],
    cons_root: dict[str, Any],
    path: str,
    problems: list[str],
) -> None:
    prod_props: dict[str, Any] = prod.get("properties", {})
    prod_required = set(prod.get("required", ()))
    cons_props: dict[str, Any] = cons.get("properties", {})
    for name in cons.get("required", ()):
        if name not in prod_props:
            problems.append(f"{path}.{name}: consumer requires it, producer does not send it")
        elif name not in prod_required:
            problems.append(f"{path}.{name}: consumer requires it, producer may leave it out")
    for name, cons_schema in cons_props.items():
        if name in prod_props:
            _compare(prod_props[name], prod_root, cons_schema, cons_root, f"{path}.{name}", problems)
