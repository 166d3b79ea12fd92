"""Tenancy: which ``Services`` serve a request.

A server has one tenant, its own settings. Started with ``--neon-key-from-header`` (HTTP and SSE), each request may
bring its own Neon API key in the ``X-Neon-Api-Key`` header; every distinct key gets ``Services`` of its own —
API client, directory cache, pools, pending confirmations, and a data directory ``$NEON_MCP_HOME/tenants/<id>`` (audit
log, migration plans) — and nothing is shared between keys. A tenant is known by a hash of its key (``id``, 16 hex
digits, the only form that reaches logs); the key itself is kept only inside its tenant's settings as a ``SecretStr``.

With a state URL, the state database (``server.root.build_state``: one pool for the process) holds every tenant's
pending confirmations, migration plans and audit records, by tenant id, where every replica finds them; ``Tenants``
opens it first and closes it last. A server without a Neon key of its own is the tenant of its database URL (its
hash), so that two deployments sharing one state database never share rows.

Tenants of keys from requests are closed after an hour without calls (at least twice the confirmation TTL, so a
pending confirmation never outlives its tenant), and at most ``max_tenants`` are open at once.

``track_calls`` is the MCP middleware that counts calls in flight, per tenant (an idle tenant is one without calls)
and in total (a stopping HTTP server waits for them).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskGroup, TaskStatus
from pydantic import SecretStr

from ..errors import InvalidInput
from ..settings import Settings

if TYPE_CHECKING:
    from mcp.server.context import CallNext, HandlerResult, ServerRequestContext

    from ..root import Services

__all__ = ["KEY_HEADER", "Tenants", "tenant_id", "track_calls"]

logger = logging.getLogger("neon_mcp.tenants")

KEY_HEADER = "X-Neon-Api-Key"
"""The request header that carries a tenant's Neon API key (with ``--neon-key-from-header``)."""

_LONG_LIVED = frozenset({"subscriptions/listen"})
"""Requests that stay open for the whole connection: they are not calls in flight."""


def tenant_id(key: str) -> str:
    """The name of the tenant of ``key`` in logs and paths: 16 hex digits of its SHA-256, never the key."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


@dataclass
class _Tenant:
    id: str
    context: Services
    last_used: float = 0.0


class Tenants:
    """The ``Services`` of each tenant of one server process; ``resolve`` picks the one a request belongs to.

    Use it as an async context manager: leaving it closes every tenant (pools, API clients). With keys from requests
    it also runs the sweeper that closes idle tenants.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        max_tenants: int = 100,
        idle_seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        from ..root import build_services, build_state

        self.settings = settings
        self.max_tenants = max_tenants
        self.idle_seconds = idle_seconds if idle_seconds is not None else max(3600.0, 2 * settings.confirmation_ttl)
        self._clock = clock
        self.state = build_state(settings)
        """The state database replicas share (None: memory and files); open while the tenants are."""
        own = settings.neon_api_key or settings.database_url
        ident = tenant_id(own.get_secret_value()) if own is not None else "default"
        self._default = _Tenant(ident, build_services(settings, tenant=ident, state=self.state))
        self._by_id: dict[str, _Tenant] = {}
        self._calls: dict[str, int] = {}
        self._no_calls: anyio.Event | None = None
        self._task_group: TaskGroup | None = None
        self._sweeper: anyio.CancelScope | None = None
        self._stack = AsyncExitStack()

    # --- lifetime ----------------------------------------------------------------------------------------------------

    async def __aenter__(self) -> Tenants:
        if self.state is not None:
            await self.state.open()
            self._stack.push_async_callback(self.state.close)  # after the tenants: their audit logs write there
        if self.settings.neon_key_from_header:
            self._task_group = await self._stack.enter_async_context(anyio.create_task_group())
            await self._task_group.start(self._sweep_forever)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        try:
            await self.aclose()
        finally:
            await self._stack.aclose()  # tenants being closed finish closing; then the state database closes
            self._task_group = None

    async def aclose(self) -> None:
        """Close every tenant's services."""
        tenants = [self._default, *self._by_id.values()]
        self._by_id.clear()
        for tenant in tenants:
            await self._close(tenant)

    # --- which tenant ----------------------------------------------------------------------------------------------

    def resolve(self, headers: Mapping[str, str] | None) -> Services:
        """The services for a request with these HTTP headers (None: not HTTP). Raises ``InvalidInput`` when the
        request brings a key this server does not take, or brings none where one is needed."""
        key = self._key_of(headers)
        if key is None:
            if self.settings.neon_key_from_header and self.settings.neon_api_key is None:
                raise InvalidInput(
                    f"no Neon API key: send yours in the {KEY_HEADER} header (this server has no key of its own)"
                )
            return self._touch(self._default).context
        ident = tenant_id(key)
        if ident == self._default.id:
            return self._touch(self._default).context
        tenant = self._by_id.get(ident) or self._open(ident, key)
        return self._touch(tenant).context

    def _key_of(self, headers: Mapping[str, str] | None) -> str | None:
        value = headers.get(KEY_HEADER) if headers is not None else None
        if value is None:
            return None
        if not self.settings.neon_key_from_header:
            raise InvalidInput(
                f"this server does not take Neon API keys from requests (it was started without "
                f"--neon-key-from-header): send no {KEY_HEADER} header"
            )
        key = value.strip()
        if not key:
            raise InvalidInput(f"the {KEY_HEADER} header is empty")
        return key

    def _open(self, ident: str, key: str) -> _Tenant:
        from ..root import build_services

        if len(self._by_id) >= self.max_tenants and not self._evict_one():
            raise InvalidInput(
                f"this server serves at most {self.max_tenants} Neon API keys at once and all are busy; try again later"
            )
        settings = self.settings.model_copy(
            update={"neon_api_key": SecretStr(key), "home": self.settings.home / "tenants" / ident}
        )
        tenant = _Tenant(ident, build_services(settings, tenant=ident, state=self.state))
        self._by_id[ident] = tenant
        logger.info("tenant %s: opened (%d open)", ident, len(self._by_id))
        return tenant

    def _touch(self, tenant: _Tenant) -> _Tenant:
        tenant.last_used = self._clock()
        return tenant

    # --- calls in flight, idle tenants ---------------------------------------------------------------------------

    @property
    def calls_in_flight(self) -> int:
        """Calls being answered now, over every tenant."""
        return sum(self._calls.values())

    @contextmanager
    def calling(self, headers: Mapping[str, str] | None) -> Iterator[None]:
        """Count one call in flight for the tenant of ``headers`` (which need not be open yet)."""
        try:
            key = self._key_of(headers)
        except InvalidInput:
            key = None  # the call itself reports it
        ident = tenant_id(key) if key is not None else self._default.id
        if not self._calls:
            self._no_calls = anyio.Event()
        self._calls[ident] = self._calls.get(ident, 0) + 1
        try:
            yield
        finally:
            self._calls[ident] -= 1
            if not self._calls[ident]:
                del self._calls[ident]
            tenant = self._by_id.get(ident)
            if tenant is not None:
                self._touch(tenant)
            if not self._calls and self._no_calls is not None:
                self._no_calls.set()

    async def wait_for_calls(self) -> None:
        """Return once no call is in flight."""
        while self._calls and self._no_calls is not None:
            await self._no_calls.wait()

    def _evict_one(self) -> bool:
        """Close the least recently used tenant without calls; False when every tenant is busy."""
        idle = [tenant for tenant in self._by_id.values() if tenant.id not in self._calls]
        if not idle or self._task_group is None:
            return False
        self._retire(min(idle, key=lambda tenant: tenant.last_used), "evicted")
        return True

    def sweep(self) -> int:
        """Close tenants without calls for longer than ``idle_seconds``; returns how many."""
        cutoff = self._clock() - self.idle_seconds
        stale = [t for t in self._by_id.values() if t.id not in self._calls and t.last_used < cutoff]
        for tenant in stale:
            self._retire(tenant, "idle")
        return len(stale)

    def _retire(self, tenant: _Tenant, why: str) -> None:
        del self._by_id[tenant.id]
        logger.info("tenant %s: closed (%s; %d open)", tenant.id, why, len(self._by_id))
        assert self._task_group is not None
        self._task_group.start_soon(self._close, tenant)

    async def _sweep_forever(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        with anyio.CancelScope() as self._sweeper:
            task_status.started()
            while True:
                await anyio.sleep(max(1.0, min(60.0, self.idle_seconds / 4)))
                self.sweep()

    @staticmethod
    async def _close(tenant: _Tenant) -> None:
        try:
            await tenant.context.aclose()
        except Exception:  # one tenant's broken pool must not keep the others open
            logger.exception("tenant %s: closing failed", tenant.id)


class _TrackCalls:
    """MCP middleware: every request except long-lived listens counts as a call in flight of its tenant."""

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        tenants = ctx.lifespan_context
        if ctx.request_id is None or ctx.method in _LONG_LIVED or not isinstance(tenants, Tenants):
            return await call_next(ctx)
        with tenants.calling(getattr(ctx.request, "headers", None)):
            return await call_next(ctx)


track_calls = _TrackCalls()
