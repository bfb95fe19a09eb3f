"""Encrypted personal data: AES-256-GCM tokens bound to their event, key rotation, blind indexes, reprs."""

from __future__ import annotations

import base64
import pickle
from typing import Annotated

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventcore_lab import Event, EventToWrite, Executor, ExpectedVersion, MemoryStore
from eventcore_lab.examples.customers import (
    ChangeEmail,
    CustomerRegistered,
    RegisterCustomer,
    customer_stream,
)
from eventcore_lab.security import (
    REDACTED,
    DecryptionFailed,
    MemoryKeyStore,
    PersonalData,
    PersonalDataError,
    ProtectedStore,
    associated_data,
    blind_index,
    decrypt,
    encrypt,
    personal_fields,
)
from eventcore_lab.security._crypto import NONCE_BYTES

KEYS = MemoryKeyStore()
KEY = KEYS.rotate("subject-1")


def _nonce(token: str) -> bytes:
    return base64.urlsafe_b64decode(token.split(":", 2)[2])[:NONCE_BYTES]


@settings(max_examples=200, deadline=None)
@given(
    st.text(max_size=300),
    st.text(min_size=1, max_size=40),
    st.integers(min_value=1, max_value=10**9),
    st.integers(min_value=1, max_value=10**9),
)
def test_decrypt_inverts_encrypt_and_a_token_fails_in_any_other_event(
    value: str, stream_id: str, version: int, other_version: int
) -> None:
    aad = associated_data(stream_id, version)
    token = encrypt(KEY, value, aad)
    assert token.startswith(f"pd1:{KEY.key_id}:")
    assert decrypt(KEY, token, aad, "here") == value
    elsewhere = [associated_data(stream_id + "x", version), associated_data("x" + stream_id, version)]
    if other_version != version:
        elsewhere.append(associated_data(stream_id, other_version))
    for wrong in elsewhere:
        with pytest.raises(DecryptionFailed, match="failed authentication"):
            decrypt(KEY, token, wrong, "there")


def test_nonces_never_repeat_across_100000_encryptions() -> None:
    aad = associated_data("customer-1", 1)
    nonces = {_nonce(encrypt(KEY, "same value", aad)) for _ in range(100_000)}
    assert len(nonces) == 100_000
    assert all(len(n) == 12 for n in list(nonces)[:10])


def test_a_tampered_token_fails_authentication() -> None:
    aad = associated_data("s", 1)
    token = encrypt(KEY, "secret", aad)
    raw = bytearray(base64.urlsafe_b64decode(token.split(":", 2)[2]))
    raw[-1] ^= 1
    forged = token.rsplit(":", 1)[0] + ":" + base64.urlsafe_b64encode(bytes(raw)).decode()
    with pytest.raises(DecryptionFailed):
        decrypt(KEY, forged, aad, "s")
    with pytest.raises(DecryptionFailed, match="malformed"):
        decrypt(KEY, "pd1:nokey", aad, "s")


def _register(store: ProtectedStore, cid: str, name: str, email: str) -> None:
    Executor(store).execute(RegisterCustomer.new(cid, name, email, store.blind_index("email", email)))


def test_stores_hold_only_tokens_and_readers_see_plaintext_or_redacted() -> None:
    store = ProtectedStore(MemoryStore(), MemoryKeyStore())
    _register(store, "c1", "Ada Lovelace", "ada@example.com")
    raw = store.inner.read_all()[0].payload
    assert raw.name.startswith("pd1:") and raw.email.startswith("pd1:")
    assert "Ada" not in msgspec.json.encode(raw).decode() and raw.customer_id == "c1"
    clear = store.read_stream(customer_stream("c1"))[0].payload
    assert (clear.name, clear.email) == ("Ada Lovelace", "ada@example.com")
    assert store.read_streams([customer_stream("c1")]).events[0].payload == clear
    with store.subscribe() as sub:
        assert sub.poll(0.1).payload == clear
    hidden = store.redacted().read_all()[0].payload
    assert (hidden.name, hidden.email, hidden.customer_id) == (REDACTED, REDACTED, "c1")


def test_commands_fold_plaintext_through_a_protected_store() -> None:
    store = ProtectedStore(MemoryStore(), MemoryKeyStore())
    _register(store, "c1", "Ada", "ada@example.com")
    executor = Executor(store)
    result = executor.execute(ChangeEmail.new("c1", "ada@new.org", store.blind_index("email", "ada@new.org")))
    assert result.events_written[0].payload.email == "ada@new.org"  # the caller gets its event back in clear
    with pytest.raises(Exception, match="unchanged"):  # the fold decrypted the current email
        executor.execute(ChangeEmail.new("c1", "ada@new.org", "x"))


def test_a_token_pasted_into_another_event_fails_on_read() -> None:
    store = ProtectedStore(MemoryStore(), MemoryKeyStore())
    _register(store, "c1", "Ada", "ada@example.com")
    stolen = store.inner.read_all()[0].payload
    # Someone with database access copies the tokens into a new event of another stream.
    store.inner.append([EventToWrite(customer_stream("c2"), stolen)])
    with pytest.raises(DecryptionFailed, match="customer-c2"):
        store.read_stream(customer_stream("c2"))
    # and the protected store refuses to write a token as if it were plaintext
    with pytest.raises(PersonalDataError, match="already holds a personal-data token"):
        store.append([EventToWrite(customer_stream("c3"), stolen)])


def test_versions_are_bound_under_every_expectation_and_with_other_writers() -> None:
    store = ProtectedStore(MemoryStore(), MemoryKeyStore())
    event = CustomerRegistered(customer_id="c1", name="N", email="e@x", email_index="i")
    store.append([EventToWrite("s", event)], {"s": ExpectedVersion.NO_STREAM})
    store.inner.append(
        [EventToWrite("s", CustomerRegistered(customer_id="c1", name="plain", email="p", email_index="i"))]
    )
    store.append([EventToWrite("s", event), EventToWrite("s", event)])  # no expectation: version read
    store.append([EventToWrite("s", event)], {"s": ExpectedVersion.ANY})
    store.append([EventToWrite("s", event)], {"s": ExpectedVersion.exact(5)})
    names = [e.payload.name for e in store.read_stream("s")]
    assert names == ["N", "plain", "N", "N", "N", "N"]
    from eventcore_lab.core.errors import VersionConflict

    with pytest.raises(VersionConflict):
        store.append([EventToWrite("s", event)], {"s": ExpectedVersion.exact(2)})
    with pytest.raises(VersionConflict):
        store.append([EventToWrite("empty", event)], {"empty": ExpectedVersion.ANY})
    assert store.head() == 6


def test_rotation_keeps_history_readable_without_reencrypting() -> None:
    keys = MemoryKeyStore()
    store = ProtectedStore(MemoryStore(), keys)
    _register(store, "c1", "Ada", "ada@example.com")
    before = store.inner.read_all()[0].payload.email
    new_id = store.rotate_key("c1")
    Executor(store).execute(ChangeEmail.new("c1", "ada@new.org", "i"))
    first, second = store.inner.read_all()
    assert first.payload.email == before  # history untouched
    assert second.payload.email.split(":")[1] == new_id != before.split(":")[1]
    assert keys.key_ids("c1")[-1] == new_id and len(keys.key_ids("c1")) == 2
    assert [e.payload.email for e in store.read_all()] == ["ada@example.com", "ada@new.org"]
    # a fresh wrapper (another process) reads both through the key store
    assert [e.payload.email for e in ProtectedStore(store.inner, keys).read_all()] == [
        "ada@example.com",
        "ada@new.org",
    ]


def test_blind_indexes_are_keyed_hmacs_of_normalised_values() -> None:
    store = ProtectedStore(MemoryStore(), MemoryKeyStore())
    a = store.blind_index("email", "Ada@Example.com ")
    assert a == store.blind_index("email", "ada@example.com") and len(a) == 64
    assert a != store.blind_index("name", "ada@example.com")
    assert a != ProtectedStore(MemoryStore(), MemoryKeyStore()).blind_index("email", "ada@example.com")
    assert blind_index(b"k" * 32, "f", "v") == blind_index(b"k" * 32, "f", "V")
    _register(store, "c1", "Ada", "ada@example.com")
    _register(store, "c2", "Bob", "bob@example.com")
    matches = [e.payload.customer_id for e in store.inner.read_all() if e.payload.email_index == a]
    assert matches == ["c1"]


def test_personal_data_declarations_are_checked() -> None:
    assert personal_fields(CustomerRegistered).fields == (("name", "customer_id"), ("email", "customer_id"))

    class BadType(Event, frozen=True):
        event_type = "security_test.BadType"
        owner: str
        age: Annotated[int, PersonalData(subject="owner")]

    class NoSubject(Event, frozen=True):
        event_type = "security_test.NoSubject"
        email: Annotated[str, PersonalData(subject="owner")]

    class Constrained(Event, frozen=True):
        event_type = "security_test.Constrained"
        owner: str
        email: Annotated[str, PersonalData(subject="owner"), msgspec.Meta(max_length=10)]

    class Optional(Event, frozen=True):
        event_type = "security_test.Optional"
        owner: str
        email: Annotated[str | None, PersonalData(subject="owner")] = None

    store = ProtectedStore(MemoryStore(), MemoryKeyStore())
    for cls, message in ((BadType, "only str"), (NoSubject, "lacks"), (Constrained, "other annotation")):
        with pytest.raises(PersonalDataError, match=message):
            personal_fields(cls)
    store.append(
        [EventToWrite("o", Optional(owner="o1")), EventToWrite("o", Optional(owner="o1", email="x@y"))]
    )
    assert [e.payload.email for e in store.read_all()] == [None, "x@y"]
    assert store.inner.read_all()[1].payload.email.startswith("pd1:")
    with pytest.raises(PersonalDataError, match="empty subject"):
        store.append([EventToWrite("o", Optional(owner="", email="x@y"))])
    assert store.head() == 2


def test_keys_never_show_in_reprs_errors_or_pickles() -> None:
    keys = MemoryKeyStore()
    store = ProtectedStore(MemoryStore(), keys)
    _register(store, "c1", "Ada", "ada@example.com")
    key = keys.active_key("c1")
    assert key is not None
    secrets = [key.material.hex(), repr(key.material), base64.b64encode(key.material).decode()]
    texts = [repr(key), str(key), repr(keys), repr(store), repr(store.redacted())]
    stolen = store.inner.read_all()[0].payload
    store.inner.append([EventToWrite("elsewhere", stolen)])
    with pytest.raises(DecryptionFailed) as failed:
        store.read_stream("elsewhere")
    texts += [str(failed.value), repr(failed.value)]
    for text in texts:
        assert not any(secret in text for secret in secrets), text
    assert "hidden" in repr(key)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(key)


@settings(max_examples=60, deadline=None)
@given(
    st.text(min_size=1, max_size=30).filter(lambda s: s.strip() == s and s.isprintable()),
    st.text(max_size=200),
    st.text(max_size=200),
)
def test_random_personal_data_round_trips_through_a_store(customer: str, name: str, email: str) -> None:
    store = ProtectedStore(MemoryStore(), MemoryKeyStore())
    event = CustomerRegistered(customer_id=customer, name=name, email=email, email_index="i")
    store.append([EventToWrite("s", event)])
    assert store.read_all()[0].payload == event
    raw = store.inner.read_all()[0].payload
    assert raw.name.startswith("pd1:") and raw.email.startswith("pd1:") and raw.customer_id == customer
    # a fresh wrapper (empty caches) decrypts from the key store alone
    assert ProtectedStore(store.inner, store.keys).read_all()[0].payload == event


def test_concurrent_writers_without_expectations_bind_every_version() -> None:
    import threading

    store = ProtectedStore(MemoryStore(), MemoryKeyStore())
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(25):
                e = CustomerRegistered(customer_id=f"w{n}", name=f"{n}-{i}", email="e", email_index="i")
                store.append([EventToWrite("shared", e)])
                store.inner.append(
                    [
                        EventToWrite(
                            "shared",
                            CustomerRegistered(customer_id="x", name="p", email="p", email_index="i"),
                        )
                    ]
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    names = [e.payload.name for e in ProtectedStore(store.inner, store.keys).read_stream("shared")]
    assert len(names) == 200 and sorted(n for n in names if n != "p") == sorted(
        f"{n}-{i}" for n in range(4) for i in range(25)
    )


def test_plaintext_that_starts_like_a_token_is_still_plaintext() -> None:
    store = ProtectedStore(MemoryStore(), MemoryKeyStore())
    event = CustomerRegistered(customer_id="c", name="pd1:", email="pd1:abc:def", email_index="i")
    store.append([EventToWrite("s", event)])
    assert store.read_all()[0].payload == event
    raw = store.inner.read_all()[0].payload
    assert raw.email != "pd1:abc:def" and raw.email.startswith("pd1:")


def test_views_for_principals_reveal_only_to_allowed_roles() -> None:
    from eventcore_lab.security import Principal

    store = ProtectedStore(MemoryStore(), MemoryKeyStore())
    _register(store, "c1", "Ada", "ada@example.com")
    support = store.view_for(Principal.of("s", ["support"]), allowed_roles=["privacy"])
    officer = store.view_for(Principal.of("o", ["privacy"]), allowed_roles=["privacy"])
    anonymous = store.view_for(None, allowed_roles=["privacy"])
    assert support.read_all()[0].payload.email == REDACTED == anonymous.read_all()[0].payload.email
    assert officer.read_all()[0].payload.email == "ada@example.com" and officer is store


class TaggedByEmail(Event, frozen=True):
    registration = "on_first_use"
    tags_from = ("email:{email}",)

    customer_id: str
    email: Annotated[str, PersonalData(subject="customer_id")]


class TaggedBySubject(Event, frozen=True):
    registration = "on_first_use"
    tags_from = ("customer:{customer_id}",)

    customer_id: str
    email: Annotated[str, PersonalData(subject="customer_id")]


def test_tags_from_a_personal_field_are_refused_on_every_append_and_write_nothing() -> None:
    store = ProtectedStore(MemoryStore(), MemoryKeyStore())
    leaky = EventToWrite("c1", TaggedByEmail(customer_id="c1", email="ada@example.com"))
    for _ in range(2):  # the class's check is remembered only when it passes
        with pytest.raises(PersonalDataError, match=r"TaggedByEmail\.tags_from .*email"):
            store.append([leaky])
        assert store.head() == 0
    for i in range(2):
        store.append([EventToWrite("c1", TaggedBySubject(customer_id="c1", email=f"{i}@example.com"))])
    raw = store.inner.read_all()
    assert [e.tags for e in raw] == [("customer:c1",)] * 2
    assert all("example.com" not in e.payload.email for e in raw)
    with pytest.raises(PersonalDataError):
        store.append([leaky])
    assert store.head() == 2
