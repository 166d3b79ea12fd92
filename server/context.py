"""What every tool reaches through its ``Context``: the services built once by the server's lifespan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from mcp.server.mcpserver import Context

if TYPE_CHECKING:  # imported lazily at run time: asyncpg and pglast are not needed to answer initialize
    from .confirmations import Confirmations
    from .database import Databases
    from .schema_catalog import SchemaCatalog
    from .settings import Settings
    from .sql_service import SQLService

__all__ = ["AppContext", "Ctx", "app"]


@dataclass(frozen=True, slots=True)
class AppContext:
    settings: Settings
    databases: Databases
    sql: SQLService
    schema: SchemaCatalog
    confirmations: Confirmations


Ctx: TypeAlias = Context[AppContext, Any]


def app(ctx: Ctx) -> AppContext:
    """The lifespan's services for this request."""
    context: AppContext = ctx.request_context.lifespan_context
    return context
