"""What every tool reaches through its ``Context``: the services of one running server (of one tenant of it).

Services are built on first use, not at start-up: answering ``initialize`` must not wait for asyncpg and pglast to
import (the cold start budget is the bare SDK's plus 20%).

With a database URL the server has places (databases of that server) and no Neon services. With Neon (an API key,
local Neon's included) it has the API client, the directory of projects and branches, connections per target,
backups and the branch service.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeAlias

from mcp.server.mcpserver import Context

from ..errors import InvalidInput
from ..settings import Settings
from .confirmations import Confirmations
from .tenants import Tenants

if TYPE_CHECKING:
    from ..computes.service import Computes
    from ..migrate.service import Migrations
    from ..neon.backups import Backups
    from ..neon.branches import BranchService
    from ..neon.client import NeonClient
    from ..neon.connections import Connections
    from ..neon.scratch import ScratchBranches
    from ..neon.targets import Directory
    from ..neon.time_travel import TimeTravel
    from ..neon.views import NeonViews
    from ..performance.service import Performance
    from ..sql.catalog import SchemaCatalog
    from ..sql.database import Guards
    from ..sql.places import Places
    from ..sql.service import SQLService

__all__ = ["AppContext", "Ctx", "app"]


class AppContext:
    """The lifespan's services: settings, places to run in, the SQL service, Neon's services, confirmations."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.confirmations = Confirmations(settings.confirmation_ttl)

    @property
    def uses_neon(self) -> bool:
        return self.settings.uses_neon

    @cached_property
    def guards(self) -> Guards:
        from ..sql.database import Guards

        s = self.settings
        return Guards(s.statement_timeout, s.lock_timeout, s.idle_in_transaction_timeout)

    # --- Neon --------------------------------------------------------------------------------------------------------

    @cached_property
    def neon(self) -> NeonClient:
        from ..neon.client import NeonClient

        key = self.settings.neon_api_key
        if key is None:
            raise InvalidInput("this server is not connected to Neon (no NEON_API_KEY); branch tools are unavailable")
        return NeonClient(key.get_secret_value(), base_url=self.settings.neon_api_host)

    @cached_property
    def directory(self) -> Directory:
        from ..neon.targets import Directory

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
        from ..neon.connections import Connections

        settings = self.settings
        return Connections(
            self.neon,
            self.guards,
            pooled=settings.pooled,
            pool_size=settings.pool_size,
            # Read-only mode reads through a branch's read replica when it has one: the database refuses writes too.
            prefer_replicas=settings.effective_access_mode == "read-only",
        )

    @cached_property
    def backups(self) -> Backups:
        from ..neon.backups import Backups

        return Backups(self.neon, self.directory, enabled=self.settings.backups, days=self.settings.backup_days)

    @cached_property
    def branches(self) -> BranchService:
        from ..neon.branches import BranchService

        return BranchService(self)

    @cached_property
    def neon_views(self) -> NeonViews:
        from ..neon.views import NeonViews

        return NeonViews(self)

    # --- SQL ---------------------------------------------------------------------------------------------------------

    @cached_property
    def places(self) -> Places:
        from ..sql.places import NeonPlaces, URLPlaces

        settings = self.settings
        if settings.database_url is not None:
            from ..sql.database import Databases

            databases = Databases(settings.database_url.get_secret_value(), self.guards, pool_size=settings.pool_size)
            return URLPlaces(databases)
        return NeonPlaces(self.directory, self.connections)

    @cached_property
    def sql(self) -> SQLService:
        from ..audit import AuditLog
        from ..sql.database import Caps
        from ..sql.service import SQLService

        settings = self.settings
        return SQLService(
            AuditLog(settings.audit_log_path),
            access_mode=settings.effective_access_mode,
            caps=Caps(settings.max_rows, settings.max_bytes),
            max_sql_bytes=settings.max_sql_bytes,
            default_schema=settings.default_schema,
            summary_ttl=settings.confirmation_ttl,
            backups=self.backups if self.uses_neon else None,
        )

    @cached_property
    def time_travel(self) -> TimeTravel:
        from ..neon.time_travel import TimeTravel

        return TimeTravel(self.scratch, self.sql)

    @cached_property
    def scratch(self) -> ScratchBranches:
        from ..neon.scratch import ScratchBranches

        return ScratchBranches(self.neon, self.connections)

    # --- later families: query performance, migrations, computes and roles ---------------------------------------

    @cached_property
    def performance(self) -> Performance:
        from ..performance.service import Performance

        return Performance(self)

    @cached_property
    def migrations(self) -> Migrations:
        from ..migrate.service import Migrations

        return Migrations(self)

    @cached_property
    def computes(self) -> Computes:
        from ..computes.service import Computes

        return Computes(self)

    @cached_property
    def schema(self) -> SchemaCatalog:
        from ..sql.catalog import SchemaCatalog

        return SchemaCatalog()

    async def aclose(self) -> None:
        """Close what was opened (pools, the API client); services never used were never built."""
        if "places" in self.__dict__:
            await self.places.close()
        if "connections" in self.__dict__:
            await self.connections.close()
        if "neon" in self.__dict__:
            await self.neon.aclose()


Ctx: TypeAlias = Context[Tenants, Any]


def app(ctx: Ctx) -> AppContext:
    """The services of the tenant this request belongs to (see ``server.mcp.tenants``); raises ``InvalidInput`` when the
    request's Neon API key cannot be used."""
    request = ctx.request_context.request
    return ctx.request_context.lifespan_context.resolve(getattr(request, "headers", None))
