"""create_role: a least-privilege login role, made with SQL (roles made through Neon's API join ``neon_superuser``).

Privileges, on each schema asked for (default: ``NEON_MCP_DEFAULT_SCHEMA``, else ``public``):

- ``read``: CONNECT on the database, USAGE on the schema, SELECT on its tables (views included) and sequences, and
  default privileges so that tables created later by the server's role are readable too;
- ``write``: read, plus INSERT, UPDATE, DELETE on tables and USAGE on sequences (so inserts can draw ids);
- ``owner``: for migrations: write, plus CREATE on the schema and every privilege on its tables, sequences and
  functions (TRUNCATE, REFERENCES, TRIGGER, EXECUTE). Objects it creates are its own; existing ones keep their owner.

Everything runs in one transaction on the branch, as the server's role (on Neon a member of ``neon_superuser``,
which may create roles). Identifiers go through ``quote_ident``. The password is generated here (``secrets``) and
sent to PostgreSQL only as a SCRAM-SHA-256 verifier, so neither the statement text, the server log, nor the audit
log can hold it; it reaches the caller once, only if the operator allows revealing it (``reveal_role_passwords``)
and the human accepts, and is never logged.

Protection: in access mode ``branches`` a protected branch is refused (role changes there go through ``migrate``,
reviewed on a branch first); in ``full`` creating a role there is confirmed by the human. Access mode read-only
creates no role.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field, SecretStr

from .. import access
from ..errors import InvalidInput, NeonMCPError
from ..settings import AccessMode
from ..sql.quoting import quote_ident, quote_literal
from ..state.audit import AuditLog, AuditRecord, Confirmed
from ..state.binding import Binding, Bound

if TYPE_CHECKING:
    from ..sql.places import Places

__all__ = [
    "Privileges",
    "RoleCreated",
    "RolePlan",
    "Roles",
    "scram_verifier",
]

logger = logging.getLogger(__name__)

Privileges = Literal["read", "write", "owner"]

_RESERVED = frozenset({"public", "none", "current_user", "session_user", "current_role", "neon_superuser",
                       "cloud_admin", "postgres", "neon_service", "neon_admin"})  # fmt: skip
_SCRAM_ITERATIONS = 4096
_PASSWORD_BYTES = 24

_EXISTS_SQL = "SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1"
_SCHEMAS_SQL = (
    "SELECT nspname FROM pg_catalog.pg_namespace WHERE nspname !~ '^pg_' AND nspname <> 'information_schema' ORDER BY 1"
)
_ME_SQL = "SELECT current_user"


def scram_verifier(password: str, *, salt: bytes | None = None, iterations: int = _SCRAM_ITERATIONS) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for ``password`` (what ``psql``'s ``\\password`` sends).

    The generated passwords are ASCII letters, digits, ``-`` and ``_``, which SASLprep leaves as they are.
    """
    salt = salt if salt is not None else secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


class RoleCreated(BaseModel):
    """What create_role made (or, before confirmation, would make)."""

    role: str
    privileges: Privileges
    schemas: list[str]
    database: str
    branch: str | None = None
    branch_id: str | None = None
    protected_because: str | None = None
    grants: list[str] = Field(default_factory=list, description="the statements that ran (the password left out)")
    password: str | None = Field(default=None, description="shown once, when the human allowed revealing it")
    password_revealed: bool = False
    note: str | None = Field(default=None, description="about the password: shown once, or how to set one")
    future_tables: str | None = Field(default=None, description="whose future tables the default privileges cover")


@dataclass(frozen=True, slots=True)
class RolePlan:
    """A checked role creation that has not run: the summary a human confirms and the statements to run."""

    name: str
    privileges: Privileges
    schemas: tuple[str, ...]
    database: str
    branch: str | None
    branch_id: str | None
    protected_because: str | None
    grantor: str
    summary: str
    needs_confirmation: bool = False

    def statements(self, verifier: str) -> list[str]:
        """The SQL, in order; the first carries the SCRAM verifier (never the password)."""
        role = quote_ident(self.name)
        sql = [
            f"CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
            f"PASSWORD {quote_literal(verifier)}",
            f"GRANT CONNECT ON DATABASE {quote_ident(self.database)} TO {role}",
        ]
        table_privileges = {
            "read": "SELECT",
            "write": "SELECT, INSERT, UPDATE, DELETE",
            "owner": "ALL PRIVILEGES",
        }[self.privileges]
        sequence_privileges = {"read": "SELECT", "write": "USAGE, SELECT", "owner": "ALL PRIVILEGES"}[self.privileges]
        for schema in map(quote_ident, self.schemas):
            sql.append(
                f"GRANT {'USAGE, CREATE' if self.privileges == 'owner' else 'USAGE'} ON SCHEMA {schema} TO {role}"
            )
            sql.append(f"GRANT {table_privileges} ON ALL TABLES IN SCHEMA {schema} TO {role}")
            sql.append(f"GRANT {sequence_privileges} ON ALL SEQUENCES IN SCHEMA {schema} TO {role}")
            defaults = f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT"
            sql.append(f"{defaults} {table_privileges} ON TABLES TO {role}")
            sql.append(f"{defaults} {sequence_privileges} ON SEQUENCES TO {role}")
            if self.privileges == "owner":
                sql.append(f"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {schema} TO {role}")
                sql.append(f"{defaults} EXECUTE ON FUNCTIONS TO {role}")
        return sql

    def preview(self) -> dict[str, object]:
        """The result's fields known before it runs, as JSON."""
        return self.result().model_dump(mode="json", exclude_none=True)

    async def binding(self) -> Binding:
        """The branch the role is made on, by id (the role itself does not exist yet)."""
        if self.branch_id is None:
            return ()
        return (Bound("branch", self.branch or self.branch_id, f"branch {self.branch_id}"),)

    def result(self) -> RoleCreated:
        """The result, as far as it is known before it runs."""
        return RoleCreated(
            role=self.name,
            privileges=self.privileges,
            schemas=list(self.schemas),
            database=self.database,
            branch=self.branch,
            branch_id=self.branch_id,
            protected_because=self.protected_because,
            future_tables=f"tables and sequences created later by {self.grantor}",
        )


class Roles:
    """Creates login roles with exactly the privileges asked for (see the module docstring)."""

    def __init__(
        self, places: Places, audit: AuditLog, *, access_mode: AccessMode, default_schema: str | None = None
    ) -> None:
        self.places = places
        self.audit = audit
        self.access_mode: AccessMode = access_mode
        self.default_schema = default_schema

    async def plan(
        self,
        name: str,
        privileges: Privileges,
        *,
        schemas: list[str] | None = None,
        branch: str | None = None,
        database: str | None = None,
    ) -> RolePlan:
        """Check a role creation; raises ``InvalidInput`` (bad name, role exists, unknown schema) or
        ``PolicyViolation`` (access mode, protected branch) before anything is asked."""
        _check_name(name)
        place = await self.places.place(branch, database)
        protected_because = place.protected_because
        verdict = access.decide(
            "create_role", self.access_mode, branch=place.branch_name, protected_because=protected_because
        ).enforced()
        wanted = list(dict.fromkeys(schemas or [self.default_schema or "public"]))
        exists, found, me = await place.databases.read_catalog(
            place.database, [(_EXISTS_SQL, [name]), (_SCHEMAS_SQL, []), (_ME_SQL, [])]
        )
        if exists:
            raise InvalidInput(f"role {name!r} exists already on {place.label}; choose another name")
        known = [row[0] for row in found]
        missing = [s for s in wanted if s not in known]
        if missing:
            raise InvalidInput(
                f"schema(s) {', '.join(map(repr, missing))} not found in {place.label}; schemas: "
                + (", ".join(known) or "(none)")
            )
        plan = RolePlan(
            name=name,
            privileges=privileges,
            schemas=tuple(wanted),
            database=place.database,
            branch=place.branch_name,
            branch_id=place.target.branch_id if place.target is not None else None,
            protected_because=protected_because,
            grantor=str(me[0][0]),
            summary="",
            needs_confirmation=verdict.needs_confirmation,
        )
        return replace(plan, summary=_summary(plan))

    async def create(self, plan: RolePlan, confirmed: Confirmed, *, reveal: bool) -> RoleCreated:
        """Create the planned role (``confirmed`` says how, for the audit log). ``reveal``: return its password
        (once)."""
        from ..sql.database import Caps, Statement

        place = await self.places.place(plan.branch_id, plan.database)
        password = SecretStr(secrets.token_urlsafe(_PASSWORD_BYTES))
        statements = plan.statements(scram_verifier(password.get_secret_value()))
        shown = [_without_secret(sql) for sql in statements]
        record = AuditRecord(
            target=place.key,
            sql=";\n".join(shown),
            classification="ddl",
            confirmation=confirmed.path,
            outcome="ok",
            operation_id=confirmed.operation_id,
        )
        try:
            await place.databases.run(
                [Statement(sql) for sql in statements], read_only=False, caps=Caps(1, 1000), database=plan.database
            )
        except NeonMCPError as exc:
            self.audit.append(replace(record, outcome="error", error=str(exc)))
            raise
        self.audit.append(record)
        logger.info("created role %s (%s) on %s", plan.name, plan.privileges, place.label)
        result = plan.result()
        result.grants = shown
        if reveal:
            result.password = password.get_secret_value()
            result.password_revealed = True
            result.note = "shown this once: it is not stored anywhere and cannot be shown again"
        else:
            result.note = (
                "the password is not returned (set NEON_MCP_REVEAL_ROLE_PASSWORDS=true to allow revealing it once, "
                f"with the user's consent); set one as the database owner: ALTER ROLE {quote_ident(plan.name)} "
                "PASSWORD '…'"
            )
        return result


def _check_name(name: str) -> None:
    if not name or "\0" in name:
        raise InvalidInput("name is empty or contains a NUL character")
    if len(name.encode()) > 63:
        raise InvalidInput(f"role name {name[:20]!r}… is longer than PostgreSQL's 63 bytes")
    if name.lower().startswith("pg_") or name.lower() in _RESERVED:
        raise InvalidInput(f"role name {name!r} is reserved (pg_ prefix, PostgreSQL's or Neon's own roles)")


def _without_secret(sql: str) -> str:
    head, marker, _ = sql.partition(" PASSWORD '")
    return head + " PASSWORD '…'" if marker else sql


def _summary(plan: RolePlan) -> str:
    where = f"database {plan.database}" + (f" on branch {plan.branch} ({plan.branch_id})" if plan.branch else "")
    what = {
        "read": "read: SELECT on tables and sequences",
        "write": "write: SELECT, INSERT, UPDATE, DELETE on tables, USAGE on sequences",
        "owner": "owner: CREATE on the schemas and every privilege on their tables, sequences and functions",
    }[plan.privileges]
    lines = [
        f"Create login role {plan.name} in {where} with {what}, in schema(s) {', '.join(plan.schemas)}, including "
        f"tables {plan.grantor} creates later. Nothing else: no superuser, CREATEDB, CREATEROLE or neon_superuser."
    ]
    if plan.protected_because is not None:
        lines.append(f"Branch {plan.branch} is protected ({plan.protected_because}).")
    return "\n".join(lines)
