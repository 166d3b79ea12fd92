"""How MCP reaches the server: stdio, and streamable HTTP and SSE behind a bearer token.

- ``stdio``: stdin and stdout as native event-loop pipes (no worker-thread hop per message); ``loop``: uvloop where
  installed, for every server here.
- ``http``: the ASGI app (token, /healthz, tenants); ``runner``: serving it with a graceful stop; ``listening``: one
  ``bind()`` for every listening socket (TCP_NODELAY).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import lazy_exports

if TYPE_CHECKING:
    from .http import create_app, is_loopback
    from .listening import bind
    from .runner import serve

__all__ = ["bind", "create_app", "is_loopback", "serve"]

__getattr__ = lazy_exports(
    __name__,
    {
        "http": ("create_app", "is_loopback"),
        "listening": ("bind",),
        "runner": ("serve",),
    },
)
