"""Security: authorization before execution, encrypted personal data, crypto-shredding, audit.

>>> from eventcore_lab.security import Principal, RoleBasedPolicy, ProtectedStore, MemoryKeyStore

- Policies plug into ``Executor(store, policy=...)`` and are asked, once the streams are resolved and
  before anything is written, whether ``execute(command, user=principal)`` may proceed.
- ``Annotated[str, PersonalData(subject="customer_id")]`` fields are encrypted (AES-256-GCM, one key per
  subject) by :class:`ProtectedStore` before any store sees them; ``forget(subject)`` shreds them.
- Key stores keep the keys apart from the events (memory, DuckDB or PostgreSQL table, or your KMS).
"""

from ._audit import AUDIT_COLUMNS, audit_frame
from ._crypto import REDACTED, associated_data, blind_index, decrypt, encrypt
from ._erasure import UserDataErased
from ._errors import DecryptionFailed, KeyStoreError, PersonalDataError, PolicyDenied
from ._keys import DuckDBKeyStore, KeyStore, MemoryKeyStore, PostgresKeyStore, SubjectKey
from ._limits import LimitedStore, LimitExceeded, Limits, StreamCountPolicy
from ._personal import PersonalData, personal_fields
from ._pg_hardening import harden, integrity_sql, least_privilege_sql
from ._policy import AllOf, AttributePolicy, RoleBasedPolicy, Rule, StreamRule, StreamRules
from ._principal import Principal
from ._readside import filter_rows, redact_columns
from ._store import ProtectedStore

__all__ = [
    "AUDIT_COLUMNS",
    "REDACTED",
    "AllOf",
    "AttributePolicy",
    "DecryptionFailed",
    "DuckDBKeyStore",
    "KeyStore",
    "KeyStoreError",
    "LimitExceeded",
    "LimitedStore",
    "Limits",
    "MemoryKeyStore",
    "PersonalData",
    "PersonalDataError",
    "PolicyDenied",
    "PostgresKeyStore",
    "Principal",
    "ProtectedStore",
    "RoleBasedPolicy",
    "Rule",
    "StreamCountPolicy",
    "StreamRule",
    "StreamRules",
    "SubjectKey",
    "UserDataErased",
    "associated_data",
    "audit_frame",
    "blind_index",
    "decrypt",
    "encrypt",
    "filter_rows",
    "harden",
    "integrity_sql",
    "least_privilege_sql",
    "personal_fields",
    "redact_columns",
]
