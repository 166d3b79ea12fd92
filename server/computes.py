"""(being written)"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .context import AppContext

__all__ = ["Computes"]


class Computes:
    def __init__(self, app: AppContext) -> None:
        self.app = app
