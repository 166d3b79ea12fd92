"""Fixtures for local Neon tests: one local Neon daemon for the whole session, started like a user would."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.local_neon.spec import response_validator

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


@pytest.fixture(scope="session")
def local_home() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="neon-mcp-local-"))
    if os.geteuid() == 0:
        base.chmod(0o711)  # the branches' PostgreSQL runs as nobody
    try:
        yield base
    finally:
        stop_local_neon(base)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def neon_api(local_home: Path) -> Iterator[API]:
    host, key = start_local_neon(local_home)
    client = API(host, key)
    yield client
    client.http.close()


@pytest.fixture(scope="session")
def neon_project(neon_api: API) -> dict[str, Any]:
    body = neon_api.call("POST", "/projects", "/projects", expect=201, json={"project": {"name": "shop"}})
    neon_api.wait(body["project"]["id"], body["operations"])
    return body
