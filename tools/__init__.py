"""The tools agents call, one module per family; each module has ``register(server, …)``.

The Neon-only families (branches, computes, roles, neon_info) are imported only when Neon is served: a server on a
plain database URL starts without them.
"""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer

from server.settings import Settings
from tools import confirm, migrate, performance, schema, sql

__all__ = ["register_all"]


def register_all(server: MCPServer[Any], settings: Settings) -> None:
    """Register every tool the settings allow.

    Project, branch and search tools only with Neon; confirm_operation only where something can need confirming
    (writes, or with Neon the confirmed project and branch operations).
    """
    writes_possible = settings.effective_access_mode != "read-only"
    sql.register(server, writes_possible=writes_possible)
    schema.register(server)
    performance.register(server, settings)
    migrate.register(server, settings)
    if settings.uses_neon:
        from tools import branches, computes, neon_info, projects, roles, search

        neon_info.register(server, settings)
        projects.register(server, settings)
        search.register(server, settings)
        branches.register(server, settings)
        computes.register(server, settings)
        roles.register(server, settings)
    if writes_possible or settings.uses_neon:
        confirm.register(server)
