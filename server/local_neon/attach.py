"""``neon-mcp serve`` with neither a database URL nor a Neon API key: serve local Neon.

Starts local Neon in the background (or attaches to the running one), takes its first project — creating one named
``neon-mcp`` when there is none — and answers with the connection URI of the project's default branch, database
``neondb``, role ``neondb_owner``. Full Neon mode (projects, branches, the branch tools) replaces this with the Neon
issue; until then the SQL tools work offline on the embedded default.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .daemon import ensure_running

__all__ = ["local_database_url"]

logger = logging.getLogger("neon_mcp.local_neon")

DEFAULT_PROJECT = "neon-mcp"


async def local_database_url(home: Path) -> str:
    """The URI to serve; raises ``LocalNeonDidNotStart`` or a ``NeonMCPError`` with the reason."""
    from server.neon_client import NeonClient

    host, key = ensure_running(home)
    async with NeonClient(key, base_url=host) as client:
        projects = await client.list_projects()
        if projects:
            project_id = projects[0].id
        else:
            created = await client.post("/projects", json={"project": {"name": DEFAULT_PROJECT}})
            project_id = created["project"]["id"]
            await client.wait_for_operations(project_id, created["operations"], poll_interval=0.1)
        branch = next(b for b in await client.list_branches(project_id) if b.default)
        uri = await client.connection_uri(project_id, branch.id, "neondb", "neondb_owner", pooled=False)
    logger.info("serving local Neon: project %s, branch %s (%s), database neondb", project_id, branch.name, host)
    return uri.get_secret_value()
