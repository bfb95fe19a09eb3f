"""The stored token format stays readable: tokens written by earlier code keep decrypting, and new tokens
are what an independent AES-GCM decoder of the documented format reads. Also what the leaner write
path must keep: a nonce per field, and the store's own error for a malformed expectation."""

from __future__ import annotations

import base64
import re
from typing import Annotated

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from eventcore_lab import Event, EventToWrite, MemoryStore
from eventcore_lab.core.errors import InvalidArgument
from eventcore_lab.examples.customers import CustomerEmailChanged, CustomerRegistered, customer_stream
from eventcore_lab.security import (
    DecryptionFailed,
    PersonalData,
    ProtectedStore,
    SubjectKey,
    associated_data,
    decrypt,
    encrypt,
)

KEY_ID = "0123456789abcdef0123456789abcdef"
MATERIAL = bytes(range(32))
# Written by the first release of ProtectedStore (AES-256-GCM, key MATERIAL, fixed nonces for the
# record), for stream customer-c1, version 1. The second one holds base64url's '-' and '_'.
NAME_TOKEN = f"pd1:{KEY_ID}:AAECAwQFBgcICQoLBma3O4mKtH7hIPTuibn3hDt82leFiX5MG0oe3w=="
EMAIL_TOKEN = f"pd1:{KEY_ID}:ZGVmZ2hpamtsbW5vKX-_TUbGaN5bGj6FqgkP0yGta1raEgtEQsOfPN9fkhoICI0="


class OneKey:
    """A key store (the public KeyStore protocol) holding one known key, as a restored backup would."""

    def __init__(self, key: SubjectKey) -> None:
        self.key = key

    def active_key(self, subject: str) -> SubjectKey | None:
        return self.key if subject == self.key.subject else None

    def ensure_key(self, subject: str) -> SubjectKey:
        key = self.active_key(subject)
        if key is None:
            raise AssertionError("this test writes no new subject")
        return key

    def rotate(self, subject: str) -> SubjectKey:
        raise AssertionError("this test rotates nothing")

    def get(self, key_id: str) -> SubjectKey | None:
        return self.key if key_id == self.key.key_id else None

    def forget(self, subject: str) -> int:
        return 0

    def key_ids(self, subject: str) -> list[str]:
        return [self.key.key_id] if subject == self.key.subject else []

    def index_key(self) -> bytes:
        return bytes(32)


def test_tokens_written_by_the_first_release_still_decrypt() -> None:
    key = SubjectKey(KEY_ID, "c1", MATERIAL)
    aad = associated_data("customer-c1", 1)
    assert decrypt(key, NAME_TOKEN, aad, "here") == "Ada Lovelace"
    assert decrypt(key, EMAIL_TOKEN, aad, "here") == "ada+?/>@example.com"
    with pytest.raises(DecryptionFailed, match="failed authentication"):
        decrypt(key, NAME_TOKEN, associated_data("customer-c1", 2), "there")


def test_a_store_holding_first_release_tokens_reads_them_in_clear() -> None:
    inner = MemoryStore()
    old = CustomerRegistered(customer_id="c1", name=NAME_TOKEN, email=EMAIL_TOKEN, email_index="i")
    inner.append([EventToWrite(customer_stream("c1"), old)])
    store = ProtectedStore(inner, OneKey(SubjectKey(KEY_ID, "c1", MATERIAL)))
    payload = store.read_stream(customer_stream("c1"))[0].payload
    assert (payload.name, payload.email) == ("Ada Lovelace", "ada+?/>@example.com")
    # new events of the same subject go on under the same format, next to the old ones
    store.append([EventToWrite(customer_stream("c1"), CustomerEmailChanged("c1", "ada@new.example", "i"))])
    raw = inner.read_stream(customer_stream("c1"))[1].payload.email
    assert raw.startswith(f"pd1:{KEY_ID}:")
    assert [e.payload.email for e in ProtectedStore(inner, store.keys).read_stream("customer-c1")] == [
        "ada+?/>@example.com",
        "ada@new.example",
    ]


class Profile(Event, frozen=True):
    registration = "on_first_use"
    event_type = "test.TokenFormatProfile"

    customer_id: str
    name: Annotated[str, PersonalData(subject="customer_id")]
    email: Annotated[str, PersonalData(subject="customer_id")]
    nickname: Annotated[str, PersonalData(subject="customer_id")]


_FORMAT = re.compile(r"pd1:(?P<key>[0-9a-f]{32}):(?P<data>[A-Za-z0-9_-]+={0,2})")


@pytest.mark.parametrize("value", ["", "Ada", "ada+?/>@example.com", "é" * 100, "x" * 5000])
def test_new_tokens_follow_the_documented_format(value: str) -> None:
    """pd1:<key id>:<base64url(12-byte nonce || ciphertext and 16-byte tag)>, read here with the
    cryptography library directly rather than through our own decoder."""
    key = SubjectKey(KEY_ID, "c1", MATERIAL)
    aad = associated_data("customer-c1", 7)
    token = encrypt(key, value, aad)
    parts = _FORMAT.fullmatch(token)
    assert parts is not None and parts["key"] == KEY_ID
    raw = base64.urlsafe_b64decode(parts["data"])
    assert len(raw) == 12 + len(value.encode()) + 16
    assert AESGCM(MATERIAL).decrypt(raw[:12], raw[12:], aad).decode() == value


def test_every_field_of_one_event_gets_its_own_nonce_and_token() -> None:
    """Sealing an event draws the nonces of all its fields at once: they must still differ per field."""
    inner = MemoryStore()
    store = ProtectedStore(inner, OneKey(SubjectKey(KEY_ID, "c1", MATERIAL)))
    store.append([EventToWrite("p", Profile(customer_id="c1", name="A", email="A", nickname="A"))])
    raw = inner.read_stream("p")[0].payload
    tokens = [raw.name, raw.email, raw.nickname]
    nonces = {base64.urlsafe_b64decode(t.split(":", 2)[2])[:12] for t in tokens}
    assert len(nonces) == 3 and len(set(tokens)) == 3
    clear = store.read_stream("p")[0].payload
    assert (clear.name, clear.email, clear.nickname) == ("A", "A", "A")


@pytest.mark.parametrize("expected", [["customer-c1"], "customer-c1", 5])
def test_an_expectation_that_is_no_mapping_gets_the_store_error_and_writes_nothing(expected: object) -> None:
    store = ProtectedStore(MemoryStore(), OneKey(SubjectKey(KEY_ID, "c1", MATERIAL)))
    event = CustomerRegistered(customer_id="c1", name="Ada", email="ada@example.com", email_index="i")
    with pytest.raises(InvalidArgument, match="expected must map stream ids"):
        store.append([EventToWrite(customer_stream("c1"), event)], expected)  # type: ignore[arg-type]
    assert store.inner.head() == 0
