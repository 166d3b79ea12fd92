"""``neon-mcp serve`` with neither a database URL nor a Neon API key: serve local Neon as Neon.

Starts local Neon in the background (or attaches to the running one) and picks the project to serve: the one asked
for, else the first, creating one named ``neon-mcp`` when there is none. The server then talks to local Neon's API
exactly as it talks to Neon Cloud.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .daemon import ensure_running

__all__ = ["attach"]

logger = logging.getLogger("neon_mcp.local_neon")

DEFAULT_PROJECT = "neon-mcp"


async def attach(home: Path, project_id: str | None = None) -> tuple[str, str, str]:
    """``(api host, api key, project id)``; raises ``LocalNeonDidNotStart`` or a ``NeonMCPError`` with the reason."""
    from ..neon.client import NeonClient

    host, key = ensure_running(home)
    async with NeonClient(key, base_url=host) as client:
        if project_id is None:
            projects = await client.list_projects()
            if projects:
                project_id = projects[0].id
            else:
                created = await client.post("/projects", json={"project": {"name": DEFAULT_PROJECT}})
                project_id = str(created["project"]["id"])
                await client.wait_for_operations(project_id, created["operations"], poll_interval=0.1)
    logger.info("serving local Neon: project %s (%s)", project_id, host)
    return host, key, project_id
