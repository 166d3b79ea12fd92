"""Prompts: the neon-db-expert system prompt and workflow prompts, kept as markdown files next to this module.

Each file is a template: ``{production_branch}``, ``{default_schema}`` and ``{access_mode}`` come from the settings,
the workflow prompts' own arguments (``{change}``, ``{sql}``, ``{symptom}``, ``{requirements}``) from the caller.
Substitution is one pass over the template, so an argument that itself contains ``{…}`` is left as it is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import resources
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from pydantic import Field

from server.settings import Settings

__all__ = ["WORKFLOWS", "load", "register_all", "render"]

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")

WORKFLOWS = ("safe-migration", "optimize-query", "diagnose-connection", "design-schema")


def load(name: str) -> str:
    """The text of ``prompts/<name>.md``."""
    return resources.files(__package__).joinpath(f"{name}.md").read_text(encoding="utf-8")


def render(name: str, settings: Settings, **arguments: str) -> str:
    """``prompts/<name>.md`` with the settings' values and ``arguments`` filled in (one pass)."""
    values: Mapping[str, str] = {
        "production_branch": settings.production_branch,
        "default_schema": settings.default_schema or "your_schema",
        "access_mode": settings.effective_access_mode,
        **arguments,
    }
    text = _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), load(name))
    if name == "neon-db-expert" and not settings.uses_neon:
        text = (
            "Note: this server is connected to a plain PostgreSQL database (a URL), not to Neon: the branch tools, "
            "migrate and time travel are not available here; everything else below applies.\n\n" + text
        )
    return text


def register_all(server: MCPServer[Any], settings: Settings) -> None:
    """Register the expert's system prompt and the workflow prompts."""

    def neon_db_expert() -> str:
        """The Neon database expert's system prompt, for this server's settings."""
        return render("neon-db-expert", settings)

    def safe_migration(
        change: Annotated[str, Field(description="The schema change to make, in words or as SQL.")],
    ) -> str:
        """Make a schema change safely: look, write, plan on a branch, review the findings, apply, verify."""
        return render("safe-migration", settings, change=change)

    def optimize_query(sql: Annotated[str, Field(description="The slow query.")]) -> str:
        """Find why a query is slow and fix it: explain, index suggestions, proof on a branch, ship by migration."""
        return render("optimize-query", settings, sql=sql)

    def diagnose_connection(
        symptom: Annotated[str, Field(description="What the application sees: the error, or the slowness.")],
    ) -> str:
        """Diagnose why an application cannot connect (or connects badly) before changing anything."""
        return render("diagnose-connection", settings, symptom=symptom)

    def design_schema(
        requirements: Annotated[str, Field(description="What the data is and how it is used.")],
    ) -> str:
        """Design a schema for requirements: questions first, then tables, keys, access, a planned migration."""
        return render("design-schema", settings, requirements=requirements)

    server.prompt(name="neon-db-expert", title="Neon database expert")(neon_db_expert)
    server.prompt(name="safe-migration", title="Safe migration")(safe_migration)
    server.prompt(name="optimize-query", title="Optimize a query")(optimize_query)
    server.prompt(name="diagnose-connection", title="Diagnose a connection problem")(diagnose_connection)
    server.prompt(name="design-schema", title="Design a schema")(design_schema)
