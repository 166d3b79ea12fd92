"""The WebSocket transport of ``@neondatabase/serverless``: PostgreSQL's protocol tunnelled over ``ws://…/v2``.

The driver's ``Pool`` and ``Client`` (node-postgres over a WebSocket) send the startup packet, a cleartext password
and often the first query at once (``pipelineConnect``), without TLS inside the tunnel (the WebSocket is the
channel; ``wss`` on Neon). The session is the front door's (see ``proxy``), with a cleartext password checked against
the role's secret instead of SCRAM, as Neon's proxy does for WebSocket clients. The endpoint comes from the startup
``options`` (``endpoint=…``, as in local Neon's URIs) or, as on Neon, from a host name: the ``address`` query
parameter the driver adds when ``wsProxy`` is a plain string (``…/v2?address=<host>:<port>``), or the request's
``Host``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import struct

from starlette.websockets import WebSocket, WebSocketDisconnect

from . import wire
from .connection import Cancel, ClientGone, Startup
from .upstream import Upstream

__all__ = ["WebSocketClient", "handle"]

_READ_CHUNK = 256 * 1024


def _name(host: str | None) -> str | None:
    """``host`` without its port, if it is a name rather than an address."""
    if not host:
        return None
    name = host.rsplit(":", 1)[0].strip("[]") if host.count(":") <= 1 or host.startswith("[") else host
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return name
    return None


class WebSocketClient:
    """A client session over a WebSocket; ``write`` queues, a sender task keeps the order."""

    password_auth = True
    secure = True
    end_point: bytes | None = None

    def __init__(self, websocket: WebSocket) -> None:
        self._ws = websocket
        self._frames = wire.Frames()
        self._outbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._sender = asyncio.get_running_loop().create_task(self._send())
        self._gone = False
        self.sni = _name(websocket.query_params.get("address")) or _name(websocket.headers.get("host"))

    async def startup(self) -> Startup | Cancel | None:
        while True:
            try:
                while (payload := self._frames.startup()) is None:
                    await self._receive()
            except ClientGone:
                return None
            (code,) = struct.unpack_from("!i", payload)
            if code in (wire.SSL_REQUEST, wire.GSSENC_REQUEST):
                self.write(b"N")  # no TLS inside the tunnel
            elif code == wire.CANCEL_REQUEST:
                return Cancel(payload[4:12])
            else:
                return Startup(*wire.parse_startup(payload))

    async def read(self) -> tuple[bytes, bytes]:
        while (item := self._frames.next()) is None:
            await self._receive()
        return item

    def write(self, data: bytes) -> None:
        if not self._gone:
            self._outbox.put_nowait(data)

    def close(self) -> None:
        if not self._gone:
            self._gone = True
            self._outbox.put_nowait(None)

    async def finished(self) -> None:
        """Wait until everything written was sent and the WebSocket closed."""
        with contextlib.suppress(Exception):
            await self._sender

    async def relay(self, upstream: Upstream) -> None:
        if leftover := self._frames.take_all():
            upstream.writer.write(leftover)

        async def downstream() -> None:
            while data := await upstream.reader.read(_READ_CHUNK):
                self.write(data)

        async def upstream_bound() -> None:
            while True:
                message = await self._ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                data = message.get("bytes") or (message.get("text") or "").encode()
                upstream.writer.write(data)
                await upstream.writer.drain()

        tasks = [asyncio.ensure_future(downstream()), asyncio.ensure_future(upstream_bound())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _receive(self) -> None:
        if self._gone:
            raise ClientGone
        try:
            message = await self._ws.receive()
        except (WebSocketDisconnect, RuntimeError) as exc:
            raise ClientGone from exc
        if message["type"] == "websocket.disconnect":
            self._gone = True
            raise ClientGone
        self._frames.feed(message.get("bytes") or (message.get("text") or "").encode())

    async def _send(self) -> None:
        try:
            while (data := await self._outbox.get()) is not None:
                await self._ws.send_bytes(data)
        except (WebSocketDisconnect, RuntimeError, OSError):
            self._gone = True
        finally:
            with contextlib.suppress(Exception):
                await self._ws.close()


async def handle(websocket: WebSocket) -> None:
    """``/v2``: accept the WebSocket and run a front door session over it."""
    await websocket.accept()
    client = WebSocketClient(websocket)
    await websocket.app.state.service.front_door.serve(client)
    await client.finished()
