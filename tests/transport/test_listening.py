"""The servers' listening sockets: connections they accept have Nagle's algorithm off."""

from __future__ import annotations

import asyncio
import socket

import pytest

from server.transport.listening import bind

pytestmark = pytest.mark.anyio


async def test_accepted_connections_have_nodelay() -> None:
    accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            sock = transport.get_extra_info("socket")
            accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    listener = bind("127.0.0.1", 0)
    server = await asyncio.get_running_loop().create_server(Probe, sock=listener)
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", listener.getsockname()[1])
        assert await asyncio.wait_for(accepted, 5) != 0, "answers would wait for delayed ACKs (~40 ms each)"
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
