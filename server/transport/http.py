"""The server as an ASGI app, for the streamable HTTP transport (MCP at ``/mcp``) and the legacy SSE one (``/sse``,
posts to ``/messages/``).

Composed from three pieces around the SDK's own app:

- ``BearerGate``: every request but ``/healthz`` must carry ``Authorization: Bearer <token>``; the token is compared in
  constant time (digests of equal length), and a request without it, or with another, gets 401.
- ``/healthz``: ``{"status": "ok"}``, without a token, for load balancers and supervisors; with a state database, its
  health too (``"state": {...}``), and 503 while it does not answer (a replica that cannot store or take a
  confirmation should get no calls).
- The SDK's Host and Origin checks (``transport_security``), on whatever address the server listens: a request
  whose Host is not allowed gets 421, one from a browser page of another origin 403 (DNS rebinding, cross-site
  requests). Behind a token this is defence in depth; beyond loopback the allowed hosts must be named.
- ``OpenStreams``: the event streams (GET requests: streamable HTTP's standalone stream, an SSE session) never end by
  themselves; a stopping server ends them, cleanly, once the calls in flight are answered (``server.transport.runner``).

The app's lifespan owns the tenants (``server.mcp.tenants``): they outlive every MCP session, and are closed after them.

With a state URL the server is one of several interchangeable replicas: streamable HTTP runs stateless (no
``Mcp-Session-Id``: every request stands alone, so a round-robin load balancer needs no session affinity; clients of
the older protocol then confirm through ``confirm_operation``, as the server cannot ask them mid-call), and the
request state of elicitation round trips is sealed under a key every replica shares (``server.mcp.assembly``). SSE
keeps a session per connection in one process: behind a load balancer it needs session affinity.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Literal

import anyio
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import NeonMCPError
from ..mcp.assembly import build_server
from ..mcp.tenants import Tenants
from ..settings import Settings

__all__ = ["HTTPApp", "create_app", "is_loopback", "transport_security"]

logger = logging.getLogger("neon_mcp.http")

MCP_PATHS = {"http": "/mcp", "sse": "/sse"}
"""Where each HTTP transport serves MCP."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (``localhost``, ``127.0.0.0/8``, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


_LOOPBACK_HOSTS = ("127.0.0.1:*", "localhost:*", "[::1]:*")
_LOOPBACK_ORIGINS = ("http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*")


def transport_security(settings: Settings) -> TransportSecuritySettings:
    """The SDK's Host and Origin checks (DNS-rebinding protection), always on: ``--allowed-hosts`` and
    ``--allowed-origins``, plus the loopback names when listening on loopback (the SDK's own default there)."""
    loopback = is_loopback(settings.host)
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[*settings.allowed_hosts, *(_LOOPBACK_HOSTS if loopback else ())],
        allowed_origins=[*settings.allowed_origins, *(_LOOPBACK_ORIGINS if loopback else ())],
    )


def _digest(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()


class BearerGate:
    """ASGI middleware: HTTP requests without ``Authorization: Bearer <token>`` are answered 401."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._expected = _digest(token.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self._authorized(Headers(scope=scope).get("authorization", "")):
            response = JSONResponse(
                {
                    "error": "unauthorized",
                    "error_description": "send Authorization: Bearer <token> (NEON_MCP_HTTP_TOKEN, or the token "
                    "neon-mcp printed when it started)",
                },
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="neon-mcp"'},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _authorized(self, header: str) -> bool:
        scheme, _, credentials = header.partition(" ")
        given = _digest(credentials.strip().encode())
        # Both sides are digests of one length, so the comparison takes the same time whatever was sent.
        return hmac.compare_digest(given, self._expected) and scheme.lower() == "bearer"


class OpenStreams:
    """ASGI middleware that can end every open GET exchange (event streams) with a complete response.

    ``close_all`` cancels them; a stream whose response had started gets its final empty chunk, one that had not gets
    503. GET requests arriving afterwards get 503 at once.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._open: set[anyio.CancelScope] = set()
        self._closing = False

    @property
    def count(self) -> int:
        """GET exchanges open now."""
        return len(self._open)

    def close_all(self) -> None:
        """End every open GET exchange, and refuse new ones."""
        self._closing = True
        for scope in list(self._open):
            scope.cancel()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        if self._closing:
            await _stopping(scope, receive, send)
            return
        started = finished = False

        async def watching(message: Message) -> None:
            nonlocal started, finished
            if finished:
                return  # the SDK's SSE endpoint answers once more after its stream ended
            if message["type"] == "http.response.start":
                started = True
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                finished = True
            await send(message)

        with anyio.CancelScope() as cancel:
            self._open.add(cancel)
            try:
                await self.app(scope, receive, watching)
            finally:
                self._open.discard(cancel)
        if cancel.cancel_called and not finished:
            if started:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            else:
                await _stopping(scope, receive, send)


async def _stopping(scope: Scope, receive: Receive, send: Send) -> None:
    await JSONResponse({"error": "the server is stopping"}, status_code=503)(scope, receive, send)


def _healthz(tenants: Tenants) -> Callable[[Request], Awaitable[Response]]:
    async def healthz(_: Request) -> Response:
        if tenants.state is None:
            return JSONResponse({"status": "ok"})
        health = await tenants.state.health()
        status = "ok" if health.ok else "unavailable"
        return JSONResponse({"status": status, "state": health.as_dict()}, status_code=200 if health.ok else 503)

    return healthz


@dataclass(frozen=True)
class HTTPApp:
    """The ASGI app of one server, and what a graceful stop needs from it."""

    asgi: ASGIApp
    tenants: Tenants
    streams: OpenStreams
    path: str
    """Where MCP is served (``/mcp`` or ``/sse``)."""
    failures: list[NeonMCPError] = field(default_factory=list)
    """Why the app could not start (its lifespan failed), for the runner to report."""


def create_app(settings: Settings, *, transport: Literal["http", "sse"], token: str) -> HTTPApp:
    """The app serving MCP over ``transport`` for ``settings``, behind ``token``. Raises ``InvalidInput`` as
    ``build_server`` does."""
    tenants = Tenants(settings)
    server = build_server(settings, tenants=tenants)
    security = transport_security(settings)
    if transport == "http":
        mcp_app = server.streamable_http_app(
            streamable_http_path=MCP_PATHS["http"],
            host=settings.host,
            transport_security=security,
            stateless_http=settings.state_url is not None,
        )
    else:
        mcp_app = server.sse_app(sse_path=MCP_PATHS["sse"], host=settings.host, transport_security=security)

    failures: list[NeonMCPError] = []

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            try:
                await stack.enter_async_context(tenants)  # closed last: after every session
            except NeonMCPError as exc:  # the state database: said once by the runner, not as a traceback
                failures.append(exc)
                raise
            if transport == "http":
                # The SDK's app runs its session manager in its own lifespan, which a mounted app does not get.
                await stack.enter_async_context(server.session_manager.run())
            yield
        logger.info("stopped: sessions ended, pools closed")

    app = Starlette(
        routes=[Route("/healthz", _healthz(tenants), methods=["GET"]), Mount("", app=BearerGate(mcp_app, token))],
        lifespan=lifespan,
    )
    streams = OpenStreams(_said_plainly(app, failures))
    return HTTPApp(streams, tenants, streams, MCP_PATHS[transport], failures)


def _said_plainly(app: ASGIApp, failures: list[NeonMCPError]) -> ASGIApp:
    """The app, its start-up failures reported to the server by their message rather than a traceback (Starlette
    sends the traceback; ours are anticipated, and the message says what to do)."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "lifespan.startup.failed" and failures:
                message = {**message, "message": str(failures[0])}
            await send(message)

        await app(scope, receive, sending)

    return wrapped
