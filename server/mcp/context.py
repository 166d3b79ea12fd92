"""What a tool reaches through its ``Context``: the services of the tenant its request belongs to.

``services(ctx)`` gives every server's services; ``neon_services(ctx)`` Neon's, for the tools that are only
registered on a server connected to Neon.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias

from mcp.server.mcpserver import Context

from .tenants import Tenants

if TYPE_CHECKING:
    from ..root import NeonServices, Services

__all__ = ["Ctx", "neon_services", "services"]

Ctx: TypeAlias = Context[Tenants, Any]


def services(ctx: Ctx) -> Services:
    """The services of the tenant this request belongs to (see ``server.mcp.tenants``); raises ``InvalidInput`` when
    the request's Neon API key cannot be used."""
    request = ctx.request_context.request
    return ctx.request_context.lifespan_context.resolve(getattr(request, "headers", None))


def neon_services(ctx: Ctx) -> NeonServices:
    """The Neon services of this request's tenant (only Neon tools call this: they are registered with Neon only)."""
    from ..root import NeonServices

    found = services(ctx)
    if not isinstance(found, NeonServices):
        raise AssertionError("a Neon tool was called on a server without Neon")
    return found
