"""AES-256-GCM tokens for personal-data fields, and HMAC-SHA256 blind indexes.

A token is ``pd1:<key id>:<base64url(nonce || ciphertext+tag)>``: it names its key (so old keys keep
decrypting after a rotation) and fits in the ``str`` field it replaces. Each encryption draws a fresh
random 96-bit nonce. The associated data binds a token to the event (stream and version) it was made
for, so a token pasted into another event fails authentication instead of revealing anything.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import unicodedata
from collections.abc import Mapping
from functools import cache
from typing import Any

from ._errors import DecryptionFailed
from ._keys import SubjectKey

PREFIX = "pd1:"
NONCE_BYTES = 12
#: What a personal-data field reads as once its subject's keys are gone (or for callers not allowed).
REDACTED = "[redacted]"


@cache
def _aead() -> tuple[Any, type[Exception]]:
    """The AES-GCM class and its authentication error, imported on first use: ``cryptography`` is the
    optional ``security`` extra, so that policies, limits and audit work without it."""
    try:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ImportError(
            "encrypted personal data needs the 'cryptography' package: install eventcore-lab[security]"
        ) from exc
    return AESGCM, InvalidTag


def associated_data(stream_id: str, version: int) -> bytes:
    """The bytes a token is bound to: the one event it belongs to, named by stream and version.

    Not by event type or field name: an upcaster may rename either (schema evolution), and history must
    still decrypt after it does. Stream ids cannot hold control characters, so the separator is safe.
    """
    return f"pd1\x1f{stream_id}\x1f{version}".encode()


def _cipher(key: SubjectKey) -> Any:
    """The key's AES-GCM object; making one costs more than an encryption, so each key keeps its own."""
    cipher = key._cipher
    if cipher is None:
        cipher = key._cipher = _aead()[0](key.material)
    return cipher


def encrypt(key: SubjectKey, plaintext: str, aad: bytes) -> str:
    """A token of ``plaintext`` made with ``key`` and bound to ``aad``, under a fresh random nonce."""
    return _token(key, plaintext, aad, os.urandom(NONCE_BYTES))


def encrypt_fields(clear: Mapping[str, tuple[SubjectKey, str]], aad: bytes) -> dict[str, str]:
    """Tokens of the personal-data fields of one event, by field name, all bound to its ``aad``: one
    token per field, each under its own random 96-bit nonce; the nonces are drawn from the OS in one
    call (a call costs about as much as an encryption). The tokens are exactly those :func:`encrypt`
    makes."""
    nonces = os.urandom(NONCE_BYTES * len(clear))
    tokens = {}
    at = 0
    for name, (key, plaintext) in clear.items():
        tokens[name] = _token(key, plaintext, aad, nonces[at : at + NONCE_BYTES])
        at += NONCE_BYTES
    return tokens


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _token(key: SubjectKey, plaintext: str, aad: bytes, nonce: bytes) -> str:
    """``pd1:<key id>:<base64url(nonce || ciphertext+tag)>``; ``nonce`` must be fresh from the OS."""
    sealed = (key._cipher or _cipher(key)).encrypt(nonce, plaintext.encode(), aad)
    raw = binascii.b2a_base64(nonce + sealed, newline=False).translate(_URLSAFE)
    return f"{PREFIX}{key.key_id}:{raw.decode()}"


# A token in full: prefix, a 32-hex-digit key id, and base64url of at least a nonce and a tag (28 bytes).
_TOKEN = re.compile(r"pd1:[0-9a-f]{32}:[A-Za-z0-9_-]{36,}={0,2}")


def is_token(value: object) -> bool:
    """Whether ``value`` is a well-formed token; plaintext that merely starts like one is plaintext."""
    return isinstance(value, str) and value.startswith(PREFIX) and _TOKEN.fullmatch(value) is not None


def token_key_id(token: str) -> str:
    """The id of the key a token was made with."""
    parts = token.split(":", 2)
    if len(parts) != 3 or not parts[1]:
        raise DecryptionFailed("a personal-data token is malformed (expected pd1:<key id>:<data>)")
    return parts[1]


def decrypt(key: SubjectKey, token: str, aad: bytes, where: str) -> str:
    """The plaintext of ``token``; DecryptionFailed (naming ``where``, never the key) if it does not
    authenticate against ``aad``."""
    if token_key_id(token) != key.key_id:
        raise DecryptionFailed(f"the token of {where} was not made with key {key.key_id}")
    invalid_tag = _aead()[1]
    try:
        raw = base64.urlsafe_b64decode(token.split(":", 2)[2])
        plain = _cipher(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad)
    except (invalid_tag, ValueError) as exc:
        raise DecryptionFailed(
            f"the personal data of {where} failed authentication: it was altered or copied from another event"
        ) from exc
    return plain.decode()


def blind_index(index_key: bytes, field: str, value: str) -> str:
    """A keyed HMAC-SHA256 of a normalised value: equal values give equal indexes, searchable without
    decrypting, and without the key nobody can test guesses against it."""
    normal = unicodedata.normalize("NFKC", value).strip().casefold()
    return hmac.new(index_key, f"{field}\x00{normal}".encode(), hashlib.sha256).hexdigest()
