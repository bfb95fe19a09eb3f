"""A store wrapper that encrypts personal-data fields before any store sees them, and shreds on request.

``ProtectedStore(inner, keys)`` is an event store: give it to the Executor, projections and tools in
place of ``inner``. On append, each field marked ``PersonalData`` is replaced by an AES-256-GCM token
made with its subject's active key and bound to the event's stream and version; the inner store, its
file or tables, and any export of them only ever hold tokens. On read, tokens are decrypted (or read as
:data:`REDACTED` for a redacting view, or once the subject was forgotten).

To bind a token to its event's version the wrapper must know that version before the append: it appends
personal-data streams with an exact expected version, taking it from the caller's expectation when there
is one, and otherwise reading it and retrying when another writer got there first, which keeps the
caller's weaker expectation.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import msgspec

from ..core.errors import VersionConflict
from ..core.events import EventToWrite, ExpectedVersion, Metadata, StoredEvent, VersionCheck
from ..core.ids import StreamId
from ..core.query import AppendCondition, Query
from ..core.tags import template_fields
from ..stores.base import EventStore, Queries, QueryRead, StreamsRead, Subscription
from ..stores.filters import FilteredRead, given_options
from ..stores.health import StoreHealth, health_of
from ..stores.rules import check_log_filter
from . import _crypto
from ._crypto import REDACTED
from ._erasure import UserDataErased
from ._errors import PersonalDataError
from ._keys import KeyStore, SubjectKey
from ._personal import PersonalFields, personal_fields
from ._principal import as_principal

#: Opened events kept per wrapper, so that folding a stream again does not decrypt it again.
PLAINTEXT_CACHE_SIZE = 100_000

#: Keys kept per wrapper (by key id, and active keys by subject); both maps are emptied when full.
KEY_CACHE_SIZE = 100_000

#: How often an append re-reads versions when other writers keep moving a stream it had no exact
#: expectation for.
MAX_VERSION_RETRIES = 50


#: Classes whose tag templates were found free of personal-data fields (templates are compiled once per
#: class, see core.tags, so the answer cannot change): an append checks a known class by one lookup.
_tags_checked: set[type] = set()


def _refuse_personal_tags(cls: type, fields: PersonalFields) -> None:
    """Tags are kept in clear and indexed: a template built from a personal-data field would leak it."""
    if cls in _tags_checked:
        return
    personal = {name for name, _ in fields.fields} & template_fields(cls)
    if not personal:
        _tags_checked.add(cls)
        return
    raise PersonalDataError(
        f"{cls.__qualname__}.tags_from uses the personal-data field(s) {', '.join(sorted(personal))}; "
        "tags are stored in clear, so build them from other fields (e.g. the subject id)"
    )


def _replace(event: Any, changes: Mapping[str, Any]) -> Any:
    if hasattr(type(event), "__struct_fields__"):  # a msgspec Struct (an isinstance check costs more)
        return msgspec.structs.replace(event, **changes)
    return dataclasses.replace(event, **changes)


def _sealing_plan(events: Sequence[Any], expected: object) -> list[PersonalFields | None] | None:
    """Each write's personal-data fields; None when there is nothing to seal, or when an item is not an
    EventToWrite or ``expected`` not a mapping (the inner store then refuses the append with its own
    error)."""
    if expected is not None and type(expected) is not dict and not isinstance(expected, Mapping):
        return None
    plan: list[PersonalFields | None] | None = None
    for i, write in enumerate(events):
        if type(write) is not EventToWrite and not isinstance(write, EventToWrite):
            return None
        fields = personal_fields(type(write.event))
        if fields is not None:
            if plan is None:
                plan = [None] * len(events)
            plan[i] = fields
    return plan


class ProtectedStore:
    """Encrypts personal data on the way in, decrypts (or redacts) it on the way out. See the module."""

    def __init__(self, inner: EventStore, keys: KeyStore, *, reveal: bool = True) -> None:
        self.inner = inner
        self.keys = keys
        self.reveal = reveal
        self.registry = inner.registry
        self._cache: dict[str, SubjectKey | None] = {}  # key id -> key (None: destroyed)
        self._active: dict[str, SubjectKey] = {}  # subject -> its active key
        # event id -> (stored payload, the event as this wrapper shows it): a stream folded again costs a
        # lookup and a payload comparison per event (a payload altered in the store misses) instead of
        # token checks and two struct copies. Filled by reads and by appends (which know the clear
        # payload); emptied by forget() and when full.
        self._opened: dict[Any, tuple[Any, StoredEvent]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        mode = "decrypting" if self.reveal else "redacting"
        return f"<ProtectedStore {mode} {self.inner!r} with {self.keys!r}>"

    def view_for(self, principal: Any, *, allowed_roles: Iterable[str]) -> ProtectedStore:
        """This store for a principal with one of ``allowed_roles`` (personal data in clear), else the
        redacting view; anonymous callers always get the redacting view."""
        who = as_principal(principal)
        if who is not None and self.reveal and who.roles & set(allowed_roles):
            return self
        return self.redacted()

    def redacted(self) -> ProtectedStore:
        """A view of the same store for callers not allowed to see personal data: fields read REDACTED."""
        return ProtectedStore(self.inner, self.keys, reveal=False)

    # -- keys --------------------------------------------------------------------------------------

    def _active_key(self, subject: str) -> SubjectKey:
        key = self._active.get(subject)
        if key is None:
            key = self.keys.ensure_key(subject)
            with self._lock:
                if len(self._active) >= KEY_CACHE_SIZE or len(self._cache) >= KEY_CACHE_SIZE:
                    self._active.clear()
                    self._cache.clear()
                self._active[subject] = key
                self._cache[key.key_id] = key
        return key

    def _key(self, key_id: str) -> SubjectKey | None:
        try:
            return self._cache[key_id]
        except KeyError:
            key = self.keys.get(key_id)
            with self._lock:
                if len(self._cache) >= KEY_CACHE_SIZE:
                    self._cache.clear()
                self._cache[key_id] = key
            return key

    def rotate_key(self, subject: str) -> str:
        """Encrypt the subject's new data with a fresh key; history stays readable with the old ones.
        Returns the new key's id."""
        key = self.keys.rotate(subject)
        with self._lock:
            self._active[subject] = key
            self._cache[key.key_id] = key
        return key.key_id

    def blind_index(self, field: str, value: str) -> str:
        """An HMAC-SHA256 blind index of ``value`` for ``field``: store it next to the token to search."""
        return _crypto.blind_index(self.keys.index_key(), field, value)

    # -- writing -----------------------------------------------------------------------------------

    def _seal(self, event: Any, fields: PersonalFields, stream_id: str, version: int) -> Any:
        clear: dict[str, tuple[SubjectKey, str]] = {}
        for name, subject_field in fields.fields:
            value = getattr(event, name)
            if value is None:
                continue
            if value.startswith(_crypto.PREFIX) and _crypto.is_token(value):
                raise PersonalDataError(
                    f"{self.registry.type_name(event)}.{name} for stream {stream_id!r} already holds a "
                    "personal-data token; "
                    "write the plaintext (tokens are bound to the event they were made for)"
                )
            subject = str(getattr(event, subject_field))
            if not subject:
                raise PersonalDataError(
                    f"{self.registry.type_name(event)}.{name} for stream {stream_id!r} has an empty "
                    "subject id"
                )
            clear[name] = (self._active.get(subject) or self._active_key(subject), value)
        if not clear:
            return event
        return _replace(event, _crypto.encrypt_fields(clear, _crypto.associated_data(stream_id, version)))

    def _keep_opened(self, stored: StoredEvent, opened: StoredEvent) -> StoredEvent:
        if len(self._opened) >= PLAINTEXT_CACHE_SIZE:
            self._opened.clear()
        self._opened[stored.event_id] = (stored.payload, opened)
        return opened

    def append(
        self,
        events: Sequence[EventToWrite],
        expected: Mapping[str, ExpectedVersion] | None = None,
        *,
        condition: AppendCondition | None = None,
    ) -> list[StoredEvent]:
        """Append with personal fields sealed; ``condition`` is checked by the inner store as given.

        Tags are stored in clear, so a class whose ``tags_from`` names a personal-data field is refused.
        """
        if condition is None:
            inner_append = self.inner.append
        else:
            inner_append = functools.partial(cast(Queries, self.inner).append, condition=condition)
        if type(events) is not list and (isinstance(events, str | bytes) or not isinstance(events, Sequence)):
            return inner_append(events, expected)  # the store refuses it with its own error
        plan = _sealing_plan(events, expected)
        if plan is None:
            return inner_append(events, expected)
        for i, fields in enumerate(plan):
            if fields is not None:
                _refuse_personal_tags(type(events[i].event), fields)
        for _ in range(MAX_VERSION_RETRIES):
            sealed, checks, upgraded = self._sealed(events, plan, expected)
            try:
                stored = inner_append(sealed, checks)
            except VersionConflict as conflict:
                if upgraded and set(conflict.streams) <= upgraded:
                    continue  # only our own exact check failed: another writer came first, so re-read
                raise
            return self._in_clear(stored, events, plan)
        raise VersionConflict(
            {
                str(StreamId(w.stream_id)): ("a quiet moment to bind personal data to a version", -1)
                for w, p in zip(events, plan, strict=True)
                if p
            }
        )

    def _sealed(
        self,
        events: Sequence[EventToWrite],
        plan: list[PersonalFields | None],
        expected: Mapping[str, ExpectedVersion] | None,
    ) -> tuple[list[EventToWrite], Mapping[str, ExpectedVersion] | None, set[str]]:
        """The writes with their personal data sealed for the versions they will take, the expectations
        to append them under, and the streams whose exact expectation this wrapper added."""
        sids = [StreamId(w.stream_id) for w in events]
        given: Mapping[str, ExpectedVersion] = expected or {}
        checks: Mapping[str, ExpectedVersion] | None = expected
        upgraded: set[str] = set()
        version: dict[str, int] = {}  # personal-data stream -> the version its next event takes - 1
        for i, fields in enumerate(plan):
            sid = sids[i]
            if fields is None or sid in version:
                continue
            exp = given.get(sid)
            if exp is None and given:  # the caller may name streams untrimmed: compare them as ids
                given = {StreamId(k): v for k, v in given.items()}
                exp = given.get(sid)
            if exp is not None and exp.kind is VersionCheck.EXACT:
                version[sid] = exp.version or 0
            elif exp is not None and exp.kind is VersionCheck.NO_STREAM:
                version[sid] = 0
            else:
                current = self.inner.stream_version(sid)
                if exp is not None and exp.kind is VersionCheck.ANY and current == 0:
                    raise VersionConflict({sid: (str(exp), 0)})
                version[sid] = current
                if checks is expected:
                    checks = dict(given)
                checks[sid] = ExpectedVersion.exact(current)  # type: ignore[index]
                upgraded.add(sid)
        sealed = list(events)
        for i, sid in enumerate(sids):
            if sid in version:
                version[sid] += 1
                fields = plan[i]
                if fields is not None:
                    write = events[i]
                    event = self._seal(write.event, fields, sid, version[sid])
                    sealed[i] = EventToWrite(write.stream_id, event, write.metadata, write.tags)
        return sealed, checks, upgraded

    def _in_clear(
        self, stored: list[StoredEvent], events: Sequence[EventToWrite], plan: list[PersonalFields | None]
    ) -> list[StoredEvent]:
        """What an append returns: the events the caller wrote, in clear; a revealing wrapper also keeps
        them for the next read, which then need not decrypt them."""
        shown = list(stored)
        for i, fields in enumerate(plan):
            if fields is not None:
                clear = msgspec.structs.replace(stored[i], payload=events[i].event)
                shown[i] = self._keep_opened(stored[i], clear) if self.reveal else clear
        return shown

    def import_events(self, events: Iterable[StoredEvent]) -> int:
        """Import stored events, encrypting plaintext personal fields (bound to their given version)."""

        def sealed() -> Iterator[StoredEvent]:
            for event in events:
                fields = personal_fields(type(event.payload)) if isinstance(event, StoredEvent) else None
                if fields is None:
                    yield event
                    continue
                clear = {n: getattr(event.payload, n) for n, _ in fields.fields}
                tokens = {n: v for n, v in clear.items() if _crypto.is_token(v)}
                plain = _replace(event.payload, {n: None for n in tokens}) if tokens else event.payload
                payload = self._seal(plain, fields, str(StreamId(event.stream_id)), event.version)
                if tokens:
                    payload = _replace(payload, tokens)
                yield msgspec.structs.replace(event, payload=payload)

        return self.inner.import_events(list(sealed()))

    # -- reading -----------------------------------------------------------------------------------

    def _open(self, stored: StoredEvent) -> StoredEvent:
        fields = personal_fields(type(stored.payload))
        if fields is None:
            return stored
        hit = self._opened.get(stored.event_id)
        if hit is not None and (hit[0] is stored.payload or hit[0] == stored.payload):
            return hit[1]
        changes = self._opened_fields(stored, fields)
        if not changes:
            return stored
        return self._keep_opened(
            stored, msgspec.structs.replace(stored, payload=_replace(stored.payload, changes))
        )

    def _opened_fields(self, stored: StoredEvent, fields: PersonalFields) -> dict[str, str]:
        """The personal-data fields of ``stored`` that hold tokens, in clear (or REDACTED)."""
        changes = {}
        aad = b""
        for name, _ in fields.fields:
            value = getattr(stored.payload, name)
            if not _crypto.is_token(value):
                continue
            key = self._key(_crypto.token_key_id(value)) if self.reveal else None
            if key is None:
                changes[name] = REDACTED
                continue
            aad = aad or _crypto.associated_data(stored.stream_id, stored.version)
            where = f"{stored.event_type}.{name} of stream {stored.stream_id!r} version {stored.version}"
            changes[name] = _crypto.decrypt(key, value, aad, where)
        return changes

    def _open_all(self, events: list[StoredEvent]) -> list[StoredEvent]:
        """``events`` with personal data opened; the same list when none of them has any (the common
        case for most event types costs one cached lookup per event)."""
        for i, event in enumerate(events):
            if personal_fields(type(event.payload)) is not None:
                return events[:i] + [self._open(e) for e in events[i:]]
        return events

    def read_stream(
        self,
        stream_id: str,
        *,
        after_version: int = 0,
        event_types: Iterable[str | type] | None = None,
        backwards: bool = False,
        limit: int | None = None,
    ) -> list[StoredEvent]:
        return self._open_all(
            self.inner.read_stream(
                stream_id,
                after_version=after_version,
                **given_options(event_types=event_types, backwards=backwards, limit=limit),
            )
        )

    def read_streams(self, stream_ids: Iterable[str]) -> StreamsRead:
        found = self.inner.read_streams(stream_ids)
        opened = self._open_all(found.events)
        return found if opened is found.events else StreamsRead(opened, found.versions)

    def read_all(
        self,
        *,
        after: int = 0,
        limit: int | None = None,
        event_types: Iterable[str | type] | None = None,
        categories: Iterable[str] | None = None,
        backwards: bool = False,
    ) -> list[StoredEvent]:
        return self._open_all(
            self.inner.read_all(
                after=after,
                limit=limit,
                **given_options(event_types=event_types, categories=categories, backwards=backwards),
            )
        )

    def read_filtered(
        self,
        *,
        after: int = 0,
        limit: int | None = None,
        event_types: Iterable[str | type] | None = None,
        categories: Iterable[str] | None = None,
    ) -> FilteredRead:
        found = self.inner.read_filtered(
            after=after, limit=limit, event_types=event_types, categories=categories
        )
        opened = self._open_all(found.events)
        return found if opened is found.events else FilteredRead(opened, found.position)

    def read_query(self, query: Query, *, after: int = 0, limit: int | None = None) -> QueryRead:
        found = cast(Queries, self.inner).read_query(query, after=after, limit=limit)
        opened = self._open_all(found.events)
        return found if opened is found.events else QueryRead(opened, found.position)

    def stream_version(self, stream_id: str) -> int:
        return self.inner.stream_version(stream_id)

    def head(self) -> int:
        return self.inner.head()

    def wait_for_events(self, after: int, timeout: float) -> bool:
        return self.inner.wait_for_events(after, timeout)

    def subscribe(
        self,
        *,
        after: int = 0,
        batch_size: int = 500,
        event_types: Iterable[str | type] | None = None,
        categories: Iterable[str] | None = None,
    ) -> Subscription:
        where = check_log_filter(event_types, categories, self.inner.registry)
        return Subscription(self, after=after, batch_size=batch_size, where=where)

    def checkpoint_load(self, name: str) -> int:
        return int(self.inner.checkpoint_load(name))  # type: ignore[attr-defined]

    def checkpoint_save(self, name: str, position: int) -> None:
        self.inner.checkpoint_save(name, position)  # type: ignore[attr-defined]

    def health(self) -> StoreHealth:
        return health_of(self.inner)

    def close(self) -> None:
        self.inner.close()

    def __enter__(self) -> ProtectedStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- erasure and subject access ------------------------------------------------------------------

    def forget(
        self,
        subject: str,
        *,
        reason: str = "GDPR Article 17 request",
        stream: str | None = None,
        user_id: str | None = None,
    ) -> StoredEvent:
        """Crypto-shred ``subject``: destroy every key of theirs, then append :class:`UserDataErased`.

        From then on their fields read as REDACTED everywhere, replays and rebuilds still succeed, and the
        tokens left in the store, its files and exports cannot be decrypted by anyone. Other processes
        holding this subject's keys in a ProtectedStore cache must be restarted (or use a fresh wrapper).
        """
        if not isinstance(subject, str) or not subject:
            raise PersonalDataError(f"a subject id is a non-empty string, got {subject!r}")
        destroyed = self.keys.forget(subject)
        with self._lock:
            self._opened.clear()
            self._active.pop(subject, None)
            for key_id, key in list(self._cache.items()):
                if key is not None and key.subject == subject:
                    self._cache[key_id] = None
        event = UserDataErased(
            subject=subject, erased_at=datetime.now(UTC), reason=reason, keys_destroyed=destroyed
        )
        target = stream or f"erasure-{subject}"
        return self.inner.append([EventToWrite(target, event, Metadata(user_id=user_id))])[0]

    def export_subject(self, subject: str, *, batch_size: int = 1000) -> list[dict[str, Any]]:
        """Everything held about ``subject``, decrypted: events naming them as subject of personal data,
        events they caused (metadata user id), and erasure records. For subject-access requests."""
        registry = self.inner.registry
        found: list[dict[str, Any]] = []
        opener = self if self.reveal else ProtectedStore(self.inner, self.keys)
        position = 0
        while True:
            page = self.inner.read_all(after=position, limit=batch_size)
            if not page:
                return found
            position = page[-1].position
            for raw in page:
                payload = raw.payload
                fields = personal_fields(type(payload))
                about = fields is not None and any(
                    fields.subject_of(payload, n) == subject for n, _ in fields.fields
                )
                erased = isinstance(payload, UserDataErased) and payload.subject == subject
                if not (about or erased or raw.metadata.user_id == subject):
                    continue
                event = opener._open(raw)
                found.append(
                    {
                        "position": event.position,
                        "stream_id": event.stream_id,
                        "version": event.version,
                        "event_type": event.event_type,
                        "recorded_at": event.recorded_at.isoformat(),
                        "user_id": event.metadata.user_id,
                        "payload": registry.to_dict(event.payload),
                    }
                )
