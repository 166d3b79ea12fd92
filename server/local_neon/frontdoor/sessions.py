"""Server connections for SQL over HTTP: logged in once, pooled per (server, role, database, options, client key), and
closed after ``IDLE_SECONDS`` unused so an idle endpoint can still scale to zero. Queries run with the extended
protocol in text format."""

from __future__ import annotations

import contextlib
import struct
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from . import wire
from .upstream import Upstream, read_message

__all__ = ["IDLE_SECONDS", "QueryError", "Result", "Session", "SqlSessions"]

IDLE_SECONDS = 10.0
_MAX_IDLE_PER_KEY = 4


class QueryError(Exception):
    """PostgreSQL answered a query with an error (its fields by their one-letter codes)."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__(fields.get("M", ""))
        self.fields = fields


@dataclass
class Result:
    fields: list[dict[str, Any]]
    rows: list[list[str | None]]
    tag: str
    types: list[int]


class Session:
    """One logged-in server connection running queries in text format."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self.status = b"I"
        self.idle_since = time.monotonic()

    async def query(self, sql: str, params: list[str | None]) -> Result:
        values = b"".join(
            struct.pack("!i", -1) if value is None else struct.pack("!i", len(v := value.encode())) + v
            for value in params
        )
        bind = b"\0\0" + struct.pack("!hh", 0, len(params)) + values + struct.pack("!h", 0)
        self.upstream.writer.write(
            wire.message(b"P", b"\0" + sql.encode() + b"\0" + struct.pack("!h", 0))
            + wire.message(b"B", bind)
            + wire.message(b"D", b"P\0")
            + wire.message(b"E", b"\0" + struct.pack("!i", 0))
            + wire.message(b"S")
        )
        fields: list[dict[str, Any]] = []
        types: list[int] = []
        rows: list[list[str | None]] = []
        tag = ""
        error: dict[str, str] | None = None
        while True:
            kind, payload = await read_message(self.upstream.reader)
            if kind == b"T":
                fields, types = _row_description(payload)
            elif kind == b"D":
                rows.append(_data_row(payload))
            elif kind == b"C":
                tag = payload.rstrip(b"\0").decode()
            elif kind == b"E":
                error = wire.error_fields(payload)
            elif kind == b"Z":
                self.status = payload[:1]
                break
        if error is not None:
            raise QueryError(error)
        return Result(fields, rows, tag, types)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.upstream.writer.write(wire.message(b"X"))
        self.upstream.close()


class SqlSessions:
    """Server connections for SQL over HTTP, pooled per (server, role, database, options, client key)."""

    def __init__(self) -> None:
        self._idle: defaultdict[tuple[Any, ...], list[Session]] = defaultdict(list)

    async def acquire(self, key: tuple[Any, ...], connect: Callable[[], Awaitable[Upstream]]) -> Session:
        """An idle session for ``key``, or a new one logged in by ``connect``."""
        idle = self._idle.get(key)
        while idle:
            session = idle.pop()
            if not session.upstream.writer.is_closing():
                return session
            session.close()
        return Session(await connect())

    def release(self, key: tuple[Any, ...], session: Session) -> None:
        """Keep ``session`` for the next request if it is idle and there is room; else close it."""
        idle = self._idle[key]
        if session.status != b"I" or session.upstream.writer.is_closing() or len(idle) >= _MAX_IDLE_PER_KEY:
            session.close()
            return
        session.idle_since = time.monotonic()
        idle.append(session)

    def prune(self, *, idle_for: float = IDLE_SECONDS) -> None:
        """Close the sessions unused for ``idle_for`` seconds."""
        cutoff = time.monotonic() - idle_for
        for key, sessions in list(self._idle.items()):
            for session in [s for s in sessions if s.idle_since < cutoff]:
                sessions.remove(session)
                session.close()
            if not sessions:
                del self._idle[key]

    def close(self) -> None:
        for sessions in self._idle.values():
            for session in sessions:
                session.close()
        self._idle.clear()


def _row_description(payload: bytes) -> tuple[list[dict[str, Any]], list[int]]:
    (count,) = struct.unpack_from("!h", payload)
    offset = 2
    fields, types = [], []
    for _ in range(count):
        end = payload.index(b"\0", offset)
        name = payload[offset:end].decode()
        table, column, oid, size, modifier, _fmt = struct.unpack_from("!ihihih", payload, end + 1)
        offset = end + 19
        fields.append(
            {
                "name": name,
                "dataTypeID": oid,
                "tableID": table,
                "columnID": column,
                "dataTypeSize": size,
                "dataTypeModifier": modifier,
                "format": "text",
            }
        )
        types.append(oid)
    return fields, types


def _data_row(payload: bytes) -> list[str | None]:
    (count,) = struct.unpack_from("!h", payload)
    offset = 2
    values: list[str | None] = []
    for _ in range(count):
        (length,) = struct.unpack_from("!i", payload, offset)
        offset += 4
        if length < 0:
            values.append(None)
            continue
        values.append(payload[offset : offset + length].decode())
        offset += length
    return values
