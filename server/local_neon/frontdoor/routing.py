"""Where a connection goes: its endpoint, named by the SNI host name or ``options=endpoint=…``, pooled or not, at head
or at a point in time; and making that server ready to answer.

Names follow Neon's proxy: the first label of the TLS server name (``ep-…``; libpq sends it when the host is a name,
``hostaddr=127.0.0.1`` gives the address), or ``endpoint=<id>`` (``project=<id>`` too) in the startup ``options``, for
clients without SNI; both given must agree. ``<id>-pooler`` is the endpoint's PgBouncer. A branch id (``br-…``) names
the branch's read-write endpoint, or with ``neon_timestamp:…``/``neon_lsn:…`` in the options (what neonctl's
``connection-string branch@point`` makes) a read-only copy of the branch at that point (see ``timetravel``).

A suspended endpoint is started and the connection held until it runs; so is one still being created, and a role or
database that an operation is still creating is waited for. The endpoint is marked in use, so the housekeeping loop
does not suspend it under a connection being made. Refusals raise ``Refusal`` with a SQLSTATE.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from .. import ids
from ..branching import Point, check_window
from ..endpoints import Endpoints
from ..errors import NeonAPIError
from ..records import Branch, Endpoint, Operation, Project
from ..runtime import Runtime
from . import wire
from .timetravel import Copies, CopyFailed

__all__ = ["NoEndpointNamed", "Refusal", "Request", "Router", "Server", "parse_request"]

WAKE_TIMEOUT = 60.0
_POLL = 0.02
_POOLER_SUFFIX = "-pooler"
_NO_NAME = (
    "Endpoint ID is not specified. Either use a client that sends SNI with the endpoint's host name "
    "(libpq: host=<endpoint id>.localhost with hostaddr=127.0.0.1) or pass the endpoint ID as a parameter: "
    "'?options=endpoint%3D<endpoint-id>'."
)


class Refusal(Exception):
    """The connection cannot be served; ``code`` is the SQLSTATE the client gets."""

    def __init__(self, message: str, code: str = "08004") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class NoEndpointNamed(Refusal):
    """Neither the server name nor the options name an endpoint."""

    def __init__(self) -> None:
        super().__init__(_NO_NAME)


@dataclass(frozen=True)
class Request:
    """What a connection asks for, from its server name and options."""

    name: str
    """An endpoint id or a branch id, without ``-pooler``."""
    pooled: bool = False
    point: Point | None = None
    options: str | None = None
    """The startup ``options`` without the words meant for the front door."""
    params_compat: bool = False
    """``neon_proxy_params_compat:true``: pass every startup parameter on, not just Neon's short list."""


@dataclass(frozen=True)
class Server:
    """A running server ready for the connection."""

    host: str
    port: int
    """Where to log in: the endpoint's server, its PgBouncer, or a copy at a point in time."""
    server_port: int
    """The server itself (role secrets are read there)."""
    password: str
    """The servers' superuser's password."""
    branch_id: str
    pooler: bool
    """Whether ``port`` is a PgBouncer (it refuses startup parameters it does not know)."""


def _sni_name(sni: str | None) -> str | None:
    if not sni or "." not in sni:
        return None
    label = sni.split(".", 1)[0]
    return label if label.startswith(("ep-", "br-")) else None


def parse_request(*, sni: str | None, options: str | None, fallback: str | None = None) -> Request:
    """The request a connection makes with TLS server name ``sni`` and startup ``options``.

    ``fallback`` names the endpoint when neither does (the password hack's ``endpoint=…;``). Raises ``Refusal``.
    """
    named: list[str] = []
    kept: list[str] = []
    neon: dict[str, str] = {}
    for word in wire.split_options(options or ""):
        key, sep, value = word.partition("=")
        if sep and key in ("endpoint", "project"):
            named.append(value)
            continue
        if word.startswith("neon_") and ":" in word:
            option, _, setting = word[5:].partition(":")
            neon[option] = setting
            continue
        kept.append(word)
    if len(named) > 1:
        raise Refusal("the options name more than one endpoint (endpoint=… or project=…)")
    from_options = named[0] if named else None
    from_sni = _sni_name(sni)
    if from_options and from_sni and from_options != from_sni:
        raise Refusal(
            f"Inconsistent endpoint name inferred from SNI ({from_sni!r}) and the endpoint option ({from_options!r})."
        )
    name = from_options or from_sni or fallback
    if not name:
        raise NoEndpointNamed
    pooled = name.endswith(_POOLER_SUFFIX)
    if pooled:
        name = name.removesuffix(_POOLER_SUFFIX)
    point = _point(neon)
    return Request(
        name=name,
        pooled=pooled and point is None,
        point=point,
        options=" ".join(kept) or None,
        params_compat=neon.get("proxy_params_compat") == "true",
    )


def _point(neon: dict[str, str]) -> Point | None:
    try:
        if "timestamp" in neon and "lsn" in neon:
            raise Refusal("neon_timestamp and neon_lsn cannot be given together")
        if "timestamp" in neon:
            return Point(time=ids.parse_time(neon["timestamp"], "neon_timestamp"))
        if "lsn" in neon:
            value = ids.parse_lsn(neon["lsn"], "neon_lsn")
            return Point(lsn=ids.format_lsn(value), lsn_value=value)
    except NeonAPIError as exc:
        raise Refusal(exc.message, "22023") from exc
    return None


class Router:
    """Finds and readies the server for a ``Request``."""

    def __init__(self, rt: Runtime, endpoints: Endpoints, copies: Copies) -> None:
        self._rt = rt
        self._endpoints = endpoints
        self._copies = copies

    @asynccontextmanager
    async def open(self, request: Request) -> AsyncIterator[Server]:
        """The server for ``request``, ready; a copy at a point in time is kept while the block runs."""
        if request.point is not None:
            branch = self._branch_of(request.name)
            project = self._project(branch.project_id)
            try:
                check_window(project, branch, request.point, history_seconds=self._rt.history_seconds)
            except NeonAPIError as exc:
                raise Refusal(exc.message, "22023") from exc
            async with contextlib.AsyncExitStack() as stack:
                try:
                    port = await stack.enter_async_context(self._copies.use(project, branch, request.point))
                except CopyFailed as exc:
                    raise Refusal(str(exc), "22023") from exc
                yield Server(self._rt.host, port, port, project.superuser_password, branch.id, pooler=False)
            return
        endpoint = await self.wake(self._endpoint_of(request.name))
        project = self._project(endpoint.project_id)
        pooler = request.pooled and self._rt.poolers.available and endpoint.pooler_port is not None
        port = endpoint.pooler_port if pooler and endpoint.pooler_port is not None else endpoint.port
        yield Server(self._rt.host, port, endpoint.port, project.superuser_password, endpoint.branch_id, pooler)

    def _project(self, project_id: str) -> Project:
        project = self._rt.store.get(Project, project_id)
        if project is None:
            raise Refusal("The requested endpoint could not be found: its project was deleted.")
        return project

    def _branch_of(self, name: str) -> Branch:
        if name.startswith("br-"):
            branch = self._rt.store.get(Branch, name)
        else:
            endpoint = self._rt.store.get(Endpoint, name)
            branch = self._rt.store.get(Branch, endpoint.branch_id) if endpoint is not None else None
        if branch is None:
            raise Refusal(f"The requested endpoint could not be found: local Neon has no endpoint or branch {name}.")
        return branch

    def _endpoint_of(self, name: str) -> Endpoint:
        if name.startswith("br-"):
            branch = self._branch_of(name)
            writer = self._rt.read_write_endpoint(branch)
            if writer is None:
                raise Refusal(f"branch {name} has no read_write endpoint to connect to")
            return writer
        endpoint = self._rt.store.get(Endpoint, name)
        if endpoint is None:
            raise Refusal(f"The requested endpoint could not be found: local Neon has no endpoint {name}.")
        return endpoint

    async def wake(self, endpoint: Endpoint) -> Endpoint:
        """``endpoint`` once it runs: started if suspended, waited for if starting or being created.

        Raises ``Refusal`` if it is disabled, deleted, fails to start, or is not running within ``WAKE_TIMEOUT``.
        """
        deadline = time.monotonic() + WAKE_TIMEOUT
        while True:
            current = self._rt.store.get(Endpoint, endpoint.id)
            if current is None:
                raise Refusal(f"The requested endpoint could not be found: endpoint {endpoint.id} was deleted.")
            if current.current_state == "active" and current.pending_state is None:
                self._rt.activity[current.id] = time.monotonic()
                return current
            if current.disabled:
                raise Refusal(f"endpoint {current.id} is disabled; enable it to connect", "57P03")
            if time.monotonic() > deadline:
                raise Refusal(f"endpoint {current.id} did not start within {WAKE_TIMEOUT:g} s", "57P03")
            if current.pending_state is None and current.current_state == "idle":
                try:
                    operations = self._rt.operations.submit(
                        current.project_id, [current.branch_id], [self._endpoints.start_step(current)]
                    )
                except NeonAPIError:
                    await asyncio.sleep(_POLL)  # the branch is busy; whatever holds it decides, then we look again
                    continue
                self._endpoints.mark(current, "active")
                await self._rt.operations.wait(operations)
                failed = self._rt.store.get(Operation, operations[0].id)
                if failed is not None and failed.status == "failed":
                    raise Refusal(f"could not start endpoint {current.id}: {failed.error}", "57P03")
                continue
            await asyncio.sleep(_POLL)

    async def settle(self, branch_id: str, within: float = WAKE_TIMEOUT) -> bool:
        """Wait until no mutation holds the branch (a role or database may be in the making); whether one did."""
        deadline = time.monotonic() + within
        waited = False
        while time.monotonic() < deadline:
            try:
                self._rt.operations.check([branch_id])
            except NeonAPIError:
                waited = True
                await asyncio.sleep(_POLL)
                continue
            return waited
        return waited
