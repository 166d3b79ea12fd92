"""What every tool reaches through its ``Context``: the services of one running server.

Services are built on first use, not at start-up: answering ``initialize`` must not wait for asyncpg and pglast to
import (the cold start budget is the bare SDK's plus 20%).
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeAlias

from mcp.server.mcpserver import Context

from .confirmations import Confirmations
from .settings import Settings

if TYPE_CHECKING:
    from .database import Databases
    from .schema_catalog import SchemaCatalog
    from .sql_service import SQLService

__all__ = ["AppContext", "Ctx", "app"]


class AppContext:
    """The lifespan's services: settings, pools, the SQL service, the schema catalog, pending confirmations."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.confirmations = Confirmations(settings.confirmation_ttl)

    @cached_property
    def databases(self) -> Databases:
        from .database import Databases, Guards

        settings = self.settings
        if settings.database_url is None:
            raise AssertionError("build_server refuses settings without a database")
        return Databases(
            settings.database_url.get_secret_value(),
            Guards(settings.statement_timeout, settings.lock_timeout, settings.idle_in_transaction_timeout),
            pool_size=settings.pool_size,
        )

    @cached_property
    def sql(self) -> SQLService:
        from .audit import AuditLog
        from .database import Caps
        from .sql_service import SQLService

        settings = self.settings
        return SQLService(
            self.databases,
            AuditLog(settings.audit_log_path),
            access_mode=settings.access_mode,
            caps=Caps(settings.max_rows, settings.max_bytes),
            max_sql_bytes=settings.max_sql_bytes,
            default_schema=settings.default_schema,
            summary_ttl=settings.confirmation_ttl,
        )

    @cached_property
    def schema(self) -> SchemaCatalog:
        from .schema_catalog import SchemaCatalog

        return SchemaCatalog(self.databases)

    async def aclose(self) -> None:
        """Close what was opened (pools); services never used were never built."""
        if "databases" in self.__dict__:
            await self.databases.close()


Ctx: TypeAlias = Context[AppContext, Any]


def app(ctx: Ctx) -> AppContext:
    """The lifespan's services for this request."""
    context: AppContext = ctx.request_context.lifespan_context
    return context
