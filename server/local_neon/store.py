"""Local Neon's state in one SQLite file: every record as JSON in one table, keyed by kind and key.

Used from the event loop's thread only. Rows keep their insertion order, which is the order lists come back in;
updates keep a row's place. ``transaction()`` groups writes so that a change to several records (a branch
with its endpoint, roles and databases) is all there or not at all.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from pydantic import TypeAdapter

from .records import Branch, Database, Endpoint, Operation, Organization, Project, Role

__all__ = ["Store"]

T = TypeVar("T", Organization, Project, Branch, Endpoint, Role, Database, Operation)

_KINDS: dict[type[Any], str] = {
    Organization: "organization",
    Project: "project",
    Branch: "branch",
    Endpoint: "endpoint",
    Role: "role",
    Database: "database",
    Operation: "operation",
}
_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {kind: TypeAdapter(kind) for kind in _KINDS}
"""Each record's JSON form, both ways (datetimes as ISO 8601; older rows' ``+00:00`` offsets read the same)."""
_SELECT = (
    "SELECT data FROM records WHERE kind = ? AND (? IS NULL OR project_id = ?) AND (? IS NULL OR branch_id = ?) "
    "ORDER BY seq"
)


def _encode(record: Any) -> str:
    return _ADAPTERS[type(record)].dump_json(record).decode()


def _decode(kind: type[T], text: str) -> T:
    record: T = _ADAPTERS[kind].validate_json(text)
    return record


class Store:
    """The SQLite file at ``path`` (created with its tables if missing)."""

    def __init__(self, path: Path) -> None:
        # The store holds the roles' passwords: readable by us alone (SQLite gives its -wal/-shm files the same mode).
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        path.chmod(0o600)
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._depth = 0
        with self.transaction():
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS records (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, "
                "key TEXT NOT NULL, project_id TEXT, branch_id TEXT, data TEXT NOT NULL, UNIQUE (kind, key))"
            )
            self._db.execute("CREATE INDEX IF NOT EXISTS records_owner ON records (kind, project_id, branch_id)")
            self._db.execute("CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)")

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group the writes inside into one transaction (nested uses join the outer one)."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")
        finally:
            self._depth = 0

    def put(self, record: Organization | Project | Branch | Endpoint | Role | Database | Operation) -> None:
        """Insert or replace ``record`` (keyed by its ``key``); a replaced row keeps its place in lists."""
        project_id = record.id if isinstance(record, Project) else getattr(record, "project_id", None)
        branch_id = record.id if isinstance(record, Branch) else getattr(record, "branch_id", None)
        self._db.execute(
            "INSERT INTO records (kind, key, project_id, branch_id, data) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (kind, key) DO UPDATE SET project_id = excluded.project_id, branch_id = excluded.branch_id, "
            "data = excluded.data",
            (_KINDS[type(record)], record.key, project_id, branch_id, _encode(record)),
        )

    def get(self, kind: type[T], key: str) -> T | None:
        row = self._db.execute("SELECT data FROM records WHERE kind = ? AND key = ?", (_KINDS[kind], key)).fetchone()
        return None if row is None else _decode(kind, row[0])

    def list(self, kind: type[T], *, project_id: str | None = None, branch_id: str | None = None) -> list[T]:
        """Records of ``kind``, oldest first, optionally only those of a project and/or branch."""
        args = (_KINDS[kind], project_id, project_id, branch_id, branch_id)
        return [_decode(kind, row[0]) for row in self._db.execute(_SELECT, args).fetchall()]

    def delete(self, kind: type[T], key: str) -> None:
        self._db.execute("DELETE FROM records WHERE kind = ? AND key = ?", (_KINDS[kind], key))

    def delete_all(self, kind: type[T], *, project_id: str, branch_id: str | None = None) -> None:
        """Delete the records of ``kind`` of a project (or of one of its branches)."""
        self._db.execute(
            "DELETE FROM records WHERE kind = ? AND project_id = ? AND (? IS NULL OR branch_id = ?)",
            (_KINDS[kind], project_id, branch_id, branch_id),
        )

    def next_id(self, name: str) -> int:
        """The next number of the counter ``name`` (1, 2, …), kept across restarts."""
        with self.transaction():
            self._db.execute(
                "INSERT INTO counters (name, value) VALUES (?, 1) ON CONFLICT (name) DO UPDATE SET value = value + 1",
                (name,),
            )
            row = self._db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return int(row[0])
