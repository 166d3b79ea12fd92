"""Helpers for the local Neon tests: clients for local Neon in process (``ServiceAPI``) and over HTTP (``API``),
starting the daemon as a user would, and direct SQL on the branches' servers. Fixtures live in ``conftest.py``."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx2 as httpx
import pytest
from pydantic import BaseModel

from server.local_neon import LocalNeon, NeonAPIError
from server.local_neon.http import route_table
from server.neon.models import Branch, Database, Endpoint, Operation, Project, Role
from tests.local_neon.spec import SPEC_PATH, response_validator

P = "/projects/{project_id}"
B = P + "/branches/{branch_id}"
E = P + "/endpoints/{endpoint_id}"

ROUTES = route_table()
"""Service method → (HTTP method, path, status): the HTTP layer's own route table, paths named as in the spec."""


_MODELS: dict[str, type[BaseModel]] = {
    "project": Project,
    "branch": Branch,
    "endpoint": Endpoint,
    "operation": Operation,
    "database": Database,
    "role": Role,
}


def check_models(body: dict[str, Any]) -> None:
    """Every resource in an answer parses with the project's own models (what the Neon client reads), always."""
    for key, model in _MODELS.items():
        if isinstance(body.get(key), dict):
            model.model_validate(body[key])
        for item in body.get(key + "s") or []:
            model.model_validate(item)


@dataclass
class ServiceAPI:
    """Calls LocalNeon as the HTTP layer does and checks every answer against the spec's schema for its route."""

    neon: LocalNeon

    http: httpx.AsyncClient | None = None
    """When set, every call goes over real HTTP to local Neon's API (the same routes a Neon client uses)."""

    async def __call__(self, method: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        http_method, path, status = ROUTES[method]
        if self.http is not None:
            body = await self._over_http(http_method, path, status, args, kwargs)
        else:
            answer = await self.neon.handler(method)(*args, **kwargs)
            assert answer is not None, f"{method} answered 204 No Content"
            body = answer
        if SPEC_PATH.exists():
            response_validator(http_method, path, status)(body)
        check_models(body)
        return body

    async def _over_http(
        self, verb: str, template: str, status: int, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        """Fill the path's ids from the positional arguments in order; a further one is the JSON body; keywords
        are query parameters. A refusal is raised as the service raises it, so tests read the same either way."""
        assert self.http is not None
        values = list(args)
        path = template
        while "{" in path:
            start, end = path.index("{"), path.index("}")
            path = path[:start] + str(values.pop(0)) + path[end + 1 :]
        body = values.pop(0) if values and verb in ("POST", "PATCH") else None
        assert not values, f"unused arguments {values} for {verb} {template}"
        query = {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in kwargs.items() if v is not None}
        response = await self.http.request(verb, path, json=body, params=query)
        answer: dict[str, Any] = response.json()
        if response.status_code != status:
            raise NeonAPIError(response.status_code, answer.get("message", ""), answer.get("code", ""))
        return answer

    async def list_endpoints(self, project_id: str, branch_id: str | None = None) -> dict[str, Any]:
        """The endpoints of the project, or of one of its branches."""
        if branch_id is None:
            return await self("list_endpoints", project_id)
        return await self("list_branch_endpoints", project_id, branch_id)

    async def gone(self, method: str, *args: Any) -> None:
        """Call a delete and expect Neon's answer for something already gone: 204 with no body (``None`` in process),
        a status the spec documents for the route."""
        http_method, path, _ = ROUTES[method]
        if SPEC_PATH.exists():
            assert "204" in _spec_responses(http_method, path), f"the spec has no 204 for {http_method} {path}"
        if self.http is None:
            assert await self.neon.handler(method)(*args) is None
            return
        target = path
        values = list(args)
        while "{" in target:
            start, end = target.index("{"), target.index("}")
            target = target[:start] + str(values.pop(0)) + target[end + 1 :]
        response = await self.http.request(http_method, target)
        assert response.status_code == 204 and response.content == b"", (response.status_code, response.text)

    async def refused(self, status: int, method: str, *args: Any, **kwargs: Any) -> str:
        """Call and expect a refusal with ``status``; returns its message."""
        with pytest.raises(NeonAPIError) as info:
            await self(method, *args, **kwargs)
        assert info.value.status == status, info.value
        return info.value.message

    async def wait(self, project_id: str, operations: list[dict[str, Any]], within: float = 60) -> None:
        """Poll the operations until they are finished, as a Neon client does."""
        deadline = time.monotonic() + within
        for operation in operations:
            while True:
                current = (await self("get_operation", project_id, operation["id"]))["operation"]
                if current["status"] == "finished":
                    break
                assert current["status"] not in ("failed", "error", "cancelled"), current
                assert time.monotonic() < deadline, f"{current['action']} still {current['status']}"
                await asyncio.sleep(0.02)

    async def settle(self, project_id: str, operations: list[dict[str, Any]], within: float = 60) -> list[str]:
        """Wait until the operations end however they end; their final statuses."""
        deadline = time.monotonic() + within
        statuses = []
        for operation in operations:
            while True:
                current = (await self("get_operation", project_id, operation["id"]))["operation"]
                if current["status"] not in ("scheduling", "running"):
                    statuses.append(current["status"])
                    break
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
        return statuses


def _spec_responses(method: str, path: str) -> dict[str, Any]:
    import json

    responses: dict[str, Any] = json.loads(SPEC_PATH.read_text())["paths"][path][method.lower()]["responses"]
    return responses


def scratch_dir(prefix: str) -> Path:
    """A temporary directory the servers' user can traverse (pytest's tmp_path is 0700, closed to nobody)."""
    base = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        base.chmod(0o711)
    return base


async def fetch(uri: str, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(uri)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


async def execute(uri: str, script: str) -> None:
    conn = await asyncpg.connect(uri)
    try:
        await conn.execute(script)
    finally:
        await conn.close()


def ids(project: dict[str, Any]) -> tuple[str, str]:
    return project["project"]["id"], project["branch"]["id"]


async def uri_of(
    api: ServiceAPI, project_id: str, branch_id: str, *, role: str = "neondb_owner", db: str = "neondb"
) -> str:
    body = await api("connection_uri", project_id, database_name=db, role_name=role, branch_id=branch_id)
    uri: str = body["uri"]
    return uri


async def new_branch(api: ServiceAPI, project_id: str, **branch: Any) -> dict[str, Any]:
    """Create a branch with a read-write endpoint and wait until it is ready."""
    body = await api("create_branch", project_id, {"branch": branch, "endpoints": [{"type": "read_write"}]})
    await api.wait(project_id, body["operations"])
    return body


async def pooled_uri(api: ServiceAPI, project_id: str, branch_id: str, role: str = "neondb_owner") -> str:
    body = await api(
        "connection_uri", project_id, database_name="neondb", role_name=role, branch_id=branch_id, pooled=True
    )
    uri: str = body["uri"]
    return uri


async def connect(uri: str) -> asyncpg.Connection:
    """A connection as one through a transaction pooler must be made: no cached (named) prepared statements."""
    return await asyncpg.connect(uri, statement_cache_size=0)


async def fetch_pooled(uri: str, query: str) -> list[asyncpg.Record]:
    conn = await connect(uri)
    try:
        return await conn.fetch(query)
    finally:
        await conn.close()


async def wait_state(
    api: ServiceAPI, project_id: str, endpoint_id: str, state: str, within: float = 15
) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        endpoint: dict[str, Any] = (await api("get_endpoint", project_id, endpoint_id))["endpoint"]
        if endpoint["current_state"] == state and "pending_state" not in endpoint:
            return endpoint
        assert time.monotonic() < deadline, f"endpoint still {endpoint['current_state']}"
        await asyncio.sleep(0.05)


# --- over HTTP ------------------------------------------------------------------------------------------------------

EXE = str(Path(sys.executable).parent / "neon-mcp")


class API:
    """A small client for the tests: every answer is checked against the spec for its route and status."""

    def __init__(self, host: str, key: str) -> None:
        self.host = host
        self.key = key
        self.http = httpx.Client(base_url=host, headers={"Authorization": f"Bearer {key}"}, timeout=60)

    def call(self, method: str, path: str, spec_path: str | None = None, *, expect: int = 200, **kw: Any) -> Any:
        response = self.http.request(method, path, **kw)
        assert response.status_code == expect, (method, path, response.status_code, response.text)
        body = response.json()
        if spec_path is not None and expect < 400:
            response_validator(method, spec_path, expect)(body)
        if expect < 400 and isinstance(body, dict):
            check_models(body)
        if expect >= 400:
            assert set(body) >= {"code", "message", "request_id"}, body
        return body

    def wait(self, project_id: str, operations: list[dict[str, Any]], timeout: float = 60) -> None:
        """Poll the operations until they are finished (as a Neon client does)."""
        deadline = time.monotonic() + timeout
        for operation in operations:
            while True:
                body = self.call(
                    "GET",
                    f"/projects/{project_id}/operations/{operation['id']}",
                    "/projects/{project_id}/operations/{operation_id}",
                )
                status = body["operation"]["status"]
                if status == "finished":
                    break
                assert status not in ("failed", "error", "cancelled"), body
                assert time.monotonic() < deadline, f"operation {operation['action']} still {status}"
                time.sleep(0.1)


def env_for(local_home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEON_MCP_")}
    env["NEON_MCP_HOME"] = str(local_home)
    return env


def start_local_neon(local_home: Path) -> tuple[str, str]:
    done = subprocess.run(
        [EXE, "local", "start"], env=env_for(local_home), capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = dict(line.split("=", 1) for line in done.stdout.strip().splitlines())
    return lines["NEON_API_HOST"], lines["NEON_API_KEY"]


def stop_local_neon(local_home: Path) -> None:
    subprocess.run([EXE, "local", "stop"], env=env_for(local_home), capture_output=True, timeout=120, check=False)


def running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not: a container's init may never reap the daemons' remains)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
