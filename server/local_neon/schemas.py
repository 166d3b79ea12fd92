"""A branch database's schema as SQL (``pg_dump --schema-only``) or as JSON (tables, columns, keys), at head or at a
past point, and diffs of two schemas, each at head or at a past point."""

from __future__ import annotations

import asyncio
import difflib
import functools
from pathlib import Path
from typing import Any

import asyncpg

from .branching import parse_point, serving_at
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


_TABLES = """
SELECT c.oid, n.nspname AS schema, c.relname AS name
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
ORDER BY n.nspname, c.relname
"""
_COLUMNS = """
SELECT attrelid, attname AS name, format_type(atttypid, atttypmod) AS type, NOT attnotnull AS nullable,
       attgenerated <> '' AS generated
FROM pg_attribute WHERE attrelid = ANY($1::oid[]) AND attnum > 0 AND NOT attisdropped
ORDER BY attrelid, attnum
"""
_CONSTRAINTS = """
SELECT con.conrelid, con.conname AS name, con.contype::text AS contype,
       ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(num, pos)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num ORDER BY k.pos) AS columns,
       rn.nspname AS ref_schema, rc.relname AS ref_table,
       ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(num, pos)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num ORDER BY k.pos) AS ref_columns
FROM pg_constraint con
LEFT JOIN pg_class rc ON rc.oid = con.confrelid LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
WHERE con.conrelid = ANY($1::oid[]) AND con.contype IN ('p', 'u', 'f')
ORDER BY con.conrelid, con.conname
"""
_CONSTRAINT_TYPES = {"p": "primary_key", "u": "unique", "f": "foreign_key"}


async def describe_schema(cluster: Cluster, database: str) -> dict[str, Any]:
    """The tables of ``database`` with their columns and key constraints, in the spec's ``BranchSchemaJSON`` shape."""
    conn = await asyncpg.connect(cluster.dsn(database), timeout=10)
    try:
        tables = await conn.fetch(_TABLES)
        oids = [row["oid"] for row in tables]
        columns = await conn.fetch(_COLUMNS, oids)
        constraints = await conn.fetch(_CONSTRAINTS, oids)
    finally:
        await conn.close()
    described = {
        row["oid"]: {"schema": row["schema"], "name": row["name"], "columns": [], "constraints": []} for row in tables
    }
    for row in columns:
        described[row["attrelid"]]["columns"].append(
            {"name": row["name"], "type": row["type"], "nullable": row["nullable"], "generated": row["generated"]}
        )
    for row in constraints:
        constraint: dict[str, Any] = {
            "type": _CONSTRAINT_TYPES[row["contype"]],
            "name": row["name"],
            "columns": list(row["columns"]),
        }
        if row["contype"] == "f":
            constraint["referenced_table"] = {
                "schema": row["ref_schema"],
                "table": row["ref_table"],
                "columns": list(row["ref_columns"]),
            }
        described[row["conrelid"]]["constraints"].append(constraint)
    return {"tables": list(described.values())}


class Schemas:
    def __init__(self, rt: Runtime) -> None:
        self._rt = rt

    @route("branch_schema", "GET", "/projects/{project_id}/branches/{branch_id}/schema")
    async def schema(
        self,
        project_id: str,
        branch_id: str,
        *,
        db_name: str,
        lsn: str | None = None,
        timestamp: str | None = None,
        format: str = "sql",
    ) -> dict[str, Any]:
        """``{"sql": …}`` (``pg_dump --schema-only``) or ``{"json": …}`` (``format=json``) of the database at head or
        at a past point."""
        if format not in ("sql", "json"):
            raise bad_request("format must be sql or json")
        branch = self._rt.branch(project_id, branch_id)
        project = self._rt.project(project_id)
        self._rt.database(branch, db_name)
        point = parse_point(lsn=lsn, timestamp=timestamp, lsn_field="lsn", time_field="timestamp")
        async with serving_at(self._rt, project, branch, point, reserving="a schema read") as cluster:
            if format == "json":
                return {"json": await describe_schema(cluster, db_name)}
            return {"sql": await dump_schema(cluster, db_name)}

    @route("compare_schema", "GET", "/projects/{project_id}/branches/{branch_id}/compare_schema")
    async def compare_schema(
        self,
        project_id: str,
        branch_id: str,
        *,
        db_name: str,
        base_branch_id: str | None = None,
        lsn: str | None = None,
        timestamp: str | None = None,
        base_lsn: str | None = None,
        base_timestamp: str | None = None,
    ) -> dict[str, Any]:
        """``{"diff": …}``: a unified diff from the base branch's schema (default: the parent's) to this one's, each at
        head or at the point given (``lsn``/``timestamp`` for this branch, ``base_lsn``/``base_timestamp`` for the
        base)."""
        branch = self._rt.branch(project_id, branch_id)
        base_id = base_branch_id or branch.parent_id
        if base_id is None:
            raise bad_request(f"branch {branch.id} has no parent: give base_branch_id to compare with")
        base = self._rt.branch(project_id, base_id)
        base_sql = await self.schema(project_id, base.id, db_name=db_name, lsn=base_lsn, timestamp=base_timestamp)
        mine = await self.schema(project_id, branch.id, db_name=db_name, lsn=lsn, timestamp=timestamp)
        diff = difflib.unified_diff(
            base_sql["sql"].splitlines(keepends=True),
            mine["sql"].splitlines(keepends=True),
            fromfile=f"{base.name}/{db_name}",
            tofile=f"{branch.name}/{db_name}",
        )
        return {"diff": "".join(diff)}
