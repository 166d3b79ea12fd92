"""What a tool reaches through its ``Context``: the services of the tenant its request belongs to.

``services(ctx)`` gives every server's services; ``neon_services(ctx)`` Neon's, for the tools that are only
registered on a server connected to Neon.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias

from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import Context

from .tenants import Tenants

if TYPE_CHECKING:
    from ..root import NeonServices, Services

__all__ = ["Ctx", "caller_of", "neon_services", "services", "session_id"]

Ctx: TypeAlias = Context[Tenants, Any]
RequestContext: TypeAlias = ServerRequestContext[Tenants, Any]


def services(ctx: Ctx) -> Services:
    """The services of the tenant this request belongs to (see ``server.mcp.tenants``); raises ``InvalidInput`` when
    the request's Neon API key cannot be used."""
    request_context = ctx.request_context  # a property over a pydantic private attribute: read it once
    return request_context.lifespan_context.resolve(getattr(request_context.request, "headers", None))


def session_id(ctx: Ctx) -> str | None:
    """The MCP session a request belongs to, where the protocol has one: the ``Mcp-Session-Id`` of streamable HTTP, or
    the ``session_id`` of an SSE connection. None where it has none: stdio and in-process clients (one client per
    server process) and the 2026-07-28 protocol over HTTP (every request its own exchange; a pending operation then
    belongs to the tenant, and its id, an unguessable secret, to the caller it was given to)."""
    return _session_id(ctx.request_context)


def _session_id(request_context: RequestContext) -> str | None:
    request = request_context.request
    headers = getattr(request, "headers", None)
    header = headers.get("mcp-session-id") if headers is not None else None
    if header:
        return f"http:{header}"
    query = getattr(request, "query_params", None)
    sse = query.get("session_id") if query is not None else None
    return f"sse:{sse}" if sse else None


def _client_name(request_context: RequestContext) -> str | None:
    """The name the MCP client gave for itself (``clientInfo.name``: in ``initialize``, or in each request's envelope
    on the 2026-07-28 protocol), when it gave one."""
    params = getattr(request_context.session, "client_params", None)
    info = getattr(params, "client_info", None)
    name = getattr(info, "name", None)
    return name if isinstance(name, str) else None


def caller_of(ctx: Ctx) -> tuple[str | None, str | None]:
    """The call's session (``session_id``) and the name its client gave (``clientInfo.name``: in ``initialize``, or
    in each request's envelope on the 2026-07-28 protocol), what the tool boundary records of every call."""
    request_context = ctx.request_context
    return _session_id(request_context), _client_name(request_context)


def neon_services(ctx: Ctx) -> NeonServices:
    """The Neon services of this request's tenant (only Neon tools call this: they are registered with Neon only)."""
    from ..root import NeonServices

    found = services(ctx)
    if not isinstance(found, NeonServices):
        raise AssertionError("a Neon tool was called on a server without Neon")
    return found
