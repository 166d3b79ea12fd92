"""Schema-only branches: a new root timeline holding its source's roles, databases and schema, without the data.

The new timeline is initialised as a project's root is; the source branch's roles (with the branch's passwords) and
databases are created in it, then each database's schema is dumped from the source (``pg_dump --schema-only``, at
head or at a past point through a temporary copy) and restored with ``psql``. The branch's history starts after that.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import replace
from pathlib import Path

from . import catalog, ids
from .branching import Copy, Point, serving_at
from .clusters import Cluster, run_as_user
from .records import Branch, Database, Project, Role
from .runtime import Runtime
from .schemas import dump_schema

__all__ = ["copy_schema"]


async def copy_schema(
    rt: Runtime, project: Project, source: Branch, point: Point, branch: Branch, *, run_on: int | None
) -> Copy:
    """Fill ``branch`` (a new schema-only branch, with the role and database records it inherited) with ``source``'s
    schema at ``point``; its server is left running on ``run_on`` when given. Raises ``ClusterError``."""
    databases = rt.store.list(Database, project_id=branch.project_id, branch_id=branch.id)
    schemas = await _dump(rt, project, source, point, [db.name for db in databases])
    timeline = rt.computes.timeline(ids.timeline_name())
    await asyncio.to_thread(timeline.create)
    password = project.superuser_password
    try:
        cluster = rt.computes.cluster(timeline.name, port=None, password=password)
        await asyncio.to_thread(timeline.init_root, cluster)
        async with rt.computes.hold(timeline.name, port=None, password=password) as server:
            await catalog.create_neon_superuser(server)
            for role in rt.store.list(Role, project_id=branch.project_id, branch_id=branch.id):
                await catalog.create_role(server, role.name, role.password)
            for db in databases:
                await catalog.create_database(server, db.name, db.owner_name)
                await asyncio.to_thread(_restore, server, timeline.path / "schema.sql", db.name, schemas[db.name])
            base = await asyncio.to_thread(timeline.add_base, server)
        if run_on is not None:
            await rt.computes.start(timeline.name, port=run_on, password=password)
    except BaseException:
        await rt.drop_timeline(timeline.name)
        raise
    fresh = rt.store.get(Branch, branch.id) or branch
    moment = ids.now()
    rt.store.put(
        replace(
            fresh,
            timeline=timeline.name,
            history_start=base.time,
            history_start_lsn=base.lsn,
            current_state="ready",
            pending_state=None,
            state_changed_at=moment,
            updated_at=moment,
        )
    )
    return Copy(timeline.name, base.lsn, base.time, base.time, base.lsn)


async def _dump(rt: Runtime, project: Project, source: Branch, point: Point, names: list[str]) -> dict[str, str]:
    """Each database's schema in ``source`` at ``point``."""
    async with serving_at(rt, project, source, point, reserving=None) as cluster:
        return {name: await dump_schema(cluster, name) for name in names}


def _restore(cluster: Cluster, script: Path, database: str, sql: str) -> None:
    """Run the dump ``sql`` in ``database`` with ``psql`` (stopping at the first error), through a file the server's
    user can read."""
    fd = os.open(script, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        if user := run_as_user():
            os.fchown(out.fileno(), *user)
        out.write(sql)
    try:
        cluster.run_client("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", database, "-f", script)
    finally:
        os.unlink(script)
