"""Argument types several tool families share, with the descriptions the model reads."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

__all__ = ["Branch", "Database"]

Branch = Annotated[
    str | None,
    Field(description="Neon branch, by name or id (default: NEON_BRANCH, else the project's default branch)."),
]
Database = Annotated[
    str | None, Field(description="Database (default: NEON_DATABASE or neondb on Neon; the URL's database otherwise).")
]
