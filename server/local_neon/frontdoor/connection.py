"""A client's TCP connection to the front door: TLS negotiation, message reading, and the relay once logged in.

TLS is done with ``ssl.MemoryBIO`` rather than asyncio's TLS transport: a PostgreSQL client asks for it in-band
(``SSLRequest``, then the handshake), PostgreSQL 17's ``sslnegotiation=direct`` starts the handshake at once (the
first byte tells which), and once logged in every record is decrypted and passed on in one callback, without a
stream or task in between (what keeps the front door's cost per round trip small). During the handshake, messages
are read with ``await``; ``relay`` then splices the connection to the server's, both ways, with back-pressure.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, cast

from . import wire
from .tls import ALPN, server_name
from .upstream import Upstream

__all__ = ["Cancel", "ClientGone", "Startup", "TcpClient"]

_READ_CHUNK = 16 * 1024  # one TLS record at most: a larger buffer is allocated (and mapped) on every read


class ClientGone(Exception):
    """The client closed the connection (or broke the TLS session) during the handshake."""


@dataclass(frozen=True)
class Startup:
    version: int
    params: dict[str, str]


@dataclass(frozen=True)
class Cancel:
    key: bytes
    """The backend's pid and secret, as in BackendKeyData."""


class _UpstreamSide(asyncio.Protocol):
    """The server's side of a relay: what arrives goes to the client at once."""

    def __init__(self, client: TcpClient, transport: asyncio.Transport) -> None:
        self._client = client
        self.transport = transport
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self._client.write(data)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)
        self._client.close()

    def pause_writing(self) -> None:
        self._client.pause_reading()

    def resume_writing(self) -> None:
        self._client.resume_reading()


class TcpClient(asyncio.Protocol):
    """One client connection; ``serve`` (the front door's session) runs as a task from ``connection_made``."""

    password_auth = False
    """Over TCP the client authenticates with SCRAM (a password only in the password hack)."""

    def __init__(
        self, context: ssl.SSLContext, end_point: bytes, serve: Callable[[TcpClient], Coroutine[Any, Any, None]]
    ) -> None:
        self._context = context
        self._end_point = end_point
        self._serve = serve
        self.transport: asyncio.Transport | None = None
        self._frames = wire.Frames()
        self._waiter: asyncio.Future[None] | None = None
        self._gone = False
        self._ssl: ssl.SSLObject | None = None
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._handshake: asyncio.Future[None] | None = None
        self._peer: _UpstreamSide | None = None
        self.sni: str | None = None
        self.task: asyncio.Task[None] | None = None

    # --- what the session sees -------------------------------------------------------------------------------------

    @property
    def secure(self) -> bool:
        return self._ssl is not None and self._handshake is not None and self._handshake.done()

    @property
    def end_point(self) -> bytes | None:
        """Channel binding data, once TLS is up."""
        return self._end_point if self.secure else None

    async def startup(self) -> Startup | Cancel | None:
        """Negotiate TLS as the client asks, and return its startup packet (or cancel request); None if it left."""
        while True:
            try:
                await self._fill(1)
            except ClientGone:
                return None
            if self._ssl is None and self._frames.peek(1) == b"\x16":  # a TLS ClientHello: direct TLS
                await self._start_tls(self._frames.take_all(), direct=True)
                continue
            payload = await self._packet()
            (code,) = struct.unpack_from("!i", payload)
            if code == wire.SSL_REQUEST:
                if self._ssl is not None:
                    raise wire.ProtocolViolation("SSLRequest over TLS")
                if len(self._frames):
                    raise wire.ProtocolViolation("received unencrypted data after SSL request")
                self._write_raw(b"S")
                await self._start_tls(b"", direct=False)
            elif code == wire.GSSENC_REQUEST:
                self._write_raw(b"N")
            elif code == wire.CANCEL_REQUEST:
                return Cancel(payload[4:12])
            else:
                return Startup(*wire.parse_startup(payload))

    async def read(self) -> tuple[bytes, bytes]:
        """The client's next message; raises ``ClientGone``."""
        while (item := self._frames.next()) is None:
            await self._wait()
        return item

    def write(self, data: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        if self._ssl is None:
            self.transport.write(data)
            return
        try:
            self._ssl.write(data)
        except ssl.SSLError:
            self.close()
            return
        self._flush()

    def close(self) -> None:
        self._gone = True
        if self.transport is not None and not self.transport.is_closing():
            if self._ssl is not None and self.secure:
                with contextlib.suppress(ssl.SSLError):
                    self._ssl.unwrap()
                self._flush()
            self.transport.close()
        self._wake()

    async def relay(self, upstream: Upstream) -> None:
        """Pass bytes both ways between the client and ``upstream`` until either side closes."""
        transport = cast(asyncio.Transport, upstream.writer.transport)  # uvloop's are not asyncio.Transport subclasses
        _no_delay(transport)
        peer = _UpstreamSide(self, transport)
        transport.set_protocol(peer)
        self._peer = peer
        if leftover := self._frames.take_all():
            transport.write(leftover)
        if self._gone:
            transport.close()
        try:
            await peer.done
        finally:
            transport.close()

    def pause_reading(self) -> None:
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None:
            self.transport.resume_reading()

    # --- asyncio.Protocol ----------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        _no_delay(self.transport)
        self.task = asyncio.get_running_loop().create_task(self._serve(self))

    def data_received(self, data: bytes) -> None:
        if self._ssl is not None:
            data = self._decrypt(data)
            if not data:
                return
        if self._peer is not None:
            self._peer.transport.write(data)
            return
        self._frames.feed(data)
        self._wake()

    def eof_received(self) -> bool:
        self._gone = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._gone = True
        if self._handshake is not None and not self._handshake.done():
            self._handshake.set_exception(ClientGone())
        self._wake()
        if self._peer is not None:
            self._peer.transport.close()

    def pause_writing(self) -> None:
        if self._peer is not None:
            self._peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self._peer is not None:
            self._peer.transport.resume_reading()

    # --- TLS -----------------------------------------------------------------------------------------------------

    async def _start_tls(self, initial: bytes, *, direct: bool) -> None:
        self._ssl = self._context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self._handshake = asyncio.get_running_loop().create_future()
        if initial:
            self._decrypt(initial)
        else:
            self._drive_handshake()
        await self._handshake
        if direct and self._ssl.selected_alpn_protocol() != ALPN:
            raise wire.ProtocolViolation("direct TLS connections must negotiate the ALPN protocol 'postgresql'")

    def _drive_handshake(self) -> bool:
        """Advance the handshake with what has arrived; whether it is complete."""
        assert self._ssl is not None and self._handshake is not None
        try:
            self._ssl.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            return False
        except (ssl.SSLError, OSError) as exc:
            self._flush()
            if not self._handshake.done():
                self._handshake.set_exception(ClientGone(f"TLS handshake failed: {exc}"))
            if self.transport is not None:
                self.transport.close()
            return False
        self._flush()
        self.sni = server_name(self._ssl)
        if not self._handshake.done():
            self._handshake.set_result(None)
        return True

    def _decrypt(self, data: bytes) -> bytes:
        assert self._ssl is not None and self._handshake is not None
        self._incoming.write(data)
        if not self._handshake.done() and not self._drive_handshake():
            return b""
        chunks = []
        while True:
            try:
                chunk = self._ssl.read(_READ_CHUNK)
            except ssl.SSLWantReadError:
                break
            except (ssl.SSLZeroReturnError, ssl.SSLError):
                self._gone = True
                break
            if not chunk:
                break
            chunks.append(chunk)
        if self._outgoing.pending:
            self._flush()
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _flush(self) -> None:
        if self._outgoing.pending and self.transport is not None and not self.transport.is_closing():
            self.transport.write(self._outgoing.read())

    def _write_raw(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    # --- waiting ---------------------------------------------------------------------------------------------------

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def _wait(self) -> None:
        if self._gone:
            raise ClientGone
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None
        if self._gone and not len(self._frames):
            raise ClientGone

    async def _fill(self, count: int) -> None:
        while len(self._frames) < count:
            await self._wait()

    async def _packet(self) -> bytes:
        while (payload := self._frames.startup()) is None:
            await self._wait()
        return payload


def _no_delay(transport: asyncio.BaseTransport) -> None:
    """Send small writes at once (TCP_NODELAY): every protocol message waits for an answer, and Nagle's algorithm
    against delayed ACKs would hold some of them back for tens of milliseconds (uvloop does not set it for us)."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
