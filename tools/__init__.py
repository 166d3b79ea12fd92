"""The tools agents call, one module per family; each module has ``register(server, …)``."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer

from server.settings import Settings

from . import branches, confirm, neon_info, schema, sql

__all__ = ["register_all"]


def register_all(server: MCPServer[Any], settings: Settings) -> None:
    """Register every tool the settings allow.

    Branch tools only with Neon; confirm_operation only where something can need confirming (writes, or with Neon
    the confirmed branch operations).
    """
    writes_possible = settings.effective_access_mode != "read-only"
    sql.register(server, writes_possible=writes_possible)
    schema.register(server)
    if settings.uses_neon:
        neon_info.register(server, settings)
        branches.register(server, settings)
    if writes_possible or settings.uses_neon:
        confirm.register(server)
