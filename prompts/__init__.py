"""Prompts: the neon-db-expert system prompt and workflow prompts, kept as markdown files next to this module."""

from __future__ import annotations

from importlib import resources
from typing import Any

from mcp.server.mcpserver import MCPServer

from server.settings import Settings

__all__ = ["load", "register_all"]


def load(name: str) -> str:
    """The text of ``prompts/<name>.md``."""
    return resources.files(__package__).joinpath(f"{name}.md").read_text(encoding="utf-8")


def register_all(server: MCPServer[Any], settings: Settings) -> None:
    """Register the prompts (the full set arrives with the prompts issue)."""

    schema = settings.default_schema or "your schema"

    def neon_db_expert() -> str:
        """The Neon database expert's system prompt for this server."""
        return load("neon-db-expert").replace("{default_schema}", schema)

    server.prompt(name="neon-db-expert", title="Neon database expert")(neon_db_expert)
