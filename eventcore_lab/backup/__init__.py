"""Logical backups of any store: full and incremental, restore (to a point in time), verify, integrity.

>>> from eventcore_lab.backup import backup, restore, verify
>>> full = backup(store, "backups/full")                             # doctest: +SKIP
>>> more = backup(store, "backups/inc-1", after=full.last_position)  # doctest: +SKIP
>>> verify("backups/full").ok                                         # doctest: +SKIP
>>> restore(empty_store, ["backups/full", "backups/inc-1"])          # doctest: +SKIP
"""

from ._format import BackupError, FileEntry, Manifest
from .create import backup
from .integrity import IntegrityReport, check_integrity
from .restore import RestoreResult, check_chain, restore
from .verify import VerifyReport, chain_content_hash, load_manifest, read_backup, store_content_hash, verify

__all__ = [
    "BackupError",
    "FileEntry",
    "IntegrityReport",
    "Manifest",
    "RestoreResult",
    "VerifyReport",
    "backup",
    "chain_content_hash",
    "check_chain",
    "check_integrity",
    "load_manifest",
    "read_backup",
    "restore",
    "store_content_hash",
    "verify",
]
