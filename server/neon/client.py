"""The Neon API client: requests, retries, rate limiting, pagination, operation polling and typed helpers.

One ``NeonClient`` per server. The HTTP transport is injectable (``httpx2.MockTransport`` in unit tests,
``httpx2.ASGITransport`` or loopback HTTP for local Neon); nothing here needs patching.

Retries: 423, 429 and 503 are retried for every method, 502 and 504 for GET, with jittered exponential backoff that
waits at least what ``Retry-After`` asks. A network error or timeout is retried for GET, and for other methods only when
the request cannot have been sent (the connection was never made); a POST that may have reached Neon is never
resent blindly. Network failures get a budget of their own (``max_network_retries``, 2): an API that cannot be reached
is reported within seconds, while Neon's own "wait" answers (423, 429, 503) are waited out longer. Every request,
retries included, passes the client-side ``RateLimiter`` first.

httpx2 exceptions are translated once, in ``_transport_failure``, and non-2xx answers in ``_answer_failure``; both
give a ``NeonAPIFailure`` whose message names the method and path. The API key is sent in a header and otherwise
never appears: not in messages, reprs or log lines.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, NamedTuple, Self, TypeAlias, TypeVar
from urllib.parse import quote

import httpx2
from pydantic import BaseModel, SecretStr

from .. import __version__
from ..errors import InvalidInput, NeonAPIFailure, NeonUnreachable, OperationFailed, OperationTimeout
from ..retry import Clock, Sleep, backoff
from .models import Branch, Database, Endpoint, Operation, Organization, Project, Role
from .rate_limit import RateLimiter, parse_retry_after, route_of

__all__ = ["DEFAULT_BASE_URL", "CreatedBranch", "CreatedProject", "NeonClient", "Progress"]

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://console.neon.tech/api/v2"

Progress: TypeAlias = Callable[[float, float | None, str], Awaitable[None]]
"""``progress(done, total, message)``: called while operations are awaited (an MCP progress notification)."""

JSON: TypeAlias = dict[str, Any]
_M = TypeVar("_M", bound=BaseModel)

_ALWAYS_RETRIED = frozenset({423, 429, 503})
_RETRIED_IF_IDEMPOTENT = frozenset({502, 504})
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})
_NEVER_SENT = (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout)
_TRANSIENT = (httpx2.TimeoutException, httpx2.NetworkError, httpx2.RemoteProtocolError)
_MAX_RETRY_AFTER = 60.0
"""A ``Retry-After`` longer than this is not waited out inside a tool call: the failure is reported instead."""


class CreatedBranch(NamedTuple):
    """What creating a branch returns: the branch, its new computes, and the operations to wait for."""

    branch: Branch
    endpoints: list[Endpoint]
    operations: list[Operation]


class CreatedProject(NamedTuple):
    """What creating a project returns: the project, its root branch, computes, databases and roles (never with
    passwords), the operations to wait for, and its first connection URI (with the password: a ``SecretStr``)."""

    project: Project
    branch: Branch
    endpoints: list[Endpoint]
    databases: list[Database]
    roles: list[Role]
    operations: list[Operation]
    connection_uri: SecretStr | None


class NeonClient:
    """An async client of Neon's API v2 (or local Neon, which speaks the same contract).

    ``request_count`` counts every HTTP request actually sent, retries included. ``clock`` and ``sleep`` pace retries
    and operation polling and default to the limiter's; tests inject fakes to run without waiting.
    """

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        transport: httpx2.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
        max_retries: int = 8,
        max_network_retries: int = 2,
        limiter: RateLimiter | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if not api_key:
            raise InvalidInput("a Neon API key is needed: set NEON_API_KEY")
        if not base_url.startswith(("http://", "https://")):
            raise InvalidInput(f"the Neon API base URL must start with http:// or https://, not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self.max_network_retries = max_network_retries
        self.request_count = 0
        self._key = SecretStr(api_key)
        self._clock = clock
        self._sleep = sleep
        self._limiter = limiter or RateLimiter(clock=clock, sleep=sleep)
        self._http = httpx2.AsyncClient(
            base_url=self.base_url,
            transport=transport,
            timeout=timeout,
            headers={
                "Authorization": f"Bearer {api_key}",
                "Accept": "application/json",
                "User-Agent": f"neon-mcp/{__version__}",
            },
        )

    def __repr__(self) -> str:
        return f"NeonClient(base_url={self.base_url!r}, request_count={self.request_count})"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # --- requests ----------------------------------------------------------------------------------------------------

    async def get(self, path: str, *, params: Mapping[str, Any] | None = None) -> JSON:
        return await self.request("GET", path, params=params)

    async def post(self, path: str, *, json: JSON | None = None, params: Mapping[str, Any] | None = None) -> JSON:
        return await self.request("POST", path, json=json, params=params)

    async def patch(self, path: str, *, json: JSON | None = None, params: Mapping[str, Any] | None = None) -> JSON:
        return await self.request("PATCH", path, json=json, params=params)

    async def delete(self, path: str, *, json: JSON | None = None, params: Mapping[str, Any] | None = None) -> JSON:
        return await self.request("DELETE", path, json=json, params=params)

    async def request(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: JSON | None = None
    ) -> JSON:
        """Send one API request (retrying as the module docstring says) and return its JSON object (``{}`` if empty).

        Raises ``NeonAPIFailure`` for an error answer, ``NeonUnreachable`` when no answer came.
        """
        method = method.upper()
        route = route_of(method, path)
        query = _query(params)
        attempt = 0
        network_failures = 0
        failure: NeonAPIFailure
        while True:
            await self._limiter.acquire(route)
            self.request_count += 1
            try:
                response = await self._http.request(method, path, params=query, json=json)
            except httpx2.HTTPError as exc:
                failure = self._transport_failure(exc, method, path, attempt + 1)
                network_failures += 1
                too_many = network_failures > self.max_network_retries or attempt >= self.max_retries
                if too_many or not _may_resend(exc, method):
                    raise failure from exc
                delay = backoff(attempt)
            else:
                if response.is_success:
                    return self._json(response, method, path)
                failure = self._answer_failure(response, method, path, attempt + 1)
                wait = self._retry_wait(response, method, attempt)
                if wait is None:
                    raise failure
                delay = wait
            logger.info("%s; retrying in %.1f s (attempt %d of %d)", failure, delay, attempt + 2, self.max_retries + 1)
            await self._sleep(delay)
            attempt += 1

    def _retry_wait(self, response: httpx2.Response, method: str, attempt: int) -> float | None:
        """Seconds to wait before resending after ``response``, or ``None`` when it is not to be retried."""
        status = response.status_code
        if attempt >= self.max_retries:
            return None
        if status not in _ALWAYS_RETRIED and not (status in _RETRIED_IF_IDEMPOTENT and method in _IDEMPOTENT):
            return None
        asked = parse_retry_after(response.headers.get("Retry-After"))
        if asked is None:
            return backoff(attempt)
        return asked if asked <= _MAX_RETRY_AFTER else None

    def _scrub(self, text: str) -> str:
        return text.replace(self._key.get_secret_value(), "***")

    def _transport_failure(self, exc: httpx2.HTTPError, method: str, path: str, attempts: int) -> NeonUnreachable:
        """The one translation of httpx2 exceptions."""
        if isinstance(exc, httpx2.TimeoutException):
            what = "timed out"
        elif isinstance(exc, httpx2.ConnectError):
            what = "could not connect"
        elif isinstance(exc, httpx2.NetworkError | httpx2.RemoteProtocolError):
            what = "the connection broke"
        else:
            what = "the request failed"
        detail = self._scrub(str(exc))[:200]
        message = f"{what} ({type(exc).__name__}{': ' + detail if detail else ''})"
        return NeonUnreachable(method, path, message, attempts=attempts)

    def _answer_failure(self, response: httpx2.Response, method: str, path: str, attempts: int) -> NeonAPIFailure:
        """A non-2xx answer as a failure carrying Neon's code, message and request id."""
        body: object = None
        try:
            body = response.json()
        except ValueError:
            body = None
        fields: Mapping[str, Any] = body if isinstance(body, dict) else {}
        message = str(fields.get("message") or response.text.strip()[:200] or response.reason_phrase or "error")
        if response.status_code in (401, 403):
            message += "; check NEON_API_KEY"
        request_id = fields.get("request_id") or response.headers.get("X-Neon-Ret-Request-Id")
        return NeonAPIFailure(
            method,
            path,
            self._scrub(message),
            status=response.status_code,
            code=str(fields["code"]) if fields.get("code") else None,
            request_id=str(request_id) if request_id else None,
            attempts=attempts,
        )

    def _json(self, response: httpx2.Response, method: str, path: str) -> JSON:
        if response.status_code == 204 or not response.content:
            return {}
        try:
            body = response.json()
        except ValueError as exc:
            raise NeonAPIFailure(method, path, "answered with a body that is not JSON", status=200) from exc
        if not isinstance(body, dict):
            raise NeonAPIFailure(method, path, "answered with JSON that is not an object", status=200)
        return body

    # --- pagination and operations -----------------------------------------------------------------------------------

    async def paginate(
        self, path: str, key: str, *, params: Mapping[str, Any] | None = None, limit: int = 100
    ) -> list[JSON]:
        """Every item of a cursor-paginated list, following ``pagination.next`` (or ``pagination.cursor``).

        Stops at a short or empty page, a page without a cursor, or a cursor seen before.
        """
        query = {**(params or {}), "limit": limit}
        items: list[JSON] = []
        seen: set[str] = set()
        while True:
            body = await self.get(path, params=query)
            page = body.get(key)
            if not isinstance(page, list):
                raise NeonAPIFailure("GET", path, f"answered without a {key!r} list", status=200)
            items.extend(page)
            pagination = body.get("pagination")
            cursor = (pagination.get("next") or pagination.get("cursor")) if isinstance(pagination, dict) else None
            if len(page) < limit or not cursor or cursor in seen:
                return items
            seen.add(cursor)
            query["cursor"] = cursor

    async def wait_for_operations(
        self,
        project_id: str,
        operations: Sequence[Operation | Mapping[str, Any]],
        *,
        progress: Progress | None = None,
        poll_interval: float = 1.0,
        timeout: float = 300.0,  # noqa: ASYNC109 - a deadline that names the late operation, not a cancel scope
    ) -> list[Operation]:
        """Poll the operations until each has finished (or was skipped); return them in their final state.

        Polls start at a quarter of ``poll_interval`` and double up to it, so quick operations end quickly.
        ``progress(done, total, message)`` is called after every round. Raises ``OperationFailed`` (with Neon's error
        text) as soon as one fails, errs or is cancelled, and ``OperationTimeout`` after ``timeout`` seconds.
        """
        ops = [op if isinstance(op, Operation) else Operation.model_validate(op) for op in operations]
        deadline = self._clock() + timeout
        step = poll_interval / 4
        polled = False
        while True:
            for op in ops:
                if op.failed:
                    raise OperationFailed(op.id, op.action, op.status, op.error)
            pending = [index for index, op in enumerate(ops) if not op.succeeded]
            if progress is not None and (pending or polled):
                await progress(len(ops) - len(pending), len(ops), _describe(ops))
            if not pending:
                return ops
            now = self._clock()
            if now >= deadline:
                late = ops[pending[0]]
                raise OperationTimeout(late.id, late.action, late.status, timeout)
            await self._sleep(min(step, deadline - now))
            step = min(step * 2, poll_interval)
            for index in pending:
                ops[index] = await self.get_operation(project_id, ops[index].id)
            polled = True

    # --- typed helpers -----------------------------------------------------------------------------------------------

    async def get_operation(self, project_id: str, operation_id: str) -> Operation:
        body = await self.get(_path("projects", project_id, "operations", operation_id))
        return _one(Operation, body, "operation")

    async def list_projects(self, *, search: str | None = None, org_id: str | None = None) -> list[Project]:
        """The projects of one organisation (``org_id``), or those Neon lists without one; ``search`` matches part of
        a name or id (Neon filters)."""
        items = await self.paginate("/projects", "projects", params={"search": search, "org_id": org_id}, limit=400)
        return _unique(Project, items)

    async def list_account_projects(self, *, search: str | None = None) -> list[Project]:
        """The projects of every organisation the API key reaches.

        One listing without ``org_id`` first: Neon infers the organisation of an organisation's key, and local Neon
        lists every organisation. When Neon answers that ``org_id`` is required (a personal key of a member of
        several organisations), one listing per organisation.
        """
        try:
            return await self.list_projects(search=search)
        except NeonAPIFailure as exc:
            if exc.status != 400 or "org_id" not in exc.message:
                raise
        found: list[Project] = []
        for organization in await self.list_organizations():
            found += await self.list_projects(search=search, org_id=organization.id)
        return found

    async def list_shared_projects(self, *, search: str | None = None) -> list[Project]:
        """Projects other accounts share with this one."""
        items = await self.paginate("/projects/shared", "projects", params={"search": search}, limit=400)
        return _unique(Project, items)

    async def list_organizations(self) -> list[Organization]:
        """The organisations the API key's user belongs to."""
        return _many(Organization, await self.get("/users/me/organizations"), "organizations")

    async def create_project(
        self,
        *,
        name: str | None = None,
        region_id: str | None = None,
        pg_version: int | None = None,
        org_id: str | None = None,
        branch_name: str | None = None,
    ) -> CreatedProject:
        """Create a project with a root branch (named ``branch_name``, else Neon's default) and a read-write compute;
        the operations are not awaited."""
        project = _compact(name=name, region_id=region_id, pg_version=pg_version, org_id=org_id)
        if branch_name is not None:
            project["branch"] = {"name": branch_name}
        answer = await self.post("/projects", json={"project": project})
        uris = answer.get("connection_uris") or []
        first = uris[0].get("connection_uri") if uris and isinstance(uris[0], dict) else None
        return CreatedProject(
            _one(Project, answer, "project"),
            _one(Branch, answer, "branch"),
            _many(Endpoint, answer, "endpoints"),
            _many(Database, answer, "databases"),
            _many(Role, answer, "roles"),
            _many(Operation, answer, "operations"),
            SecretStr(first) if isinstance(first, str) and first else None,
        )

    async def delete_project(self, project_id: str) -> Project | None:
        """Delete a project with all its branches and computes; ``None`` when Neon says it was already gone (204)."""
        answer = await self.delete(_path("projects", project_id))
        return _one(Project, answer, "project") if answer.get("project") else None

    async def get_project(self, project_id: str) -> Project:
        return _one(Project, await self.get(_path("projects", project_id)), "project")

    async def list_branches(self, project_id: str, *, search: str | None = None) -> list[Branch]:
        """The project's branches; ``search`` matches part of a name or id (Neon filters)."""
        path = _path("projects", project_id, "branches")
        return _unique(Branch, await self.paginate(path, "branches", params={"search": search}))

    async def get_branch(self, project_id: str, branch_id: str) -> Branch:
        return _one(Branch, await self.get(_path("projects", project_id, "branches", branch_id)), "branch")

    async def create_branch(
        self,
        project_id: str,
        *,
        name: str | None = None,
        parent_id: str | None = None,
        parent_lsn: str | None = None,
        parent_timestamp: datetime | str | None = None,
        expires_at: datetime | str | None = None,
        protected: bool | None = None,
        with_compute: bool = True,
    ) -> CreatedBranch:
        """Create a branch (with a read-write compute unless ``with_compute`` is false); wait on its operations."""
        branch = _compact(
            name=name,
            parent_id=parent_id,
            parent_lsn=parent_lsn,
            parent_timestamp=_timestamp(parent_timestamp),
            expires_at=_timestamp(expires_at),
            protected=protected,
        )
        body: JSON = {"branch": branch}
        if with_compute:
            body["endpoints"] = [{"type": "read_write"}]
        answer = await self.post(_path("projects", project_id, "branches"), json=body)
        return CreatedBranch(
            _one(Branch, answer, "branch"), _many(Endpoint, answer, "endpoints"), _many(Operation, answer, "operations")
        )

    async def update_branch(
        self,
        project_id: str,
        branch_id: str,
        *,
        name: str | None = None,
        protected: bool | None = None,
        expires_at: datetime | str | None = None,
    ) -> tuple[Branch, list[Operation]]:
        fields = _compact(name=name, protected=protected, expires_at=_timestamp(expires_at))
        answer = await self.patch(_path("projects", project_id, "branches", branch_id), json={"branch": fields})
        return _one(Branch, answer, "branch"), _many(Operation, answer, "operations")

    async def delete_branch(self, project_id: str, branch_id: str) -> list[Operation]:
        """Delete a branch; an empty list when Neon says it was already gone (204)."""
        return _many(Operation, await self.delete(_path("projects", project_id, "branches", branch_id)), "operations")

    async def restore_branch(
        self,
        project_id: str,
        branch_id: str,
        *,
        source_branch_id: str,
        source_lsn: str | None = None,
        source_timestamp: datetime | str | None = None,
        preserve_under_name: str | None = None,
    ) -> tuple[Branch, list[Operation]]:
        """Restore (or, from its parent's head, reset) a branch; ``preserve_under_name`` keeps its previous state."""
        body = _compact(
            source_branch_id=source_branch_id,
            source_lsn=source_lsn,
            source_timestamp=_timestamp(source_timestamp),
            preserve_under_name=preserve_under_name,
        )
        answer = await self.post(_path("projects", project_id, "branches", branch_id, "restore"), json=body)
        return _one(Branch, answer, "branch"), _many(Operation, answer, "operations")

    async def list_endpoints(self, project_id: str, branch_id: str | None = None) -> list[Endpoint]:
        """The computes of a branch, or of the whole project when ``branch_id`` is ``None``."""
        parts = ("projects", project_id, "branches", branch_id) if branch_id else ("projects", project_id)
        return _many(Endpoint, await self.get(_path(*parts, "endpoints")), "endpoints")

    async def get_endpoint(self, project_id: str, endpoint_id: str) -> Endpoint:
        return _one(Endpoint, await self.get(_path("projects", project_id, "endpoints", endpoint_id)), "endpoint")

    async def start_endpoint(self, project_id: str, endpoint_id: str) -> tuple[Endpoint, list[Operation]]:
        answer = await self.post(_path("projects", project_id, "endpoints", endpoint_id, "start"))
        return _one(Endpoint, answer, "endpoint"), _many(Operation, answer, "operations")

    async def list_databases(self, project_id: str, branch_id: str) -> list[Database]:
        answer = await self.get(_path("projects", project_id, "branches", branch_id, "databases"))
        return _many(Database, answer, "databases")

    async def list_roles(self, project_id: str, branch_id: str) -> list[Role]:
        return _many(Role, await self.get(_path("projects", project_id, "branches", branch_id, "roles")), "roles")

    async def connection_uri(
        self,
        project_id: str,
        branch_id: str,
        database: str,
        role: str,
        *,
        pooled: bool = True,
        endpoint_id: str | None = None,
    ) -> SecretStr:
        """The connection URI (with the role's password, hence a ``SecretStr``) of a branch's read-write compute."""
        params = _compact(
            branch_id=branch_id, endpoint_id=endpoint_id, database_name=database, role_name=role, pooled=pooled
        )
        answer = await self.get(_path("projects", project_id, "connection_uri"), params=params)
        uri = answer.get("uri")
        if not isinstance(uri, str) or not uri:
            raise NeonAPIFailure("GET", _path("projects", project_id, "connection_uri"), "answered without a URI")
        return SecretStr(uri)

    async def reveal_password(self, project_id: str, branch_id: str, role: str) -> SecretStr:
        path = _path("projects", project_id, "branches", branch_id, "roles", role, "reveal_password")
        password = (await self.get(path)).get("password")
        if not isinstance(password, str):
            raise NeonAPIFailure("GET", path, "answered without a password")
        return SecretStr(password)

    async def compare_schema(self, project_id: str, branch_id: str, *, base_branch_id: str, database: str) -> str:
        """Neon's unified diff of ``database``'s schema from ``base_branch_id`` to ``branch_id`` (empty if equal)."""
        params = {"base_branch_id": base_branch_id, "db_name": database}
        answer = await self.get(_path("projects", project_id, "branches", branch_id, "compare_schema"), params=params)
        return str(answer.get("diff") or "")

    async def update_endpoint(
        self,
        project_id: str,
        endpoint_id: str,
        *,
        autoscaling_limit_min_cu: float | None = None,
        autoscaling_limit_max_cu: float | None = None,
        suspend_timeout_seconds: int | None = None,
    ) -> tuple[Endpoint, list[Operation]]:
        """Change a compute's autoscaling limits and suspend timeout (only the values given)."""
        fields = _compact(
            autoscaling_limit_min_cu=autoscaling_limit_min_cu,
            autoscaling_limit_max_cu=autoscaling_limit_max_cu,
            suspend_timeout_seconds=suspend_timeout_seconds,
        )
        answer = await self.patch(_path("projects", project_id, "endpoints", endpoint_id), json={"endpoint": fields})
        return _one(Endpoint, answer, "endpoint"), _many(Operation, answer, "operations")

    async def suspend_endpoint(self, project_id: str, endpoint_id: str) -> tuple[Endpoint, list[Operation]]:
        answer = await self.post(_path("projects", project_id, "endpoints", endpoint_id, "suspend"))
        return _one(Endpoint, answer, "endpoint"), _many(Operation, answer, "operations")

    async def restart_endpoint(self, project_id: str, endpoint_id: str) -> tuple[Endpoint, list[Operation]]:
        answer = await self.post(_path("projects", project_id, "endpoints", endpoint_id, "restart"))
        return _one(Endpoint, answer, "endpoint"), _many(Operation, answer, "operations")

    async def create_endpoint(
        self, project_id: str, branch_id: str, *, endpoint_type: str = "read_only"
    ) -> tuple[Endpoint, list[Operation]]:
        """Add a compute to a branch: ``read_only`` (a read replica) or ``read_write`` (a branch has one at most)."""
        body = {"endpoint": {"branch_id": branch_id, "type": endpoint_type}}
        answer = await self.post(_path("projects", project_id, "endpoints"), json=body)
        return _one(Endpoint, answer, "endpoint"), _many(Operation, answer, "operations")

    async def delete_endpoint(self, project_id: str, endpoint_id: str) -> list[Operation]:
        answer = await self.delete(_path("projects", project_id, "endpoints", endpoint_id))
        return _many(Operation, answer, "operations")

    async def list_operations(
        self, project_id: str, *, limit: int = 100, cursor: str | None = None
    ) -> tuple[list[Operation], str | None]:
        """One page of the project's operations, newest first, and the cursor of the next page (``None`` at the end)."""
        params = {"limit": limit, "cursor": cursor}
        answer = await self.get(_path("projects", project_id, "operations"), params=params)
        operations = _many(Operation, answer, "operations")
        pagination = answer.get("pagination")
        following = pagination.get("cursor") if isinstance(pagination, dict) else None
        more = isinstance(following, str) and bool(following) and len(operations) >= limit
        return operations, following if more else None


def _may_resend(exc: httpx2.HTTPError, method: str) -> bool:
    """Whether a request that raised ``exc`` may be sent again without risking doing its work twice."""
    return isinstance(exc, _NEVER_SENT) or (method in _IDEMPOTENT and isinstance(exc, _TRANSIENT))


def _query(params: Mapping[str, Any] | None) -> dict[str, str | int | float] | None:
    """Query parameters as Neon reads them: ``None`` dropped, booleans as ``true``/``false``."""
    if not params:
        return None
    return {
        key: ("true" if value else "false") if isinstance(value, bool) else value
        for key, value in params.items()
        if value is not None
    }


def _path(*segments: str) -> str:
    """An API path from raw segments (ids, database and role names), each percent-encoded."""
    return "/" + "/".join(quote(segment, safe="") for segment in segments)


def _compact(**fields: Any) -> JSON:
    return {key: value for key, value in fields.items() if value is not None}


def _timestamp(value: datetime | str | None) -> str | None:
    """RFC 3339 text for Neon (``Z`` for UTC); strings are passed through for Neon to judge."""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value


def _one(model: type[_M], body: JSON, key: str) -> _M:
    return model.model_validate(body.get(key))


def _many(model: type[_M], body: JSON, key: str) -> list[_M]:
    return [model.model_validate(item) for item in body.get(key) or []]


def _unique(model: type[_M], items: list[JSON]) -> list[_M]:
    """Items parsed in order, each id once (a list changing while it is paged can repeat an item)."""
    seen: set[object] = set()
    parsed = []
    for item in items:
        if item.get("id") in seen:
            continue
        seen.add(item.get("id"))
        parsed.append(model.model_validate(item))
    return parsed


def _describe(ops: Sequence[Operation]) -> str:
    return ", ".join(f"{op.action} {op.status}" for op in ops)
