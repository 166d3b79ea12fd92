"""A branch database's schema as SQL (``pg_dump --schema-only``), at head or at a past point, and diffs of two."""

from __future__ import annotations

import asyncio
import difflib
import functools
from pathlib import Path
from typing import Any

from .branching import check_window, copy_data, parse_point
from .clusters import Cluster, run_as_server_user
from .errors import bad_request
from .routing import route
from .runtime import Runtime

__all__ = ["Schemas", "dump_schema"]

# pg_dump 15.14 and later write a random \restrict key into every dump; a fixed one keeps dumps comparable.
_RESTRICT_KEY = "localneon"


@functools.cache
def _supports_restrict_key(bindir: Path) -> bool:
    help_text = run_as_server_user([bindir / "pg_dump", "--help"], what="pg_dump --help").stdout
    return "--restrict-key" in help_text


async def dump_schema(cluster: Cluster, database: str) -> str:
    """The schema of ``database`` (tables, functions, …; no data), as ``pg_dump`` writes it."""

    def run() -> str:
        options = ["--schema-only", "--dbname", database]
        if _supports_restrict_key(cluster.bindir):
            options.append(f"--restrict-key={_RESTRICT_KEY}")
        return cluster.run_client("pg_dump", *options).stdout

    return await asyncio.to_thread(run)


class Schemas:
    def __init__(self, rt: Runtime) -> None:
        self._rt = rt

    @route("branch_schema", "GET", "/projects/{project_id}/branches/{branch_id}/schema")
    async def schema(
        self, project_id: str, branch_id: str, *, db_name: str, lsn: str | None = None, timestamp: str | None = None
    ) -> dict[str, Any]:
        """``{"sql": …}``: ``pg_dump --schema-only`` of the database at head or at a past point."""
        branch = self._rt.branch(project_id, branch_id)
        project = self._rt.project(project_id)
        self._rt.database(branch, db_name)
        point = parse_point(lsn=lsn, timestamp=timestamp, lsn_field="lsn", time_field="timestamp")
        if point.is_head:
            async with self._rt.hold(branch) as cluster:
                return {"sql": await dump_schema(cluster, db_name)}
        check_window(project, branch, point, history_seconds=self._rt.history_seconds)
        with self._rt.operations.reserve([branch.id], f"a schema read of {branch.id} at a past point"):
            copy = await copy_data(self._rt, project, branch, point, run_on=None)
        try:
            async with self._rt.computes.hold(copy.timeline, port=None, password=project.superuser_password) as c:
                return {"sql": await dump_schema(c, db_name)}
        finally:
            await self._rt.drop_timeline(copy.timeline)

    @route("compare_schema", "GET", "/projects/{project_id}/branches/{branch_id}/compare_schema")
    async def compare_schema(
        self, project_id: str, branch_id: str, *, db_name: str, base_branch_id: str | None = None
    ) -> dict[str, Any]:
        """``{"diff": …}``: a unified diff from the base branch's schema (default: the parent's) to this one's."""
        branch = self._rt.branch(project_id, branch_id)
        base_id = base_branch_id or branch.parent_id
        if base_id is None:
            raise bad_request(f"branch {branch.id} has no parent: give base_branch_id to compare with")
        base = self._rt.branch(project_id, base_id)
        base_sql = (await self.schema(project_id, base.id, db_name=db_name))["sql"]
        mine = (await self.schema(project_id, branch.id, db_name=db_name))["sql"]
        diff = difflib.unified_diff(
            base_sql.splitlines(keepends=True),
            mine.splitlines(keepends=True),
            fromfile=f"{base.name}/{db_name}",
            tofile=f"{branch.name}/{db_name}",
        )
        return {"diff": "".join(diff)}
