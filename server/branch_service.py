"""Branch changes on Neon: create, delete, reset and restore (being written)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .context import AppContext

__all__ = ["BranchService"]


class BranchService:
    def __init__(self, app: AppContext) -> None:
        self.app = app
