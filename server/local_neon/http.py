"""Local Neon over HTTP: Neon's management API v2 paths, envelopes, status codes and error shape, on Starlette.

The routes are the ones ``LocalNeon``'s parts mark on their handlers (``routing``): each is served at ``/api/v2`` +
its path, its handler answering with the route's status (204 without a body when it answers ``None``). Every request
needs the bearer token (401 without it); errors are ``{"code", "message", "request_id"}`` as Neon sends them. Fault
injection (off unless configured) answers a share of API requests with 429 (with ``Retry-After``), 423, 503, or a
delay, so that clients' retries are exercised against a real server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import secrets
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from . import routing
from .errors import NeonAPIError
from .frontdoor import serverless
from .service import LocalNeon

__all__ = ["Faults", "create_app", "route_table"]

logger = logging.getLogger("neon_mcp.local_neon")


@dataclass
class Faults:
    """Shares (0..1) of API requests answered with an injected failure, and an added delay."""

    rate_429: float = 0.0
    rate_423: float = 0.0
    rate_503: float = 0.0
    delay_ms: int = 0
    retry_after: int = 1
    seed: int | None = None
    _random: random.Random = field(default_factory=random.Random, repr=False)

    @classmethod
    def parse(cls, text: str | None) -> Faults:
        """``"429=0.3,423=0.1,503=0.1,delay_ms=50,retry_after=1,seed=7"`` (the ``NEON_MCP_LOCAL_FAULTS`` form)."""
        faults = cls()
        faults.update(dict(part.split("=", 1) for part in (text or "").split(",") if "=" in part))
        return faults

    def update(self, values: dict[str, Any]) -> None:
        names = {"429": "rate_429", "423": "rate_423", "503": "rate_503"}
        for key, value in values.items():
            name = names.get(str(key), str(key))
            if name not in ("rate_429", "rate_423", "rate_503", "delay_ms", "retry_after", "seed"):
                raise NeonAPIError(400, f"unknown fault setting {key!r}")
            number = float(value)
            if name.startswith("rate_") and not 0 <= number <= 1:
                raise NeonAPIError(400, f"{key} must be a share between 0 and 1")
            setattr(self, name, number if name.startswith("rate_") else int(number))
        if self.seed is not None:
            self._random.seed(self.seed)

    def as_dict(self) -> dict[str, Any]:
        return {
            "429": self.rate_429,
            "423": self.rate_423,
            "503": self.rate_503,
            "delay_ms": self.delay_ms,
            "retry_after": self.retry_after,
        }

    def draw(self) -> int | None:
        """The status to inject for this request, if any."""
        roll = self._random.random()
        for status, rate in ((429, self.rate_429), (423, self.rate_423), (503, self.rate_503)):
            if roll < rate:
                return status
            roll -= rate
        return None


def route_table() -> dict[str, tuple[str, str, int]]:
    """Each route's name → (HTTP method, path under /api/v2, success status)."""
    return {r.name: (r.method, r.path, r.status) for r in LocalNeon.routes()}


# --- the application ---------------------------------------------------------------------------------------------


def _error(status: int, message: str, request_id: str, code: str = "") -> JSONResponse:
    return JSONResponse(
        {"code": code, "message": message, "request_id": request_id},
        status_code=status,
        headers={"X-Neon-Ret-Request-Id": request_id},
    )


def create_app(service: LocalNeon, *, token: str, faults: Faults | None = None) -> Starlette:
    """The ASGI app serving ``service`` under ``/api/v2`` (plus ``/healthz``, ``/admin/faults``, ``/admin/requests``,
    and the serverless driver's ``/sql`` and ``/v2``).

    ``/admin/requests`` counts the API requests that arrived, by route name: tests and benchmarks read it to show how
    many requests a tool call costs.
    """
    injected = faults or Faults()
    arrived: Counter[str] = Counter()

    def authorised(request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        return scheme.lower() == "bearer" and secrets.compare_digest(value.strip().encode(), token.encode())

    def endpoint(route: routing.Route) -> Callable[[Request], Awaitable[Response]]:
        async def answer(request: Request) -> Response:
            request_id = str(uuid.uuid4())
            arrived[route.name] += 1
            if not authorised(request):
                return _error(401, "authentication required: send Authorization: Bearer <api key>", request_id)
            if injected.delay_ms:
                await asyncio.sleep(injected.delay_ms / 1000)
            fault = injected.draw()
            if fault == 429:
                response = _error(429, "rate limit exceeded (injected)", request_id, "TOO_MANY_REQUESTS")
                response.headers["Retry-After"] = str(injected.retry_after)
                return response
            if fault == 423:
                return _error(423, "project already has running operations, try again later (injected)", request_id)
            if fault == 503:
                return _error(503, "service unavailable (injected)", request_id)
            body: dict[str, Any] = {}
            if route.method in ("POST", "PATCH"):
                raw = await request.body()
                if raw.strip():
                    try:
                        parsed = json.loads(raw)
                    except json.JSONDecodeError as exc:
                        return _error(400, f"malformed JSON body: {exc.msg} at character {exc.pos}", request_id)
                    if not isinstance(parsed, dict):
                        return _error(400, "the request body must be a JSON object", request_id)
                    body = parsed
            handler = request.app.state.service.handler(route.name)
            try:
                result = await routing.call(handler, route, dict(request.path_params), dict(request.query_params), body)
            except NeonAPIError as exc:
                return _error(exc.status, exc.message, request_id, exc.code)
            except Exception:
                logger.exception("local Neon failed on %s %s (request %s)", route.method, request.url.path, request_id)
                return _error(500, f"internal error (request {request_id}); see the local Neon log", request_id)
            headers = {"X-Neon-Ret-Request-Id": request_id}
            if result is None:
                return Response(status_code=204, headers=headers)
            return JSONResponse(result, status_code=route.status, headers=headers)

        return answer

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def admin_faults(request: Request) -> Response:
        request_id = str(uuid.uuid4())
        if not authorised(request):
            return _error(401, "authentication required", request_id)
        if request.method == "POST":
            try:
                values = json.loads(await request.body() or b"{}")
                injected.update(values if isinstance(values, dict) else {})
            except (json.JSONDecodeError, ValueError) as exc:
                return _error(400, f"bad fault settings: {exc}", request_id)
            except NeonAPIError as exc:
                return _error(exc.status, exc.message, request_id)
        return JSONResponse(injected.as_dict())

    async def admin_requests(request: Request) -> Response:
        if not authorised(request):
            return _error(401, "authentication required", str(uuid.uuid4()))
        return JSONResponse({"total": sum(arrived.values()), "by_route": dict(arrived)})

    async def not_found(request: Request, exc: Exception) -> Response:
        return _error(404, f"no such API path: {request.method} {request.url.path}", str(uuid.uuid4()))

    routes: list[BaseRoute] = [
        Route("/healthz", healthz),
        Route("/admin/faults", admin_faults, methods=["GET", "POST"]),
        Route("/admin/requests", admin_requests),
        *serverless.routes(),  # @neondatabase/serverless: SQL over HTTP and WebSocket, through the front door
    ]
    for api in LocalNeon.routes():
        routes.append(Route("/api/v2" + api.path, endpoint(api), methods=[api.method]))

    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})
    app.state.service = service
    return app
