"""The MCP side of the server: what the tools are built from, and how the server is assembled.

- ``assembly``: ``build_server`` (settings → tools, prompts, instructions → ``MCPServer``; imported by the CLI and the
  HTTP app, not from here: it imports the tools, which import this package).
- ``tenants``: which tenant's services serve a request (one per Neon API key with ``--neon-key-from-header``).
- ``context``: ``Ctx``, ``services(ctx)`` and ``neon_services(ctx)``: a tool's way to its services.
- ``tooling``: ``Offer`` (which tools a server offers), ``add_tool`` and the one error boundary (our errors →
  ``ToolError``, anything else logged with a ref).
- ``catalog``: what ``tools/list`` says of an offer's tools, kept on disk, so that a start imports no tool module.
- ``confirmations``: the one confirmation path (``question`` as every resolver, ``run_or_store`` in every body).
- ``fence``: untrusted-data fences around database text.
"""

from __future__ import annotations

from .confirmations import (
    Apply,
    Change,
    ConfirmAnswer,
    Confirmation,
    NotAsked,
    Question,
    can_elicit,
    question,
    replay,
    run_or_store,
)
from .context import Ctx, neon_services, services, session_id
from .fence import fence
from .tooling import Offer, ToolSpec, add_tool

__all__ = [
    "Apply",
    "Change",
    "ConfirmAnswer",
    "Confirmation",
    "Ctx",
    "NotAsked",
    "Offer",
    "Question",
    "ToolSpec",
    "add_tool",
    "can_elicit",
    "fence",
    "neon_services",
    "question",
    "replay",
    "run_or_store",
    "services",
    "session_id",
]
