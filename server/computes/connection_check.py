"""connection_check: why an application cannot connect to a Neon branch, as findings, each with a suggested fix.

The check resolves the target (branch, database, role) without failing on a missing database or role (those are
findings), then looks at, in order:

- the branch's read-write compute: none, disabled, suspended (it wakes on the first connection; the time that took is
  measured), or waking;
- the database and the role: do they exist, may the role log in, is its password known to Neon;
- reachability and time to connect over the pooled URI (PgBouncer) and the direct one, as the role when Neon knows
  its password, else as the database's owner;
- TLS: what the URI asks for (Neon requires TLS, and so does local Neon's front door);
- connections in use against ``max_connections`` (and the database's and role's own limits);
- the pooler's transaction-mode caveats.

Passwords never appear: URIs are used, never shown; findings name hosts, roles and databases only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, Field

from ..errors import InvalidInput, NeonAPIFailure, NeonMCPError
from ..sql.quoting import quote_ident

if TYPE_CHECKING:
    from ..neon.client import NeonClient
    from ..neon.models import Branch, Endpoint
    from ..neon.targets import Directory
    from ..sql.database import Guards
    from ..sql.places import Places

__all__ = ["ConnectionCheck", "ConnectionReport", "Finding", "Route"]

Status = Literal["ok", "info", "warning", "problem"]

_LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
_TLS_MODES = ("require", "verify-ca", "verify-full")
_BUSY_SHARE = 0.8
_CONNECT_TIMEOUT = 15.0
_POOLER_CAVEATS = (
    "Pooled URIs go through PgBouncer in transaction mode: session state (SET, temporary tables, advisory locks, "
    "LISTEN) does not outlive a transaction, and named prepared statements may land on another server connection."
)
_POOLER_FIX = (
    "Use SET LOCAL inside transactions; turn off client-side statement caching (asyncpg statement_cache_size=0, "
    "psycopg prepare_threshold=None, node-postgres: no named statements) unless the pooler supports protocol-level "
    "prepared statements; use the direct URI for migrations, LISTEN/NOTIFY and session features."
)


class Finding(BaseModel):
    check: str = Field(description="compute, database, role, pooled, direct, tls, connections or pooler")
    status: Status
    finding: str
    fix: str | None = None


class Route(BaseModel):
    route: Literal["pooled", "direct"]
    host: str
    reachable: bool
    connect_ms: float | None = Field(default=None, description="connecting and running SELECT 1")
    error: str | None = None


class ConnectionReport(BaseModel):
    project_id: str
    branch: str
    branch_id: str
    database: str = Field(description="the database asked about")
    role: str = Field(description="the role asked about")
    compute: str | None = Field(default=None, description="the branch's read-write compute")
    compute_state: str | None = Field(default=None, description="its state before the check connected")
    woke_in_ms: float | None = Field(default=None, description="a suspended compute: time until it answered")
    tls: str | None = Field(default=None, description="the URI's sslmode")
    routes: list[Route] = Field(default_factory=list)
    connections: int | None = Field(default=None, description="client connections in use on the compute")
    max_connections: int | None = None
    databases: list[str] = Field(default_factory=list, description="the branch's databases")
    login_roles: list[str] = Field(default_factory=list, description="roles that may log in (read with SQL)")
    findings: list[Finding]
    ok: bool = Field(description="no finding is a problem")


@dataclass
class _Facts:
    """What the check learned so far."""

    project_id: str
    branch: Branch
    database: str
    role: str
    checked_database: str
    connect_as: str
    findings: list[Finding] = field(default_factory=list)

    def add(self, check: str, status: Status, finding: str, fix: str | None = None) -> None:
        self.findings.append(Finding(check=check, status=status, finding=finding, fix=fix))


class ConnectionCheck:
    """Diagnoses connecting to a branch (see the module docstring); ``role`` is the configured role (NEON_ROLE)."""

    def __init__(
        self, neon: NeonClient, directory: Directory, places: Places, guards: Guards, *, role: str | None = None
    ) -> None:
        self.neon = neon
        self.directory = directory
        self.places = places
        self.guards = guards
        self.role = role

    async def check(
        self, branch: str | None = None, database: str | None = None, role: str | None = None
    ) -> ConnectionReport:
        """Diagnose connecting to ``branch``/``database`` as ``role`` (each defaulted as other tools default them).

        Raises ``InvalidInput`` only for an unknown branch or project; everything else is a finding.
        """
        directory = self.directory
        neon = self.neon
        project_id = await directory.project_id()
        found = await directory.branch(branch)
        databases = await neon.list_databases(project_id, found.id)
        names = [d.name for d in databases]
        try:
            default_db = (await directory.database(project_id, found, None)).name
        except InvalidInput:
            default_db = names[0] if names else ""
        wanted_db = database or default_db
        checked = wanted_db if wanted_db in names else default_db
        owner = next((d.owner_name for d in databases if d.name == checked), "")
        wanted_role = role or self.role or owner
        api_roles = [r.name for r in await neon.list_roles(project_id, found.id)]
        facts = _Facts(
            project_id=project_id,
            branch=found,
            database=wanted_db,
            role=wanted_role,
            checked_database=checked,
            connect_as=wanted_role if wanted_role in api_roles else owner,
        )
        report = ConnectionReport(
            project_id=project_id,
            branch=found.name,
            branch_id=found.id,
            database=wanted_db,
            role=wanted_role,
            databases=names,
            findings=[],
            ok=True,
        )
        self._database_finding(facts, names)
        endpoints = await neon.list_endpoints(project_id, found.id)
        writer = next((e for e in endpoints if e.type == "read_write"), None)
        if self._compute_finding(facts, writer, report) and checked:
            assert writer is not None
            await self._routes(facts, writer, report)
            await self._inside(facts, api_roles, report)
        facts.add("pooler", "info", _POOLER_CAVEATS, _POOLER_FIX)
        report.findings = facts.findings
        report.ok = not any(f.status == "problem" for f in facts.findings)
        return report

    # --- the target ----------------------------------------------------------------------------------------------

    def _database_finding(self, facts: _Facts, names: list[str]) -> None:
        if not names:
            facts.add(
                "database",
                "problem",
                f"branch {facts.branch.name} has no database",
                "create one (CREATE DATABASE, or Neon's console or API)",
            )
        elif facts.database not in names:
            facts.add(
                "database",
                "problem",
                f"database {facts.database!r} does not exist on branch {facts.branch.name} (its databases are "
                f"listed below); the other checks used {facts.checked_database}",
                f"connect to one of those (the path of the URI, or database=), or create {facts.database!r} "
                "(CREATE DATABASE, or Neon's console or API)",
            )
        else:
            facts.add("database", "ok", f"database {facts.database} exists")

    def _compute_finding(self, facts: _Facts, writer: Endpoint | None, report: ConnectionReport) -> bool:
        """Add what the compute's state means; whether connecting can be tried."""
        name = facts.branch.name
        if writer is None:
            facts.add(
                "compute",
                "problem",
                f"branch {name} has no read-write compute, so nothing can connect to it",
                "add a compute to the branch (Neon's console or API), or work on a branch made with one "
                "(create_branch with_compute=true)",
            )
            return False
        report.compute = writer.id
        report.compute_state = writer.current_state
        if writer.disabled:
            facts.add(
                "compute",
                "problem",
                f"compute {writer.id} is disabled: Neon refuses connections to it",
                "enable it again (Neon's console, or the API: PATCH the endpoint with disabled=false)",
            )
            return False
        if writer.current_state == "idle" and writer.pending_state != "active":
            timeout = writer.suspend_timeout_seconds
            facts.add(
                "compute",
                "warning",
                f"compute {writer.id} was suspended (scaled to zero"
                + (f" after {timeout} s idle" if timeout and timeout > 0 else "")
                + "); the first connection wakes it, which an application sees as a slow connect",
                "nothing, if clients allow a few seconds for the first connect (connect_timeout ≥ 10 s); to avoid "
                "cold starts keep it running: configure_compute suspend_timeout_seconds=-1 (or a longer timeout)",
            )
        elif writer.pending_state is not None and writer.pending_state != writer.current_state:
            facts.add(
                "compute", "info", f"compute {writer.id} is {writer.current_state}, becoming {writer.pending_state}"
            )
        else:
            facts.add("compute", "ok", f"compute {writer.id} is {writer.current_state}")
        return True

    # --- connecting ----------------------------------------------------------------------------------------------

    async def _routes(self, facts: _Facts, writer: Endpoint, report: ConnectionReport) -> None:
        from ..sql.database import Databases

        neon = self.neon
        woke = writer.current_state != "active" or writer.pending_state is not None
        started = time.monotonic()
        for pooled in (True, False):
            route: Literal["pooled", "direct"] = "pooled" if pooled else "direct"
            try:
                secret = await neon.connection_uri(
                    facts.project_id, facts.branch.id, facts.checked_database, facts.connect_as, pooled=pooled
                )
            except NeonAPIFailure as exc:
                facts.add(route, "problem", f"Neon gave no {route} URI for role {facts.connect_as}: {exc.message}")
                continue
            uri = secret.get_secret_value()
            parts = urlsplit(uri)
            host = parts.netloc.rpartition("@")[2]
            if report.tls is None:
                report.tls = (parse_qs(parts.query).get("sslmode") or ["(not set)"])[0]
            databases = Databases(
                uri, self.guards, pool_size=1, cache_statements=False, connect_timeout=_CONNECT_TIMEOUT
            )
            begun = time.monotonic()
            try:
                async with databases.connection() as conn:
                    await conn.fetchval("SELECT 1")
            except NeonMCPError as exc:
                error = str(exc).splitlines()[0]
                report.routes.append(Route(route=route, host=host, reachable=False, error=error))
                facts.add(
                    route,
                    "problem",
                    f"{route} connection to {host} as {facts.connect_as} failed: {error}",
                    _connect_fix(error, facts),
                )
            else:
                elapsed = round((time.monotonic() - begun) * 1000, 1)
                report.routes.append(Route(route=route, host=host, reachable=True, connect_ms=elapsed))
                if woke and report.woke_in_ms is None:
                    report.woke_in_ms = round((time.monotonic() - started) * 1000, 1)
                    facts.add(
                        "compute",
                        "info",
                        f"the compute answered {report.woke_in_ms:g} ms after the first "
                        "connection attempt (including waking it)",
                    )
                facts.add(
                    route, "ok", f"{route} connection to {host} as {facts.connect_as}: SELECT 1 in {elapsed:g} ms"
                )
            finally:
                await databases.close()
        self._tls_finding(facts, report)

    def _tls_finding(self, facts: _Facts, report: ConnectionReport) -> None:
        hosts = {route.host.rsplit(":", 1)[0] for route in report.routes}
        mode = report.tls or "(not set)"
        if mode not in _TLS_MODES and hosts and hosts <= set(_LOCAL_HOSTS):
            facts.add(
                "tls",
                "info",
                f"local Neon has no TLS (sslmode={mode}); Neon itself requires TLS",
                "against Neon, connect with sslmode=require (verify-full with the system's CA certificates is safer)",
            )
        elif mode in _TLS_MODES:
            facts.add(
                "tls",
                "ok",
                f"the URI requires TLS (sslmode={mode}), as Neon does",
                "clients without SNI need the endpoint id in the options: options=endpoint%3D<compute id>",
            )
        else:
            facts.add(
                "tls",
                "problem",
                f"Neon requires TLS, and the URI says sslmode={mode}",
                "add sslmode=require (or verify-full) to the connection string",
            )

    # --- inside the database -------------------------------------------------------------------------------------

    async def _inside(self, facts: _Facts, api_roles: list[str], report: ConnectionReport) -> None:
        """Role facts and connection counts, read as the server's own role (reads only)."""
        try:
            place = await self.places.place(facts.branch.id, facts.checked_database)
            role_rows, count_rows, login_rows = await place.databases.read_catalog(
                facts.checked_database,
                [
                    (
                        "SELECT rolcanlogin, rolconnlimit, rolvaliduntil, "
                        "(SELECT count(*) FROM pg_catalog.pg_stat_activity a WHERE a.usename = r.rolname) "
                        "FROM pg_catalog.pg_roles r WHERE rolname = $1",
                        [facts.role],
                    ),
                    (
                        "SELECT (SELECT count(*) FROM pg_catalog.pg_stat_activity "
                        "WHERE backend_type = 'client backend'), current_setting('max_connections')::int, "
                        "current_setting('superuser_reserved_connections')::int, "
                        "(SELECT datconnlimit FROM pg_catalog.pg_database WHERE datname = $1), "
                        "(SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE datname = $1)",
                        [facts.checked_database],
                    ),
                    (
                        "SELECT rolname FROM pg_catalog.pg_roles WHERE rolcanlogin AND rolname !~ '^pg_' ORDER BY 1",
                        [],
                    ),
                ],
            )
        except NeonMCPError as exc:
            facts.add("role", "warning", f"could not read the role and connection facts: {str(exc).splitlines()[0]}")
            return
        report.login_roles = [row[0] for row in login_rows]
        self._role_finding(facts, api_roles, role_rows[0] if role_rows else None)
        used, max_connections, reserved, db_limit, db_used = count_rows[0]
        report.connections, report.max_connections = int(used), int(max_connections)
        available = int(max_connections) - int(reserved)
        share = int(used) / available if available > 0 else 1.0
        text = (
            f"{used} client connection(s) in use of {available} (max_connections {max_connections}, {reserved} "
            "reserved for superusers)"
        )
        if share >= _BUSY_SHARE:
            facts.add(
                "connections",
                "problem" if share >= 1 else "warning",
                text,
                "use the pooled URI (PgBouncer takes up to 10,000 client connections on few server connections), "
                "close idle connections or lower client pool sizes, or give the compute more CU (max_connections "
                "grows with its size on Neon)",
            )
        else:
            facts.add("connections", "ok", text)
        if db_limit is not None and int(db_limit) >= 0 and int(db_used) >= int(db_limit):
            facts.add(
                "connections",
                "problem",
                f"database {facts.checked_database} allows {db_limit} connection(s) and has {db_used}",
                f"raise it: ALTER DATABASE {facts.checked_database} CONNECTION LIMIT <n> (-1: no limit)",
            )

    def _role_finding(
        self,
        facts: _Facts,
        api_roles: list[str],
        row: tuple[bool, int, datetime | None, int] | None,
    ) -> None:
        role = facts.role
        if row is None:
            facts.add(
                "role",
                "problem",
                f"role {role!r} does not exist on branch {facts.branch.name} (the roles that may log in are listed "
                "below)",
                f"use one of those, or create it: create_role(name={role!r}, privileges=read|write|owner) gives "
                "exactly the privileges asked for",
            )
            return
        can_login, limit, valid_until, in_use = row
        if not can_login:
            facts.add(
                "role",
                "problem",
                f"role {role} exists but may not log in (NOLOGIN): it is a group role",
                f"connect as a login role that is a member of it, or allow it: ALTER ROLE {quote_ident(role)} LOGIN",
            )
            return
        if valid_until is not None and valid_until < datetime.now(UTC):
            facts.add(
                "role",
                "problem",
                f"the password of role {role} expired at {valid_until.isoformat()}",
                f"ALTER ROLE {quote_ident(role)} VALID UNTIL 'infinity' (and set a new password)",
            )
            return
        if limit is not None and int(limit) >= 0 and int(in_use) >= int(limit):
            facts.add(
                "role",
                "problem",
                f"role {role} allows {limit} connection(s) and has {in_use}",
                f"ALTER ROLE {quote_ident(role)} CONNECTION LIMIT <n> (-1: no limit), or close idle connections",
            )
            return
        if role in api_roles:
            facts.add("role", "ok", f"role {role} exists and may log in")
        else:
            facts.add(
                "role",
                "info",
                f"role {role} exists and may log in; it was made with SQL, so Neon does not know its password and "
                f"connecting was tried as {facts.connect_as} instead",
                "connect with the password set when it was created (or set one: ALTER ROLE "
                f"{quote_ident(role)} PASSWORD …)",
            )


def _connect_fix(error: str, facts: _Facts) -> str:
    """A suggested fix for a failed connection, from PostgreSQL's or the network's message."""
    text = error.lower()
    if "password authentication failed" in text:
        return f"check the password of role {facts.connect_as} (Neon's console can reset it)"
    if "not permitted to log in" in text:
        return f"ALTER ROLE {quote_ident(facts.connect_as)} LOGIN, or connect as a login role"
    if "does not exist" in text:
        return "check the database and role names in the connection string"
    if "too many" in text:
        return "use the pooled URI or close idle connections"
    return "check that the compute is running and reachable from the client (host, port, firewall, IP allow list)"
