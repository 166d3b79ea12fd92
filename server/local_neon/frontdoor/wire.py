"""PostgreSQL's wire protocol, the parts the front door speaks: framing, startup packets, auth and error messages.

Messages are ``type byte + int32 length (itself included) + payload``; the startup packet, SSL/GSS requests and cancel
requests have no type byte. ``Frames`` cuts a byte stream into messages as it arrives.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

__all__ = [
    "CANCEL_REQUEST",
    "GSSENC_REQUEST",
    "PROTOCOL_3_0",
    "SSL_REQUEST",
    "Frames",
    "ProtocolViolation",
    "auth_message",
    "error_fields",
    "error_response",
    "message",
    "parse_startup",
    "split_options",
    "startup_packet",
]

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102
PROTOCOL_3_0 = 196608
MAX_STARTUP = 10_000
MAX_MESSAGE = 1 << 30

AUTH_OK = 0
AUTH_CLEARTEXT = 3
AUTH_SASL = 10
AUTH_SASL_CONTINUE = 11
AUTH_SASL_FINAL = 12


class ProtocolViolation(Exception):
    """The peer sent something the protocol does not allow here."""


def message(kind: bytes, payload: bytes = b"") -> bytes:
    return kind + struct.pack("!i", len(payload) + 4) + payload


def auth_message(code: int, payload: bytes = b"") -> bytes:
    """An ``Authentication*`` message (``R``)."""
    return message(b"R", struct.pack("!i", code) + payload)


def error_response(text: str, code: str, *, severity: str = "FATAL", detail: str | None = None) -> bytes:
    """An ``ErrorResponse`` (``E``) with severity, SQLSTATE ``code`` and message (and ``detail``)."""
    fields = [b"S" + severity.encode(), b"V" + severity.encode(), b"C" + code.encode(), b"M" + text.encode()]
    if detail:
        fields.append(b"D" + detail.encode())
    return message(b"E", b"\0".join(fields) + b"\0\0")


def error_fields(payload: bytes) -> dict[str, str]:
    """The fields of an ``ErrorResponse``/``NoticeResponse`` payload, by their one-letter codes."""
    fields: dict[str, str] = {}
    for part in payload.split(b"\0"):
        if part:
            fields[chr(part[0])] = part[1:].decode("utf-8", errors="replace")
    return fields


def startup_packet(params: dict[str, str], version: int = PROTOCOL_3_0) -> bytes:
    body = struct.pack("!i", version) + b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in params.items())
    return struct.pack("!i", len(body) + 5) + body + b"\0"


def parse_startup(payload: bytes) -> tuple[int, dict[str, str]]:
    """``(protocol version, parameters)`` of a startup packet's payload (without its length)."""
    if len(payload) < 4:
        raise ProtocolViolation("startup packet too short")
    (version,) = struct.unpack_from("!i", payload)
    body = payload[4:]
    if not body.endswith(b"\0"):
        raise ProtocolViolation("malformed startup packet")
    parts = body[:-1].split(b"\0")
    if parts[-1] != b"" or len(parts) % 2 != 1:
        raise ProtocolViolation("malformed startup packet")
    words = [part.decode("utf-8", errors="replace") for part in parts[:-1]]
    return version, dict(zip(words[::2], words[1::2], strict=True))


def split_options(options: str) -> list[str]:
    """Split a startup ``options`` value as PostgreSQL does (``pg_split_opts``): on unescaped whitespace, keeping
    backslash escapes as they are (so dropping some words and joining the rest with spaces loses nothing)."""
    words: list[str] = []
    current: list[str] = []
    escaped = False
    for char in options:
        if char.isspace() and not escaped:
            if current:
                words.append("".join(current))
                current = []
        else:
            current.append(char)
        escaped = char == "\\" and not escaped
    if current:
        words.append("".join(current))
    return words


class Frames:
    """Incoming bytes, cut into messages: ``feed`` what arrives, then take ``startup()`` or ``messages()``."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def __len__(self) -> int:
        return len(self._buffer)

    def take_all(self) -> bytes:
        """Everything not yet cut into messages (what follows the handshake, for the relay)."""
        data = bytes(self._buffer)
        self._buffer.clear()
        return data

    def peek(self, count: int) -> bytes:
        return bytes(self._buffer[:count])

    def startup(self) -> bytes | None:
        """The next untyped packet's payload (after its length), or None if it has not fully arrived."""
        if len(self._buffer) < 4:
            return None
        (length,) = struct.unpack_from("!i", self._buffer)
        if not 8 <= length <= MAX_STARTUP:
            raise ProtocolViolation(f"invalid startup packet length {length}")
        if len(self._buffer) < length:
            return None
        payload = bytes(self._buffer[4:length])
        del self._buffer[:length]
        return payload

    def next(self) -> tuple[bytes, bytes] | None:
        """The next typed message ``(type, payload)``, or None if it has not fully arrived."""
        if len(self._buffer) < 5:
            return None
        (length,) = struct.unpack_from("!i", self._buffer, 1)
        if not 4 <= length <= MAX_MESSAGE:
            raise ProtocolViolation(f"invalid message length {length}")
        if len(self._buffer) < length + 1:
            return None
        kind = bytes(self._buffer[:1])
        payload = bytes(self._buffer[5 : length + 1])
        del self._buffer[: length + 1]
        return kind, payload

    def messages(self) -> Iterator[tuple[bytes, bytes]]:
        while (item := self.next()) is not None:
            yield item
