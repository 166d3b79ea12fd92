"""agent.md: the Claude Code subagent definition, made from the neon-db-expert prompt and the server's tools.

``python -m prompts.agent_md [server-name] > agent.md`` writes it for the default settings (what the repository
ships; a test keeps the two equal). Claude Code names an MCP tool ``mcp__<server>__<tool>``, where ``<server>`` is the
name given to ``claude mcp add`` (``neon`` in the README).
"""

from __future__ import annotations

import asyncio
import json
import sys

from pydantic import SecretStr

from prompts import render
from server.settings import Settings

__all__ = ["agent_md", "neon_tool_names"]

DESCRIPTION = (
    "Use this agent for anything about the project's Neon PostgreSQL databases: setting up a new application's "
    "database (a Neon project), finding projects across organisations, running and explaining queries, "
    "designing schemas, shipping schema migrations safely (tested on a branch, linted, confirmed), managing branches "
    "(create, reset, restore to a point in time, delete), tuning performance, scaling computes, diagnosing "
    "connections, and setting up least-privilege roles. Examples: <example>Context: the user needs a new table. "
    "user: 'I need a users table with email, name and created_at' assistant: 'I'll use the neon-db-expert agent to "
    "design the table and ship it with a tested migration.'</example> <example>Context: the application cannot "
    "connect. user: 'My app can't connect to the Neon database anymore' assistant: 'Let me use the neon-db-expert "
    "agent to diagnose the connection.'</example> <example>Context: slow queries in production. user: 'My queries "
    "are running slowly on the production branch' assistant: 'I'll engage the neon-db-expert agent to explain the "
    "queries and suggest indexes, proven on a branch first.'</example>"
)


def neon_tool_names() -> list[str]:
    """The tools a server on Neon offers in its default access mode, in registration order."""
    from server.mcp.assembly import build_server

    server = build_server(_neon_settings())
    return [tool.name for tool in asyncio.run(server.list_tools())]


def agent_md(server_name: str = "neon", settings: Settings | None = None) -> str:
    settings = settings or _neon_settings()
    tools = ", ".join(f"mcp__{server_name}__{name}" for name in neon_tool_names())
    body = render("neon-db-expert", settings)
    # The description as a double-quoted scalar (JSON's form is valid YAML): it contains ": " and quotes.
    description = json.dumps(DESCRIPTION, ensure_ascii=False)
    return f"---\nname: neon-db-expert\ndescription: {description}\ntools: {tools}\nmodel: sonnet\n---\n\n{body}"


def _neon_settings() -> Settings:
    """Settings of a server on Neon (nothing is contacted: only the tool list and the prompt are read)."""
    return Settings(neon_api_key=SecretStr("unused"), neon_api_host="http://127.0.0.1:1/api/v2")


if __name__ == "__main__":
    sys.stdout.write(agent_md(sys.argv[1] if len(sys.argv) > 1 else "neon"))
