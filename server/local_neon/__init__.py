"""Local Neon: Neon's management API v2 served over local PostgreSQL clusters (one per branch).

``LocalNeon`` (in ``service``) answers API calls as Neon does; ``http`` serves it over HTTP; ``daemon`` runs it as a
background process. ``NeonAPIError`` is what it raises for a refused request.
"""

from __future__ import annotations

from .errors import NeonAPIError
from .service import LocalNeon

__all__ = ["LocalNeon", "NeonAPIError"]
