"""What the server's database role may do beyond the reach of the SQL policy, said plainly, and refused on request.

A superuser, and a member of ``pg_execute_server_program``, ``pg_read_server_files`` or ``pg_write_server_files``,
can run programs and read or write files on the database host (``COPY … TO PROGRAM``, ``pg_read_file``,
``lo_export``). The SQL policy refuses the statements it can see doing that, and read-only mode runs reads in READ
ONLY transactions; but with such a role, code the statement does not show (a function behind a view, an operator, a
trigger an administrator wrote) runs with these powers too. Read-only mode is then the policy's promise, not
PostgreSQL's: only a role without these powers makes it PostgreSQL's.

``GuardedPlaces`` reads the powers of each role the server connects as, the first time it connects (connections
are made lazily, on a tool's first call, so that a server starts without waking a suspended Neon compute): a role
with them is logged once, as a warning, and with ``--require-least-privilege`` every call through it is refused. The
CLI checks the default place eagerly at start when that flag is set, so that a misconfigured
server refuses to start rather than its first call (``server.cli``). ``health_check`` reports the same facts.
"""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import PolicyViolation

if TYPE_CHECKING:
    from ..settings import AccessMode
    from .database import Databases
    from .places import Place, Places

__all__ = ["SERVER_ROLES", "GuardedPlaces", "RolePowers", "read_powers"]

logger = logging.getLogger("neon_mcp.role")

SERVER_ROLES = ("pg_execute_server_program", "pg_read_server_files", "pg_write_server_files")
"""PostgreSQL's predefined roles that reach the database host's programs and files."""

_POWERS_SQL = """
SELECT r.rolname AS role, r.rolsuper AS superuser,
       ARRAY(SELECT p.rolname::text FROM pg_catalog.pg_roles p
             WHERE NOT r.rolsuper  -- a superuser is a member of every role: its superuser bit says it all
               AND p.rolname = ANY($1::text[]) AND pg_catalog.pg_has_role(r.oid, p.oid, 'MEMBER')
             ORDER BY 1) AS server_roles
FROM pg_catalog.pg_roles r WHERE r.rolname = current_user
"""


@dataclass(frozen=True, slots=True)
class RolePowers:
    """The role a connection runs as, and its powers beyond SQL."""

    role: str
    superuser: bool
    server_roles: tuple[str, ...] = ()
    """The members of ``SERVER_ROLES`` it belongs to (directly or through other roles)."""

    @property
    def powerful(self) -> bool:
        """It can reach the database host's programs or files."""
        return self.superuser or bool(self.server_roles)

    @property
    def powers(self) -> list[str]:
        return (["superuser"] if self.superuser else []) + list(self.server_roles)

    def explain(self, access_mode: AccessMode | None = None) -> str:
        """What the role's powers mean, in words (empty when it has none)."""
        if not self.powerful:
            return ""
        what = "is a superuser" if self.superuser else f"is a member of {', '.join(self.server_roles)}"
        mode = (
            " This server runs in read-only mode, which"
            if access_mode == "read-only"
            else " Read-only mode (and the SQL policy in every mode)"
        )
        return (
            f"the server's database role {self.role} {what}: PostgreSQL lets it run programs or read and write files "
            f"on the database host (COPY … TO PROGRAM, pg_read_file, lo_export).{mode} refuses the statements it "
            "sees doing that, but code a statement does not show (a function behind a view, an operator or a "
            "trigger someone else defined) runs with these powers too: read-only is the server's promise here, not "
            "a permission PostgreSQL enforces."
        )

    def remedy(self, *, neon: bool) -> str:
        """How to connect as a least-privilege role instead."""
        how = (
            "create one with the create_role tool (privileges='read' or 'write', on the schemas the agent needs) and "
            "set NEON_ROLE to it"
            if neon
            else "create one, e.g. CREATE ROLE mcp_agent LOGIN PASSWORD <a new password>; GRANT CONNECT ON DATABASE "
            "<db> TO mcp_agent; GRANT USAGE ON SCHEMA <schema> TO mcp_agent; GRANT SELECT ON ALL TABLES IN SCHEMA "
            "<schema> TO mcp_agent; then put that role in --database-url"
        )
        return (
            f"Connect as a role that is not a superuser and holds none of {', '.join(SERVER_ROLES)}: {how}. "
            "--require-least-privilege makes the server refuse a role with these powers."
        )


async def read_powers(place: Place) -> RolePowers:
    """The powers of the role ``place``'s connections run as (one catalog query). Raises ``DatabaseError``."""
    async with place.databases.connection(place.database) as conn:
        row = await conn.fetchrow(_POWERS_SQL, list(SERVER_ROLES))
    if row is None:  # current_user always has a pg_roles row; be safe rather than wrong
        return RolePowers(role="(unknown)", superuser=True)
    return RolePowers(str(row["role"]), bool(row["superuser"]), tuple(row["server_roles"] or ()))


class GuardedPlaces:
    """``Places`` whose connections' role is checked the first time each pool is used: a powerful role is logged
    once, and refused (``PolicyViolation``) when ``require_least_privilege`` is set."""

    def __init__(self, inner: Places, *, access_mode: AccessMode, require_least_privilege: bool, neon: bool) -> None:
        self.inner = inner
        self.access_mode: AccessMode = access_mode
        self.require_least_privilege = require_least_privilege
        self.neon = neon
        self._known: weakref.WeakKeyDictionary[Databases, RolePowers] = weakref.WeakKeyDictionary()

    async def place(self, branch: str | None = None, database: str | None = None) -> Place:
        place = await self.inner.place(branch, database)
        powers = self._known.get(place.databases)
        if powers is None:
            powers = await read_powers(place)
            if powers.powerful and place.databases not in self._known:
                logger.warning("%s %s", powers.explain(self.access_mode), powers.remedy(neon=self.neon))
            self._known[place.databases] = powers
        if powers.powerful and self.require_least_privilege:
            raise PolicyViolation(refusal(powers))
        return place

    async def close(self) -> None:
        await self.inner.close()


def refusal(powers: RolePowers) -> str:
    """Why a server with ``--require-least-privilege`` refuses to work as this role."""
    return (
        f"refused: --require-least-privilege is set and the database role {powers.role} has "
        f"{' and '.join(powers.powers)} (powers over the database host's programs and files)"
    )
