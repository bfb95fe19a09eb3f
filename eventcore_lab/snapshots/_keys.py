"""What a snapshot is valid for: the fold (class, declared version, and its code) and the streams.

A snapshot of folded state is only as good as the fold that made it. Keying on the class name alone would
let a changed ``apply`` resume from state computed by the old one, silently, so the key also carries
the declared ``fold_version`` and a fingerprint of the bytecode of ``initial_state`` and ``apply``:
editing either makes old snapshots miss instead of lie.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from types import CodeType
from typing import Any


def _code_bytes(code: CodeType) -> bytes:
    parts = [code.co_code, repr(code.co_names).encode()]
    for const in code.co_consts:
        parts.append(_code_bytes(const) if isinstance(const, CodeType) else repr(const).encode())
    return b"\x00".join(parts)


def fold_key(command_class: type) -> str:
    """``module.QualName@version#fingerprint`` of a command class's fold."""
    digest = hashlib.sha256()
    for method in ("initial_state", "apply"):
        function: Any = getattr(command_class, method, None)
        code = getattr(function, "__code__", None)
        digest.update(_code_bytes(code) if code is not None else repr(function).encode())
    version = getattr(command_class, "fold_version", 1)
    return f"{command_class.__module__}.{command_class.__qualname__}@{version}#{digest.hexdigest()[:16]}"


def streams_key(stream_ids: Iterable[str]) -> str:
    """The streams a fold read, order-free (a fold over a, b is the same as over b, a)."""
    return "\x1f".join(sorted(set(stream_ids)))
