"""The routes ``@neondatabase/serverless`` talks to on local Neon's API port: ``POST /sql`` and ``ws://…/v2``.

Neither needs the API key: as on Neon, the connection string's role and password authenticate the request.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Route, WebSocketRoute

from . import sql_over_http, websocket

__all__ = ["routes"]


def routes() -> list[BaseRoute]:
    return [
        Route("/sql", sql_over_http.handle, methods=["POST", "OPTIONS"]),
        WebSocketRoute("/v2", websocket.handle),
    ]
