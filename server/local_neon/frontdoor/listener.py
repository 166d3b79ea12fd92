"""The front door's listening socket, on a port kept across restarts."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

from ...transport.listening import bind

__all__ = ["listen"]

logger = logging.getLogger("neon_mcp.local_neon")

_PORT_FILE = "port"


def listen(directory: Path, host: str, port: int | None = None) -> socket.socket:
    """The front door's listening socket on ``host``: on ``port`` if given, else on the port it had last time
    (kept in ``directory``), else on a free one. A remembered port that another process took is replaced (with a
    warning: connection strings handed out before name the old one). Raises ``OSError`` if ``port`` is taken."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    remembered = directory / _PORT_FILE
    if port is None:
        try:
            previous: int | None = int(remembered.read_text(encoding="ascii").strip())
        except (OSError, ValueError):
            previous = None
        try:
            sock = bind(host, previous or 0)
        except OSError as exc:
            logger.warning("local Neon: the front door's port %s is taken (%s); using another", previous, exc)
            sock = bind(host, 0)
    else:
        sock = bind(host, port)
    remembered.write_text(f"{sock.getsockname()[1]}\n", encoding="ascii")
    return sock
