"""The composition root: every service of one running server (of one tenant of it), and what each one uses.

Each service's constructor names its collaborators, and this module is the one place that wires them; nothing
receives the whole of it. Services are built on first use, not at start-up: answering ``initialize`` must not wait for
asyncpg and pglast to import (the cold start budget is the bare SDK's plus 10%), so the imports are inside the
properties.

``Services`` is what every server has: places to run SQL in, the SQL service, schema description, query performance,
the audit log and the operations waiting for confirmation. ``NeonServices`` adds Neon's: the API client, the
directory of projects and branches, connections per target, backups, short-lived branches, and the project, branch,
compute, role, migration, Neon-view and search services. A server of a plain database URL has ``Services`` and so no
Neon service at all; ``build_services`` picks the class from the settings.

What decides safety beyond one call — the operations waiting for confirmation, the migration plans, the audit log —
lives in one of two places, chosen here: in memory and files of this process (the default), or, with a state URL, in
the state database every replica shares (``build_state``: one pool per process, opened by ``server.mcp.tenants``),
where each tenant's rows carry its id. Each store has one interface, and both implementations in its own module.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from .settings import Settings

if TYPE_CHECKING:
    from .computes.connection_check import ConnectionCheck
    from .computes.roles import Roles
    from .computes.service import Computes
    from .migrate.service import Migrations
    from .migrate.store import MigrationStore
    from .neon.backups import Backups
    from .neon.branches import BranchService
    from .neon.client import NeonClient
    from .neon.connections import Connections
    from .neon.operations import OperationHistory
    from .neon.projects import ProjectService
    from .neon.scratch import ScratchBranches
    from .neon.search import Finder
    from .neon.targets import Directory
    from .neon.time_travel import TimeTravel
    from .neon.views import NeonViews
    from .performance.service import Performance
    from .sql.catalog import SchemaCatalog
    from .sql.database import Guards
    from .sql.places import Places
    from .sql.service import SQLService
    from .state.audit import AuditLog
    from .state.database import StateDatabase
    from .state.pending import PendingOperations

__all__ = ["NeonServices", "Services", "build_services", "build_state"]


class Services:
    """The services of a server of a plain PostgreSQL URL, and the part every server shares.

    ``tenant`` names whose services these are in the state database's rows and in the audit log; ``state`` is the
    state database (None: memory and files).
    """

    def __init__(self, settings: Settings, *, tenant: str = "default", state: StateDatabase | None = None) -> None:
        self.settings = settings
        self.tenant = tenant
        self.state = state

    @cached_property
    def pending(self) -> PendingOperations:
        from .state.database import replica
        from .state.pending import PendingInMemory, PendingTable

        ttl = self.settings.confirmation_ttl
        if self.state is None:
            return PendingInMemory(ttl)
        return PendingTable(self.state, tenant=self.tenant, ttl=ttl, replica=replica())

    @cached_property
    def audit(self) -> AuditLog:
        from .state.audit import AuditFile, AuditTable
        from .state.database import replica

        if self.state is None:
            return AuditFile(self.settings.audit_log_path, tenant=self.tenant)
        return AuditTable(self.state, tenant=self.tenant, replica=replica())

    @cached_property
    def plans(self) -> MigrationStore:
        from .migrate.store import PlanFiles, PlanTable
        from .state.database import replica

        if self.state is None:
            return PlanFiles(self.settings.home / "migrations")
        return PlanTable(self.state, tenant=self.tenant, replica=replica())

    @cached_property
    def guards(self) -> Guards:
        from .sql.database import Guards

        s = self.settings
        return Guards(s.statement_timeout, s.lock_timeout, s.idle_in_transaction_timeout)

    @cached_property
    def places(self) -> Places:
        from .sql.database import Databases
        from .sql.places import URLPlaces

        settings = self.settings
        assert settings.database_url is not None
        urls = URLPlaces(Databases(settings.database_url.get_secret_value(), self.guards, pool_size=settings.pool_size))
        return self._guarded(urls)

    def _guarded(self, places: Places) -> Places:
        """``places`` whose role is checked on first use (``server.sql.powers``)."""
        from .sql.powers import GuardedPlaces

        s = self.settings
        return GuardedPlaces(
            places,
            access_mode=s.effective_access_mode,
            require_least_privilege=s.require_least_privilege,
            neon=s.uses_neon,
        )

    @cached_property
    def sql(self) -> SQLService:
        from .sql.database import Caps
        from .sql.service import SQLService

        s = self.settings
        return SQLService(
            self.audit,
            access_mode=s.effective_access_mode,
            caps=Caps(s.max_rows, s.max_bytes),
            max_sql_bytes=s.max_sql_bytes,
            default_schema=s.default_schema,
            backups=self._backups,
            analysis_seconds=s.max_analysis_seconds,
        )

    @property
    def _backups(self) -> Backups | None:
        """What takes a backup before a confirmed destructive change to a protected branch: nothing without Neon."""
        return None

    @cached_property
    def schema(self) -> SchemaCatalog:
        from .sql.catalog import SchemaCatalog

        return SchemaCatalog()

    @cached_property
    def performance(self) -> Performance:
        from .performance.service import Performance

        s = self.settings
        return Performance(
            self.places,
            self.sql,
            self.audit,
            scratch=self._scratch,
            max_sql_bytes=s.max_sql_bytes,
            max_bytes=s.max_bytes,
        )

    @property
    def _scratch(self) -> ScratchBranches | None:
        """Where ANALYZE of a write runs: on a scratch branch with Neon, rolled back on a plain database."""
        return None

    async def aclose(self) -> None:
        """Close what was opened (pools, the API client) and write what the audit log holds; services never used
        were never built."""
        if "places" in self.__dict__:
            await self.places.close()
        await self._close_audit()

    async def _close_audit(self) -> None:
        if "audit" in self.__dict__:
            await self.audit.aclose()


class NeonServices(Services):
    """The services of a server connected to Neon (or local Neon)."""

    @cached_property
    def neon(self) -> NeonClient:
        from .neon.client import NeonClient

        key = self.settings.neon_api_key
        assert key is not None, "NeonServices need a Neon API key"
        return NeonClient(key.get_secret_value(), base_url=self.settings.neon_api_host)

    @cached_property
    def directory(self) -> Directory:
        from .neon.targets import Directory

        s = self.settings
        return Directory(
            self.neon,
            production_branch=s.production_branch,
            project_id=s.neon_project_id,
            branch=s.neon_branch,
            database=s.neon_database,
            role=s.neon_role,
        )

    @cached_property
    def connections(self) -> Connections:
        from .neon.connections import Connections

        s = self.settings
        return Connections(
            self.neon,
            self.directory,
            self.guards,
            pooled=s.pooled,
            pool_size=s.pool_size,
            # Read-only mode reads through a branch's read replica when it has one: the database refuses writes too.
            prefer_replicas=s.effective_access_mode == "read-only",
        )

    @cached_property
    def places(self) -> Places:
        return self._guarded(self.connections)

    @cached_property
    def backups(self) -> Backups:
        from .neon.backups import Backups

        s = self.settings
        return Backups(self.neon, self.directory, enabled=s.backups, days=s.backup_days)

    @property
    def _backups(self) -> Backups | None:
        return self.backups

    @cached_property
    def scratch(self) -> ScratchBranches:
        from .neon.scratch import ScratchBranches

        return ScratchBranches(self.neon, self.connections)

    @property
    def _scratch(self) -> ScratchBranches | None:
        return self.scratch

    @cached_property
    def time_travel(self) -> TimeTravel:
        from .neon.time_travel import TimeTravel

        return TimeTravel(self.scratch, self.sql)

    @cached_property
    def branches(self) -> BranchService:
        from .neon.branches import BranchService

        return BranchService(
            self.neon,
            self.directory,
            self.connections,
            self.backups,
            self.audit,
            access_mode=self.settings.effective_access_mode,
        )

    @cached_property
    def views(self) -> NeonViews:
        from .neon.views import NeonViews

        s = self.settings
        return NeonViews(
            self.neon,
            self.directory,
            production_branch=s.production_branch,
            project_id=s.neon_project_id,
            reveal_passwords=s.reveal_passwords,
            max_bytes=s.max_bytes,
        )

    @cached_property
    def projects(self) -> ProjectService:
        from .neon.projects import ProjectService

        s = self.settings
        return ProjectService(
            self.neon,
            self.directory,
            self.connections,
            self.audit,
            access_mode=s.effective_access_mode,
            production_branch=s.production_branch,
            reveal_passwords=s.reveal_passwords,
            allow_deleting_served_project=s.allow_deleting_served_project,
        )

    @cached_property
    def finder(self) -> Finder:
        from .neon.search import Finder

        return Finder(self.neon, self.directory, self.views, self.places, self.schema)

    @cached_property
    def operations(self) -> OperationHistory:
        from .neon.operations import OperationHistory

        return OperationHistory(self.neon, self.directory)

    @cached_property
    def computes(self) -> Computes:
        from .computes.service import Computes

        return Computes(
            self.neon, self.directory, self.connections, self.guards, access_mode=self.settings.effective_access_mode
        )

    @cached_property
    def connection_check(self) -> ConnectionCheck:
        from .computes.connection_check import ConnectionCheck

        return ConnectionCheck(self.neon, self.directory, self.places, self.guards, role=self.settings.neon_role)

    @cached_property
    def roles(self) -> Roles:
        from .computes.roles import Roles

        s = self.settings
        return Roles(self.places, self.audit, access_mode=s.effective_access_mode, default_schema=s.default_schema)

    @cached_property
    def migrations(self) -> Migrations:
        from .migrate.service import Migrations

        s = self.settings
        return Migrations(
            self.plans,
            self.connections,
            self.scratch,
            self.backups,
            self.sql,
            self.audit,
            access_mode=s.effective_access_mode,
            default_schema=s.default_schema,
            lock_timeout=s.lock_timeout,
            max_sql_bytes=s.max_sql_bytes,
        )

    async def aclose(self) -> None:
        """Close the pools and the API client (``places`` wraps ``connections`` here)."""
        if "connections" in self.__dict__:
            await self.connections.close()
        if "neon" in self.__dict__:
            await self.neon.aclose()
        await self._close_audit()


def build_services(settings: Settings, *, tenant: str = "default", state: StateDatabase | None = None) -> Services:
    """The services ``settings`` call for: Neon's when a Neon API key is set, else a plain database's."""
    kind = NeonServices if settings.neon_api_key is not None else Services
    return kind(settings, tenant=tenant, state=state)


def build_state(settings: Settings) -> StateDatabase | None:
    """The state database of ``settings`` (not yet open), or None: the stores then live in memory and files."""
    if settings.state_url is None:
        return None
    from .state.database import StateDatabase

    return StateDatabase(settings.state_url.get_secret_value(), pool_size=settings.pool_size)
