"""Logging in to an endpoint's server (or its PgBouncer) as the client, with the keys its SCRAM exchange yielded.

``login`` opens the connection, sends the startup packet, answers the server's SCRAM challenge with the client's keys
(see ``scram``) and reads up to the first ReadyForQuery. The ``Upstream`` it returns holds the streams and the
messages the client must see after ``AuthenticationOk`` (parameters, cancel key, notices, ReadyForQuery). A refusal by
the server (no such database, too many connections) raises ``UpstreamRefused`` with the server's own ErrorResponse,
which the front door passes on as it came.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from dataclasses import dataclass

from . import wire
from .scram import CLIENT_MECHANISM, ClientExchange, Keys, Verifier

__all__ = ["Upstream", "UpstreamRefused", "UpstreamUnreachable", "login", "read_message"]

_CONNECT_TIMEOUT = 10.0


class UpstreamRefused(Exception):
    """The server answered the login with an ErrorResponse; ``raw`` is that message, ``fields`` its fields."""

    def __init__(self, raw: bytes, fields: dict[str, str]) -> None:
        super().__init__(fields.get("M", "the server refused the connection"))
        self.raw = raw
        self.fields = fields

    @property
    def code(self) -> str:
        return self.fields.get("C", "")


class UpstreamUnreachable(Exception):
    """The server could not be reached or spoke out of turn."""


@dataclass
class Upstream:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    greeting: bytes
    """ParameterStatus, BackendKeyData, NoticeResponse and ReadyForQuery messages, as the server sent them."""
    cancel_key: bytes | None
    """The BackendKeyData payload (pid and secret), for routing cancel requests."""
    parameters: dict[str, str]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


async def read_message(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """The next message ``(type, payload)``; raises ``UpstreamUnreachable`` if the connection ends."""
    try:
        header = await reader.readexactly(5)
        (length,) = struct.unpack_from("!i", header, 1)
        if not 4 <= length <= wire.MAX_MESSAGE:
            raise UpstreamUnreachable(f"invalid message length {length} from the server")
        return header[:1], await reader.readexactly(length - 4)
    except (asyncio.IncompleteReadError, ConnectionError) as exc:
        raise UpstreamUnreachable("the server closed the connection") from exc


async def login(host: str, port: int, params: dict[str, str], keys: Keys, verifier: Verifier) -> Upstream:
    """Connect to ``host``:``port`` and log in with ``params`` (user, database, …) and the client's ``keys``.

    Raises ``UpstreamRefused`` (the server's ErrorResponse), ``UpstreamUnreachable`` (no server, or the exchange
    broke down), ``ScramError`` (the server's secret no longer matches ``verifier``).
    """
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), _CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        raise UpstreamUnreachable(f"cannot reach the server at {host}:{port}: {exc}") from exc
    try:
        return await _login(reader, writer, params, keys, verifier)
    except BaseException:
        writer.close()
        raise


async def _login(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, params: dict[str, str], keys: Keys, verifier: Verifier
) -> Upstream:
    writer.write(wire.startup_packet(params))
    exchange = ClientExchange(keys, verifier)
    greeting = bytearray()
    cancel_key: bytes | None = None
    parameters: dict[str, str] = {}
    while True:
        kind, payload = await read_message(reader)
        if kind == b"R":
            (code,) = struct.unpack_from("!i", payload)
            if code == wire.AUTH_SASL:
                offered = [m.decode() for m in payload[4:].split(b"\0") if m]
                if CLIENT_MECHANISM not in offered:
                    raise UpstreamUnreachable(f"the server offers no {CLIENT_MECHANISM} ({', '.join(offered)})")
                first = exchange.first()
                body = CLIENT_MECHANISM.encode() + b"\0" + struct.pack("!i", len(first)) + first
                writer.write(wire.message(b"p", body))
            elif code == wire.AUTH_SASL_CONTINUE:
                writer.write(wire.message(b"p", exchange.final(payload[4:])))
            elif code == wire.AUTH_SASL_FINAL:
                exchange.check(payload[4:])
            elif code != wire.AUTH_OK:
                raise UpstreamUnreachable(f"the server asks for authentication method {code}, not SCRAM")
        elif kind == b"E":
            raise UpstreamRefused(wire.message(kind, payload), wire.error_fields(payload))
        elif kind in (b"S", b"K", b"N", b"Z"):
            greeting += wire.message(kind, payload)
            if kind == b"K":
                cancel_key = payload
            elif kind == b"S":
                name, _, rest = payload.partition(b"\0")
                parameters[name.decode()] = rest.rstrip(b"\0").decode(errors="replace")
            elif kind == b"Z":
                return Upstream(reader, writer, bytes(greeting), cancel_key, parameters)
        elif kind == b"v":
            continue  # NegotiateProtocolVersion: we asked for 3.0, nothing to adjust
        else:
            raise UpstreamUnreachable(f"unexpected message {kind!r} from the server during login")
