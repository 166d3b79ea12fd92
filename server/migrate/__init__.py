"""Migrations: planned on a short-lived branch, linted, confirmed, applied exactly as tested, recorded.

- ``service``: ``Migrations`` (plan, apply, discard, history); ``lint``: our rules and squawk's; ``store``: plans on
  disk with their checksum; ``models``: what the tool returns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import lazy_exports

if TYPE_CHECKING:
    from .models import AppliedMigration, MigrationReport
    from .service import ApplyChange, Migrations
    from .store import MigrationStore

__all__ = ["AppliedMigration", "ApplyChange", "MigrationReport", "MigrationStore", "Migrations"]

__getattr__ = lazy_exports(
    __name__,
    {
        "models": ("AppliedMigration", "MigrationReport"),
        "service": ("ApplyChange", "Migrations"),
        "store": ("MigrationStore",),
    },
)
