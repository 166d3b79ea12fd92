"""(being written)"""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer

from server.settings import Settings

__all__ = ["register"]


def register(server: MCPServer[Any], settings: Settings) -> None:
    """Register the tools of this family."""
