"""The tools agents call, one module per family; each module has ``register(server, …)``."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer

from server.settings import Settings

from . import confirm, schema, sql

__all__ = ["register_all"]


def register_all(server: MCPServer[Any], settings: Settings) -> None:
    """Register every tool the settings allow (confirm_operation only where something can need confirming)."""
    writes_possible = settings.access_mode != "read-only"
    sql.register(server, writes_possible=writes_possible)
    schema.register(server)
    if writes_possible:
        confirm.register(server)
