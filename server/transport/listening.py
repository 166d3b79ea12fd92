"""Listening sockets for the servers this package runs (the MCP server over HTTP, local Neon's API)."""

from __future__ import annotations

import socket

__all__ = ["bind"]


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (0: any free port); raises ``OSError``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and accepted sockets
    # inherit the listener's. With proto 0, every answer on a kept-alive connection waited ~40 ms (Nagle against
    # delayed ACK): run_sql over HTTP took 47 ms instead of 4.6, a local Neon API request 44 ms instead of 2-3.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock
