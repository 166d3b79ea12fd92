"""Local Neon over HTTP: Neon's management API v2 paths, envelopes, status codes and error shape, on Starlette.

The routes are a table: method, path, success status, and the ``LocalNeon`` call that answers. Every request needs the
bearer token (401 without it); errors are ``{"code", "message", "request_id"}`` as Neon sends them. Fault injection
(off unless configured) answers a share of API requests with 429 (with ``Retry-After``), 423, 503, or a delay, so that
clients' retries are exercised against a real server.
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
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .errors import NeonAPIError
from .frontdoor import serverless

if TYPE_CHECKING:
    from .service import LocalNeon

__all__ = ["Faults", "create_app"]

logger = logging.getLogger("neon_mcp.local_neon")

Handler = Callable[["LocalNeon", "Call"], Awaitable[dict[str, Any]]]


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


@dataclass(frozen=True, slots=True)
class Call:
    """One API request as a handler sees it."""

    path: dict[str, str]
    query: dict[str, str]
    body: dict[str, Any]

    def int_query(self, name: str) -> int | None:
        value = self.query.get(name)
        if value is None:
            return None
        try:
            return int(value)
        except ValueError as exc:
            raise NeonAPIError(400, f"query parameter {name} must be an integer") from exc

    def bool_query(self, name: str) -> bool:
        return self.query.get(name, "false").lower() in ("true", "1", "yes")


# --- the route table ---------------------------------------------------------------------------------------------

P = "/projects/{project_id}"
B = P + "/branches/{branch_id}"
E = P + "/endpoints/{endpoint_id}"


def _routes() -> list[tuple[str, str, str, int, Handler]]:
    def pb(c: Call) -> tuple[str, str]:
        return c.path["project_id"], c.path["branch_id"]

    return [
        ("me", "GET", "/users/me", 200, lambda s, c: _sync(s.me())),
        (
            "list_projects",
            "GET",
            "/projects",
            200,
            lambda s, c: s.list_projects(
                limit=_or(c.int_query("limit"), 10), cursor=c.query.get("cursor"), search=c.query.get("search")
            ),
        ),
        ("create_project", "POST", "/projects", 201, lambda s, c: s.create_project(c.body)),
        # No one shares projects with a local user; neonctl's `projects list` asks anyway.
        ("list_shared_projects", "GET", "/projects/shared", 200, lambda s, c: _sync({"projects": []})),
        ("get_project", "GET", P, 200, lambda s, c: s.get_project(c.path["project_id"])),
        ("update_project", "PATCH", P, 200, lambda s, c: s.update_project(c.path["project_id"], c.body)),
        ("delete_project", "DELETE", P, 200, lambda s, c: s.delete_project(c.path["project_id"])),
        (
            "list_branches",
            "GET",
            P + "/branches",
            200,
            lambda s, c: s.list_branches(
                c.path["project_id"],
                search=c.query.get("search"),
                sort_by=c.query.get("sort_by"),
                sort_order=c.query.get("sort_order"),
                limit=c.int_query("limit"),
                cursor=c.query.get("cursor"),
            ),
        ),
        ("create_branch", "POST", P + "/branches", 201, lambda s, c: s.create_branch(c.path["project_id"], c.body)),
        ("get_branch", "GET", B, 200, lambda s, c: s.get_branch(*pb(c))),
        ("update_branch", "PATCH", B, 200, lambda s, c: s.update_branch(*pb(c), c.body)),
        ("delete_branch", "DELETE", B, 200, lambda s, c: s.delete_branch(*pb(c))),
        ("restore_branch", "POST", B + "/restore", 200, lambda s, c: s.restore_branch(*pb(c), c.body)),
        ("set_default_branch", "POST", B + "/set_as_default", 200, lambda s, c: s.set_default_branch(*pb(c))),
        (
            "branch_schema",
            "GET",
            B + "/schema",
            200,
            lambda s, c: s.branch_schema(
                *pb(c), db_name=_required(c, "db_name"), lsn=c.query.get("lsn"), timestamp=c.query.get("timestamp")
            ),
        ),
        (
            "compare_schema",
            "GET",
            B + "/compare_schema",
            200,
            lambda s, c: s.compare_schema(
                *pb(c), base_branch_id=c.query.get("base_branch_id"), db_name=_required(c, "db_name")
            ),
        ),
        ("list_branch_endpoints", "GET", B + "/endpoints", 200, lambda s, c: s.list_endpoints(*pb(c))),
        ("list_databases", "GET", B + "/databases", 200, lambda s, c: s.list_databases(*pb(c))),
        ("create_database", "POST", B + "/databases", 201, lambda s, c: s.create_database(*pb(c), c.body)),
        (
            "get_database",
            "GET",
            B + "/databases/{database_name}",
            200,
            lambda s, c: s.get_database(*pb(c), c.path["database_name"]),
        ),
        (
            "delete_database",
            "DELETE",
            B + "/databases/{database_name}",
            200,
            lambda s, c: s.delete_database(*pb(c), c.path["database_name"]),
        ),
        ("list_roles", "GET", B + "/roles", 200, lambda s, c: s.list_roles(*pb(c))),
        ("create_role", "POST", B + "/roles", 201, lambda s, c: s.create_role(*pb(c), c.body)),
        ("get_role", "GET", B + "/roles/{role_name}", 200, lambda s, c: s.get_role(*pb(c), c.path["role_name"])),
        (
            "delete_role",
            "DELETE",
            B + "/roles/{role_name}",
            200,
            lambda s, c: s.delete_role(*pb(c), c.path["role_name"]),
        ),
        (
            "reveal_password",
            "GET",
            B + "/roles/{role_name}/reveal_password",
            200,
            lambda s, c: s.reveal_password(*pb(c), c.path["role_name"]),
        ),
        (
            "reset_password",
            "POST",
            B + "/roles/{role_name}/reset_password",
            200,
            lambda s, c: s.reset_password(*pb(c), c.path["role_name"]),
        ),
        ("list_endpoints", "GET", P + "/endpoints", 200, lambda s, c: s.list_endpoints(c.path["project_id"])),
        (
            "create_endpoint",
            "POST",
            P + "/endpoints",
            201,
            lambda s, c: s.create_endpoint(c.path["project_id"], c.body),
        ),
        ("get_endpoint", "GET", E, 200, lambda s, c: s.get_endpoint(c.path["project_id"], c.path["endpoint_id"])),
        (
            "update_endpoint",
            "PATCH",
            E,
            200,
            lambda s, c: s.update_endpoint(c.path["project_id"], c.path["endpoint_id"], c.body),
        ),
        (
            "delete_endpoint",
            "DELETE",
            E,
            200,
            lambda s, c: s.delete_endpoint(c.path["project_id"], c.path["endpoint_id"]),
        ),
        (
            "start_endpoint",
            "POST",
            E + "/start",
            200,
            lambda s, c: s.start_endpoint(c.path["project_id"], c.path["endpoint_id"]),
        ),
        (
            "suspend_endpoint",
            "POST",
            E + "/suspend",
            200,
            lambda s, c: s.suspend_endpoint(c.path["project_id"], c.path["endpoint_id"]),
        ),
        (
            "restart_endpoint",
            "POST",
            E + "/restart",
            200,
            lambda s, c: s.restart_endpoint(c.path["project_id"], c.path["endpoint_id"]),
        ),
        (
            "connection_uri",
            "GET",
            P + "/connection_uri",
            200,
            lambda s, c: s.connection_uri(
                c.path["project_id"],
                database_name=_required(c, "database_name"),
                role_name=_required(c, "role_name"),
                branch_id=c.query.get("branch_id"),
                endpoint_id=c.query.get("endpoint_id"),
                pooled=c.bool_query("pooled"),
            ),
        ),
        (
            "list_operations",
            "GET",
            P + "/operations",
            200,
            lambda s, c: s.list_operations(
                c.path["project_id"], limit=c.int_query("limit"), cursor=c.query.get("cursor")
            ),
        ),
        (
            "get_operation",
            "GET",
            P + "/operations/{operation_id}",
            200,
            lambda s, c: s.get_operation(c.path["project_id"], c.path["operation_id"]),
        ),
    ]


def _or(value: int | None, default: int) -> int:
    """``value`` unless it was not given (0 is given: the service refuses it as Neon does)."""
    return default if value is None else value


def route_table() -> dict[str, tuple[str, str, int]]:
    """Each route's name (the service method it calls) → (HTTP method, path under /api/v2, success status)."""
    return {name: (method, path, status) for name, method, path, status, _ in _routes()}


async def _sync(value: dict[str, Any]) -> dict[str, Any]:
    return value


def _required(call: Call, name: str) -> str:
    value = call.query.get(name)
    if not value:
        raise NeonAPIError(400, f"query parameter {name} is required")
    return value


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

    def endpoint(name: str, method: str, status: int, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def answer(request: Request) -> Response:
            request_id = str(uuid.uuid4())
            arrived[name] += 1
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
            if method in ("POST", "PATCH"):
                raw = await request.body()
                if raw.strip():
                    try:
                        parsed = json.loads(raw)
                    except json.JSONDecodeError as exc:
                        return _error(400, f"malformed JSON body: {exc.msg} at character {exc.pos}", request_id)
                    if not isinstance(parsed, dict):
                        return _error(400, "the request body must be a JSON object", request_id)
                    body = parsed
            call = Call(dict(request.path_params), dict(request.query_params), body)
            try:
                result = await handler(request.app.state.service, call)
            except NeonAPIError as exc:
                return _error(exc.status, exc.message, request_id, exc.code)
            except Exception:
                logger.exception("local Neon failed on %s %s (request %s)", method, request.url.path, request_id)
                return _error(500, f"internal error (request {request_id}); see the local Neon log", request_id)
            return JSONResponse(result, status_code=status, headers={"X-Neon-Ret-Request-Id": request_id})

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

    by_path: dict[str, list[tuple[str, str, int, Handler]]] = {}
    for name, method, path, status, handler in _routes():
        by_path.setdefault(path, []).append((name, method, status, handler))
    routes: list[BaseRoute] = [
        Route("/healthz", healthz),
        Route("/admin/faults", admin_faults, methods=["GET", "POST"]),
        Route("/admin/requests", admin_requests),
        *serverless.routes(),  # @neondatabase/serverless: SQL over HTTP and WebSocket, through the front door
    ]
    for path, handlers in by_path.items():
        for name, method, status, handler in handlers:
            routes.append(Route("/api/v2" + path, endpoint(name, method, status, handler), methods=[method]))

    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})
    app.state.service = service
    return app
