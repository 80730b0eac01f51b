"""A key store in one JSON file: private keys sealed, written atomically, CAS-locked.

The file is one JSON document::

    {"format": "jwtward-key-store", "schema": 1, "version": 7,
     "sealing": {...}, "records": [{"kid": ..., "state": ..., "public": {...},
                                    "sealed": "..."}, ...]}

``version`` is the compare-and-swap counter of :class:`~jwtward.keys.records.KeyStore`.
A save writes a temporary file in the same directory, fsyncs it, renames it
over the old one and fsyncs the directory, so a crash at any moment leaves
either the previous or the new document, never a mix. Saves from several
threads or processes are serialized by an advisory lock (``flock``) on a
sidecar ``<name>.lock`` file held around read-compare-write; loads take no
lock, since the rename is atomic. Files are created with mode 0600.

Every failure to read or write (missing directory, permissions, full disk,
corrupt or foreign JSON) raises :class:`~jwtward.keys.records.StoreError`
and leaves the existing file untouched.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from jwtward.codecs import dumps, loads_object
from jwtward.errors import DecodeError, InvalidArgument
from jwtward.keys.records import KeyRecord, StoreConflict, StoreError, StoreSnapshot
from jwtward.keys.sealing import (
    Protection,
    ScryptParams,
    Sealer,
    check_save_arguments,
    resolve_protection,
)

__all__ = ["FileKeyStore"]

FORMAT: Final = "jwtward-key-store"
SCHEMA: Final = 1
DEFAULT_MAX_SIZE: Final = 64 << 20
_MAX_DEPTH: Final = 8


class FileKeyStore:
    """A :class:`~jwtward.keys.records.KeyStore` in one JSON file at ``path``.

    Private keys are sealed with ``passphrase`` or ``master_key`` (or the
    ``JWTWARD_MASTER_KEY`` environment variable); see
    :mod:`jwtward.keys.sealing`. ``allow_plaintext=True`` stores them
    unencrypted, with a warning. A missing file is an empty store at version 0.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        passphrase: str | bytes | None = None,
        master_key: bytes | None = None,
        allow_plaintext: bool = False,
        scrypt: ScryptParams | None = None,
        max_size: int = DEFAULT_MAX_SIZE,
    ) -> None:
        self._path = Path(path)
        self._lock_path = self._path.with_name(self._path.name + ".lock")
        self._temp_prefix = f".{self._path.name}."
        self._protection: Protection = resolve_protection(
            passphrase=passphrase,
            master_key=master_key,
            allow_plaintext=allow_plaintext,
            scrypt=scrypt,
            stacklevel=3,
        )
        if type(max_size) is not int or max_size <= 0:
            raise InvalidArgument("max_size must be a positive number of bytes")
        self._max_size = max_size

    @property
    def path(self) -> Path:
        return self._path

    def load(self) -> StoreSnapshot:
        """The stored records and their version (version 0 and no records if no file)."""
        document = self._read()
        if document is None:
            return StoreSnapshot(version=0, records=())
        return self._snapshot_of(document)

    def save(self, expected_version: int, records: Sequence[KeyRecord]) -> int:
        """Write ``records`` if the file is still at ``expected_version``; the new version."""
        check_save_arguments(expected_version, records)
        with self._locked():
            document = self._read()
            current = 0 if document is None else document["version"]
            if current != expected_version:
                raise StoreConflict(
                    f"key store is at version {current}, not {expected_version}: reload"
                )
            sealer = self._sealer_for(document)
            new_version = current + 1
            data = dumps(
                {
                    "format": FORMAT,
                    "schema": SCHEMA,
                    "version": new_version,
                    "sealing": sealer.header,
                    "records": [sealer.seal_record(record) for record in records],
                }
            )
            if len(data) > self._max_size:
                raise StoreError(f"key store would exceed its {self._max_size}-byte bound")
            self._replace(data)
        return new_version

    # -- internals --------------------------------------------------------------

    def _snapshot_of(self, document: Mapping[str, Any]) -> StoreSnapshot:
        sealer = self._protection.open(document["sealing"])
        records = tuple(sealer.open_record(stored) for stored in document["records"])
        return StoreSnapshot(version=document["version"], records=records)

    def _sealer_for(self, document: Mapping[str, Any] | None) -> Sealer:
        """The sealer for the next version: a fresh one for a new store; else the
        existing one, re-sealed under stronger parameters if configured.

        Every existing record must be intact and open under our secret first:
        a store that no one can load is left for its operator, never silently
        overwritten.
        """
        if document is None:
            return self._protection.new_sealer()
        sealer = self._protection.open(document["sealing"])
        for stored in document["records"]:
            sealer.check_record(stored)
        header = sealer.header
        if self._protection.wants_reseal(header):
            return self._protection.new_sealer(header["store"])
        return sealer

    def _read(self) -> dict[str, Any] | None:
        try:
            with open(self._path, "rb") as file:
                data = file.read(self._max_size + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot read key store {self._path}: {_reason(exc)}") from None
        if len(data) > self._max_size:
            raise StoreError(f"key store {self._path} exceeds {self._max_size} bytes")
        try:
            document = loads_object(data, max_size=self._max_size, max_depth=_MAX_DEPTH)
        except DecodeError as exc:
            raise StoreError(f"key store {self._path} is corrupt: {exc}") from None
        _check_document(document, self._path)
        return document

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            # Imported here: POSIX only, and `import jwtward` must work anywhere.
            import fcntl  # noqa: PLC0415
        except ImportError:
            raise StoreError(
                "FileKeyStore needs POSIX file locks; use SQLiteKeyStore on this platform"
            ) from None
        try:
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise StoreError(f"cannot lock key store {self._path}: {_reason(exc)}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._remove_stale_temporaries()
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _remove_stale_temporaries(self) -> None:
        """Delete temporary files left by a writer that died mid-save.

        Called under the lock, when no other writer can own one.
        """
        with contextlib.suppress(OSError):
            for entry in os.scandir(self._path.parent):
                if entry.name.startswith(self._temp_prefix) and entry.name.endswith(".tmp"):
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)

    def _replace(self, data: bytes) -> None:
        directory = self._path.parent
        try:
            fd, temp = tempfile.mkstemp(dir=directory, prefix=self._temp_prefix, suffix=".tmp")
        except OSError as exc:
            raise StoreError(f"cannot write key store {self._path}: {_reason(exc)}") from None
        try:
            try:
                os.fchmod(fd, 0o600)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, self._path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise StoreError(f"cannot write key store {self._path}: {_reason(exc)}") from None
        _fsync_directory(directory)


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable. The new file is in place already, so a failure
    here (some file systems refuse fsync on directories) is not an error."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def _check_document(document: dict[str, Any], path: Path) -> None:
    if document.get("format") != FORMAT:
        raise StoreError(f"{path} is not a jwtward key store")
    schema = document.get("schema")
    if type(schema) is not int or schema < 1:
        raise StoreError(f"key store {path} has no valid schema number")
    if schema > SCHEMA:
        raise StoreError(f"key store {path} has schema {schema}; this jwtward reads {SCHEMA}")
    version = document.get("version")
    if type(version) is not int or version < 1:
        raise StoreError(f"key store {path} has no valid version")
    records = document.get("records")
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise StoreError(f"key store {path} has no valid record list")


def _reason(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "no space left on the device"
    return exc.strerror or type(exc).__name__
