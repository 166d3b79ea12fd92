"""Registering tools, and the one place where errors become MCP tool results.

The boundary also records the call in flight (its tool and arguments: ``server.mcp.confirmations.current_call``), which
is what a change that needs confirming stores for ``confirm_operation``, and who made it (``server.state.audit``'s
``current_caller``: tool, MCP session, client), which every audit record of the call carries; it answers once those
records are written.

A family's ``register(tools, offer)`` adds its tools with ``add_tool`` (a ``ToolSpec`` each: function, title,
annotations); what it adds depends on the ``Offer`` alone (Neon or a database URL, writes possible or read-only),
never on the rest of the settings: that is what lets ``server.mcp.catalog`` describe an offer's tools without
importing them.

``ToolSpec.build`` wraps each tool in ``boundary`` so that a ``NeonMCPError`` reaches the model as a ``ToolError``
with its message (what it quotes from the database inside an untrusted-data fence: ``NeonMCPError.split``), and
anything unexpected is logged with its traceback and answered with a short message and a reference (never driver
text or secrets). Annotations are set explicitly for every tool.
"""

from __future__ import annotations

import functools
import inspect
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import anyio
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp_types import ToolAnnotations

from .. import progress
from ..errors import NeonMCPError
from ..redaction import redact_text
from ..state.audit import Caller, current_caller
from .confirmations import Call, current_call, resolved_parameters
from .context import caller_of
from .fence import fence

if TYPE_CHECKING:
    from ..settings import Settings

__all__ = ["Offer", "ToolSpec", "add_tool", "boundary"]

logger = logging.getLogger("neon_mcp.tools")

P = ParamSpec("P")
R = TypeVar("R")


def boundary(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Map errors raised by ``fn`` to ``ToolError`` (see the module docstring)."""

    resolved = resolved_parameters(fn)

    @functools.wraps(fn)
    async def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        ctx = kwargs.get("ctx")
        context = ctx if isinstance(ctx, Context) else None
        token = progress.current.set(context.report_progress if context is not None else None)
        arguments = {name: value for name, value in kwargs.items() if name != "ctx" and name not in resolved}
        call = current_call.set(Call(fn.__name__, arguments))
        caller = Caller(fn.__name__)
        if context is not None:
            caller.session, caller.client = caller_of(context)
        who = current_caller.set(caller)
        try:
            return await fn(*args, **kwargs)
        except ToolError:
            raise
        except NeonMCPError as exc:
            words, quoted = exc.split()
            words = redact_text(words)
            raise ToolError(words if quoted is None else f"{words}\n{fence(quoted)}") from exc
        except Exception as exc:
            ref = secrets.token_hex(4)
            logger.exception("tool %s failed unexpectedly (ref %s)", fn.__name__, ref)
            raise ToolError(
                f"internal error in {fn.__name__} (ref {ref}); nothing more is known to the model, "
                "the server's log has the details"
            ) from exc
        finally:
            current_caller.reset(who)
            current_call.reset(call)
            progress.current.reset(token)
            if caller.unwritten:
                with anyio.CancelScope(shield=True):  # what ran is recorded, even when the call was cancelled
                    await caller.settle()

    return guarded


@dataclass(frozen=True)
class Offer:
    """Which tools a server offers: with Neon or on a plain database URL, with writes possible or read-only."""

    neon: bool
    writes: bool

    @classmethod
    def of(cls, settings: Settings) -> Offer:
        return cls(neon=settings.uses_neon, writes=settings.effective_access_mode != "read-only")

    @property
    def name(self) -> str:
        """``neon-writes``, ``url-read-only``, …"""
        return f"{'neon' if self.neon else 'url'}-{'writes' if self.writes else 'read-only'}"


@dataclass(frozen=True)
class ToolSpec:
    """A tool as its family registers it; ``build`` makes the SDK's tool of it (argument model, schemas: about 5 ms),
    which only a start without a catalog does for every tool (``server.mcp.catalog``)."""

    fn: Callable[..., Awaitable[Any]]
    title: str
    annotations: ToolAnnotations

    @property
    def name(self) -> str:
        return self.fn.__name__

    @property
    def family(self) -> str:
        """The family whose module defines the tool (``tools.sql`` → ``sql``)."""
        return self.fn.__module__.removeprefix("tools.")

    def build(self) -> Tool:
        """The tool under its function's name, its docstring as description, inside the error boundary."""
        return Tool.from_function(
            boundary(self.fn),
            name=self.name,
            title=self.title,
            description=inspect.getdoc(self.fn),
            annotations=self.annotations,
        )


def add_tool(
    tools: list[ToolSpec],
    fn: Callable[..., Awaitable[Any]],
    *,
    title: str,
    read_only: bool,
    destructive: bool,
    idempotent: bool,
    open_world: bool = False,
) -> None:
    """Add ``fn`` to ``tools`` with truthful annotations, set explicitly for every tool."""
    annotations = ToolAnnotations(
        title=title,
        read_only_hint=read_only,
        destructive_hint=destructive,
        idempotent_hint=idempotent,
        open_world_hint=open_world,
    )
    tools.append(ToolSpec(fn, title, annotations))
