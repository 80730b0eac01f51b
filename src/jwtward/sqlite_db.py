"""One SQLite database file shared safely by threads and processes.

Used by the SQLite key store and the SQLite token store, which may share one
file. Each thread (and each process, after a fork) gets its own connection;
the file is created with mode 0600 (SQLite gives its ``-wal`` and ``-shm``
files the same mode) and runs in WAL mode with ``synchronous = FULL``, so a
committed write survives a crash of the process or the machine. Writers take
the lock up front (``BEGIN IMMEDIATE``): of several writers the first
commits and the others wait up to ``timeout`` seconds.

Every SQLite or OS failure (locked beyond the timeout, full disk, unwritable
path, a file that is not a database) becomes the caller's error class,
always a :class:`~jwtward.errors.StoreUnavailable`, and rolls the
transaction back.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from jwtward.errors import InvalidArgument, StoreUnavailable

__all__ = ["SQLiteDatabase", "migrate"]

# A version table's name goes into SQL text: only plain identifiers.
_TABLE_NAME = re.compile(r"[a-z_][a-z0-9_]*")


class SQLiteDatabase:
    """Per-thread connections to one database file, and transactions on them.

    ``create_schema`` runs once per object on the first connection, inside
    its own ``BEGIN IMMEDIATE`` transaction; ``label`` names the store in
    error messages; ``error`` is the error class raised for every failure.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        timeout: float,
        label: str,
        error: type[StoreUnavailable],
        create_schema: Callable[[sqlite3.Connection], None],
    ) -> None:
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise InvalidArgument("timeout must be a positive number of seconds")
        self.path = Path(path)
        self._timeout = float(timeout)
        self._label = label
        self._error = error
        self._create_schema = create_schema
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._schema_ready = False

    def failure(self, exc: BaseException) -> StoreUnavailable:
        """The store's error for a failed SQLite or OS call."""
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return self._error(f"cannot use {self._label} {self.path}: {reason}")

    @contextlib.contextmanager
    def transaction(self, begin: str = "BEGIN") -> Iterator[sqlite3.Connection]:
        """A transaction (``BEGIN`` to read, ``BEGIN IMMEDIATE`` to write); rolled back on error."""
        db = self.connection()
        try:
            db.execute(begin)
        except sqlite3.Error as exc:
            raise self.failure(exc) from None
        try:
            yield db
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            rollback(db)
            raise self.failure(exc) from None
        except BaseException:
            rollback(db)
            raise

    def connection(self) -> sqlite3.Connection:
        """This thread's connection; a new one after a fork (connections must not cross it)."""
        pid = os.getpid()
        held: tuple[int, sqlite3.Connection] | None = getattr(self._local, "held", None)
        if held is not None and held[0] == pid:
            return held[1]
        db = self._connect()
        self._local.held = (pid, db)
        with self._connections_lock:
            if held is not None:  # inherited from the parent: forget, never close
                self._connections = []
            self._connections.append(db)
        return db

    def _connect(self) -> sqlite3.Connection:
        try:
            # Create the file 0600 before SQLite does (it would honour the umask).
            # Only when it does not exist yet: closing any descriptor of an open
            # database file would drop this process's POSIX locks on it, those
            # of its other SQLite connections included (and corrupt the file).
            with contextlib.suppress(FileExistsError):
                os.close(
                    os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
                )
        except OSError as exc:
            raise self.failure(exc) from None
        try:
            db = sqlite3.connect(
                self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise self.failure(exc) from None
        try:
            self._enter_wal(db)
            db.execute("PRAGMA synchronous = FULL")
            db.execute("PRAGMA secure_delete = ON")
            if not self._schema_ready:
                db.execute("BEGIN IMMEDIATE")
                try:
                    self._create_schema(db)
                    db.execute("COMMIT")
                except BaseException:
                    rollback(db)
                    raise
                self._schema_ready = True
        except sqlite3.Error as exc:
            db.close()
            raise self.failure(exc) from None
        except BaseException:
            db.close()
            raise
        return db

    def _enter_wal(self, db: sqlite3.Connection) -> None:
        """Switch to WAL, waiting out other connections doing the same.

        The switch needs an exclusive lock, and SQLite answers "database is
        locked" at once (without its busy handler) while another connection
        opens a brand-new file at the same moment; retry within the timeout.
        """
        deadline = time.monotonic() + self._timeout
        while True:
            try:
                db.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
            time.sleep(0.005)

    def close(self) -> None:
        """Close the connections of every thread (they reopen on next use)."""
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            with contextlib.suppress(sqlite3.Error):
                connection.close()
        self._local = threading.local()


def rollback(db: sqlite3.Connection) -> None:
    """Roll back if a transaction is open; a failure to do so changes nothing more."""
    with contextlib.suppress(sqlite3.Error):
        if db.in_transaction:
            db.execute("ROLLBACK")


def migrate(
    db: sqlite3.Connection, version_table: str, steps: Sequence[Sequence[str]], what: str
) -> None:
    """Bring one store's tables to version ``len(steps)``, in the caller's transaction.

    Version N is ``steps[N - 1]`` applied on top of version N - 1; the number
    lives in the one-row table ``version_table``, of this store alone, so
    stores sharing a file keep their own counts. A schema newer than
    ``steps`` knows is refused (StoreUnavailable naming ``what``): this
    release cannot tell what the newer steps changed.
    """
    if not _TABLE_NAME.fullmatch(version_table):
        raise InvalidArgument("version_table must be a lower-case identifier")
    newest = len(steps)
    db.execute(
        f"CREATE TABLE IF NOT EXISTS {version_table} "
        "(id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)"
    )
    row = db.execute(f"SELECT version FROM {version_table}").fetchone()  # noqa: S608 - checked name
    version = 0 if row is None else row[0]
    if type(version) is not int or version < 0:
        raise StoreUnavailable(f"the {what}'s schema version is unreadable")
    if version > newest:
        raise StoreUnavailable(
            f"the {what} has schema {version}; this jwtward reads up to {newest}"
        )
    for step in steps[version:]:
        for statement in step:
            db.execute(statement)
    if version != newest:
        db.execute(
            f"INSERT INTO {version_table} (id, version) VALUES (1, ?) "  # noqa: S608 - checked name
            "ON CONFLICT (id) DO UPDATE SET version = excluded.version",
            (newest,),
        )
