"""Fixtures for the Neon-mode server: the session's local Neon daemon (real HTTP), one project for these tests, settings
that point the server at it, a count of the API requests local Neon received, and fault injection."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from server.settings import Settings
from tests.local_neon.helpers import API

SEED = """
CREATE SCHEMA auslex;
CREATE TABLE auslex.users (id int PRIMARY KEY, name text NOT NULL);
INSERT INTO auslex.users SELECT g, 'user ' || g FROM generate_series(1, 3) g;
"""


class NeonTestProject:
    """The project the Neon-mode tests share, and helpers to make throwaway branches in it."""

    def __init__(self, api: API, project_id: str, uri: str) -> None:
        self.api = api
        self.id = project_id
        self.uri = uri
        self.made: list[str] = []

    def branches(self) -> list[dict[str, Any]]:
        body = self.api.call("GET", f"/projects/{self.id}/branches")
        return list(body["branches"])

    def branch(self, name: str) -> dict[str, Any] | None:
        return next((b for b in self.branches() if b["name"] == name), None)

    def create_branch(self, name: str, *, parent: str | None = None, **fields: Any) -> dict[str, Any]:
        """A branch with a read-write compute, once its operations finished."""
        options: dict[str, Any] = {"name": name, **fields}
        if parent is not None:
            options["parent_id"] = parent
        body = self.api.call(
            "POST",
            f"/projects/{self.id}/branches",
            expect=201,
            json={"branch": options, "endpoints": [{"type": "read_write"}]},
        )
        self.api.wait(self.id, body["operations"])
        return dict(body["branch"])

    def delete_branch(self, name: str) -> None:
        found = self.branch(name)
        if found is None:
            return
        for child in self.branches():
            if child.get("parent_id") == found["id"]:
                self.delete_branch(child["name"])
        body = self.api.http.delete(f"/projects/{self.id}/branches/{found['id']}")
        if body.status_code == 200:
            self.api.wait(self.id, body.json()["operations"])

    def uri_of(self, branch_id: str, *, pooled: bool = False) -> str:
        body = self.api.call(
            "GET",
            f"/projects/{self.id}/connection_uri",
            params={
                "branch_id": branch_id,
                "database_name": "neondb",
                "role_name": "neondb_owner",
                "pooled": "true" if pooled else "false",
            },
        )
        return str(body["uri"])


@pytest.fixture(scope="session")
def neon_test_project(neon_api: API) -> Iterator[NeonTestProject]:
    import asyncio

    import asyncpg

    body = neon_api.call("POST", "/projects", expect=201, json={"project": {"name": "agents"}})
    project_id = body["project"]["id"]
    neon_api.wait(project_id, body["operations"])
    uri = body["connection_uris"][0]["connection_uri"]

    async def seed() -> None:
        conn = await asyncpg.connect(uri)
        try:
            await conn.execute(SEED)
        finally:
            await conn.close()

    asyncio.run(seed())
    yield NeonTestProject(neon_api, project_id, uri)
    neon_api.http.delete(f"/projects/{project_id}")


@pytest.fixture
def project(neon_test_project: NeonTestProject) -> Iterator[NeonTestProject]:
    """The shared project; branches a test made through ``create_branch`` are deleted after it."""
    before = {b["name"] for b in neon_test_project.branches()}
    yield neon_test_project
    for branch in neon_test_project.branches():
        if branch["name"] not in before and not branch.get("default"):
            neon_test_project.delete_branch(branch["name"])


@pytest.fixture
def protected_branch(project: NeonTestProject) -> Iterator[Callable[[str], dict[str, Any]]]:
    """Makes branches Neon marks protected. Afterwards every protected branch the test left (those it made, and any a
    tool renamed or marked) is unprotected, so that the ``project`` fixture can delete it."""
    made: list[str] = []

    def make(name: str) -> dict[str, Any]:
        branch = project.create_branch(name, protected=True)
        made.append(branch["id"])
        return branch

    yield make
    for branch in project.branches():
        if branch["id"] in made or (branch.get("protected") and not branch.get("default")):
            body = project.api.call(
                "PATCH", f"/projects/{project.id}/branches/{branch['id']}", json={"branch": {"protected": False}}
            )
            project.api.wait(project.id, body["operations"])


@pytest.fixture
def neon_settings(neon_api: API, neon_test_project: NeonTestProject, tmp_path: Path) -> Callable[..., Settings]:
    """Settings of a server on the test project through local Neon's HTTP API; keywords override."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "neon_api_key": neon_api.key,
            "neon_api_host": neon_api.host,
            "neon_project_id": neon_test_project.id,
            "home": tmp_path / "home",
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def api_requests(neon_api: API) -> Callable[[], int]:
    """The number of API requests local Neon has received so far (retries and injected failures included)."""

    def count() -> int:
        response = neon_api.http.get(neon_api.host.replace("/api/v2", "") + "/admin/requests")
        assert response.status_code == 200, response.text
        return int(response.json()["total"])

    return count


@contextmanager
def injected_faults(api: API, **rates: float) -> Iterator[None]:
    """Local Neon answers this share of requests with 429 (Retry-After 0), 423 or 503 while the block runs."""
    admin = api.host.replace("/api/v2", "") + "/admin/faults"
    settings = {"429": 0.2, "423": 0.15, "503": 0.1, "retry_after": 0, "seed": int.from_bytes(os.urandom(2), "big")}
    settings.update(rates)
    response = api.http.post(admin, json=settings)
    assert response.status_code == 200, response.text
    try:
        yield
    finally:
        api.http.post(admin, json={"429": 0, "423": 0, "503": 0, "retry_after": 1})
