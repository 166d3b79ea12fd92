"""Roles and databases inside a running branch server, as Neon's control plane creates them.

Neon makes every role it creates a member of ``neon_superuser`` (CREATEDB, CREATEROLE, BYPASSRLS, and the predefined
roles that read and write all data) and gives it CREATEROLE, CREATEDB, BYPASSRLS and REPLICATION of its own; the
project's first database belongs to ``<database>_owner``. Utility statements take no parameters, so names go through
``quote_ident`` and passwords through ``quote_literal``.
"""

from __future__ import annotations

import asyncpg

from ..sql.quoting import quote_ident, quote_literal
from .clusters import Cluster

__all__ = [
    "bootstrap",
    "create_database",
    "create_neon_superuser",
    "create_role",
    "drop_database",
    "drop_role",
    "inventory",
    "set_password",
]

_CONNECT_TIMEOUT = 10.0


async def _execute(cluster: Cluster, *statements: str, database: str = "postgres") -> None:
    conn = await asyncpg.connect(cluster.dsn(database), timeout=_CONNECT_TIMEOUT)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def create_neon_superuser(cluster: Cluster) -> None:
    """Create ``neon_superuser`` on a fresh cluster: the role every role Neon creates is a member of."""
    await _execute(
        cluster,
        "CREATE ROLE neon_superuser CREATEDB CREATEROLE NOLOGIN BYPASSRLS IN ROLE pg_read_all_data, pg_write_all_data",
    )


async def bootstrap(cluster: Cluster, *, role: str, password: str, database: str) -> None:
    """Create ``neon_superuser``, the owner ``role`` with ``password`` and its ``database`` on a fresh cluster."""
    await create_neon_superuser(cluster)
    await create_role(cluster, role, password)
    await create_database(cluster, database, role)


async def create_role(cluster: Cluster, name: str, password: str | None) -> None:
    """A role as Neon's ``compute_ctl`` makes one: CREATEROLE, CREATEDB, BYPASSRLS and REPLICATION of its own (role
    attributes are not inherited through membership) and a member of ``neon_superuser``; with a password it can log
    in, without it cannot."""
    login = f"LOGIN PASSWORD {quote_literal(password)}" if password is not None else "NOLOGIN"
    attributes = "INHERIT CREATEROLE CREATEDB BYPASSRLS REPLICATION"
    await _execute(cluster, f"CREATE ROLE {quote_ident(name)} {attributes} {login} IN ROLE neon_superuser")


async def set_password(cluster: Cluster, name: str, password: str) -> None:
    await _execute(cluster, f"ALTER ROLE {quote_ident(name)} LOGIN PASSWORD {quote_literal(password)}")


async def drop_role(cluster: Cluster, name: str, databases: list[str]) -> None:
    """Drop the role after dropping what it owns in each of ``databases`` (as Neon does)."""
    for database in databases:
        await _execute(cluster, f"DROP OWNED BY {quote_ident(name)}", database=database)
    await _execute(cluster, f"DROP ROLE {quote_ident(name)}")


async def create_database(cluster: Cluster, name: str, owner: str) -> None:
    await _execute(cluster, f"CREATE DATABASE {quote_ident(name)} OWNER {quote_ident(owner)}")


async def drop_database(cluster: Cluster, name: str) -> None:
    """Drop the database, ending its sessions first."""
    await _execute(cluster, f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")


async def inventory(cluster: Cluster) -> tuple[set[str], dict[str, str]]:
    """The roles (names) and user databases (name → owner) that exist in the running cluster."""
    conn = await asyncpg.connect(cluster.dsn(), timeout=_CONNECT_TIMEOUT)
    try:
        roles = await conn.fetch("SELECT rolname FROM pg_roles WHERE rolname !~ '^pg_'")
        databases = await conn.fetch(
            "SELECT datname, pg_get_userbyid(datdba) AS owner FROM pg_database "
            "WHERE NOT datistemplate AND datname <> 'postgres'"
        )
    finally:
        await conn.close()
    return {row["rolname"] for row in roles}, {row["datname"]: row["owner"] for row in databases}
