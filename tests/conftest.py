"""Session fixtures shared by the whole suite: the anyio backend and one throwaway PostgreSQL cluster."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import pytest

from server.local_neon.clusters import Cluster, find_pg_bindir
from server.settings import Settings

if TYPE_CHECKING:
    from tests.local_neon.helpers import API

SESSION_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_preload_libraries": "pg_stat_statements",
    "max_connections": "200",
    "log_min_messages": "warning",
}


def pytest_configure(config: pytest.Config) -> None:
    """The tool catalog of the whole run in a directory of its own, never the user's cache: the first server of each
    offer builds its tools and writes it, the others serve it as a user's server does. Set as ``XDG_CACHE_HOME``,
    which the default cache directory follows, so that servers started with an environment cleared of ``NEON_*``
    use it too."""
    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="neon-mcp-test-cache-")


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(os.environ.pop("XDG_CACHE_HOME", ""), ignore_errors=True)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """One running cluster for the whole run; a missing PostgreSQL fails the run (ClusterError), it never skips."""
    explicit = os.environ.get("NEON_MCP_PG_BINDIR")
    bindir = find_pg_bindir(Path(explicit) if explicit else None)
    base = Path(tempfile.mkdtemp(prefix="neon-mcp-test-"))
    if os.geteuid() == 0:
        base.chmod(0o711)  # as root the server runs as nobody, which must traverse the base dir
    cluster = Cluster(base / "main", bindir=bindir)
    try:
        cluster.init(settings=SESSION_SETTINGS)
        cluster.start()
        yield cluster
    finally:
        cluster.remove()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(pg_cluster: Cluster) -> str:
    """Superuser URL of database ``postgres`` on the session cluster."""
    return pg_cluster.dsn()


# --- databases, settings and MCP clients -----------------------------------------------------------------------------


@asynccontextmanager
async def _new_database(cluster: Cluster, prefix: str) -> AsyncIterator[str]:
    """A new, empty database on ``cluster`` (dropped afterwards); yields its superuser URL."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(cluster.dsn())
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield cluster.dsn(name)
    admin = await asyncpg.connect(cluster.dsn())
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def fresh_db(pg_cluster: Cluster) -> AsyncIterator[str]:
    """A new, empty database for one test (dropped afterwards); yields its superuser URL."""
    async with _new_database(pg_cluster, "t") as url:
        yield url


@pytest.fixture
async def state_url(pg_cluster: Cluster) -> AsyncIterator[str]:
    """A new, empty database for one test's state store (``NEON_MCP_STATE_URL``; the server creates its schema)."""
    async with _new_database(pg_cluster, "state") as url:
        yield url


@pytest.fixture
def make_settings(fresh_db: str, tmp_path: Path) -> Callable[..., Settings]:
    """Settings for the test's fresh database, with the data directory in tmp_path; keywords override."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {"database_url": fresh_db, "home": tmp_path / "home", "access_mode": "full"}
        values.update(overrides)
        return Settings(**values)

    return make


# --- local Neon, started like a user would (HTTP) ---------------------------------------------------------------


@pytest.fixture(scope="session")
def local_home() -> Iterator[Path]:
    from tests.local_neon.helpers import stop_local_neon

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
    from tests.local_neon.helpers import API, start_local_neon

    host, key = start_local_neon(local_home)
    client = API(host, key)
    yield client
    client.http.close()
