"""The tools agents call, one module per family; each module has ``register(tools, offer)``.

A family is imported only when its tools are built: at a start without a catalog (``server.mcp.catalog``), or at the
first call of one of its tools. The Neon-only families are never imported by a server on a plain database URL.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from server.mcp import Offer, ToolSpec

__all__ = ["FAMILIES", "families", "registered"]

FAMILIES = (
    *("sql", "schema", "performance", "migrate"),
    *("neon_info", "projects", "search", "branches", "computes", "roles"),
    "confirm",
)
"""Every family (``tools.<family>``), in the order their tools are listed."""

_NEON_ONLY = frozenset({"neon_info", "projects", "search", "branches", "computes", "roles"})


def families(offer: Offer) -> list[str]:
    """The families whose tools ``offer`` has: project, branch and search tools only with Neon; confirm_operation
    only where something can need confirming (writes, or with Neon the confirmed project and branch operations)."""
    return [
        family
        for family in FAMILIES
        if (offer.neon or family not in _NEON_ONLY) and (family != "confirm" or offer.writes or offer.neon)
    ]


def registered(offer: Offer, family: str | None = None) -> list[ToolSpec]:
    """The tools ``offer`` has, as registered (imports their modules): every family's, or ``family``'s alone."""
    tools: list[ToolSpec] = []
    for name in families(offer) if family is None else [family]:
        if name not in FAMILIES:
            raise ValueError(f"no family of tools is called {name!r}")
        importlib.import_module(f"tools.{name}").register(tools, offer)
    return tools
