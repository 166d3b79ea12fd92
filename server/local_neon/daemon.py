"""Running local Neon as a process: ``neon-mcp local run`` (foreground) and ``local start|stop|status``.

``start`` launches ``run`` in the background and prints shell-ready lines::

    NEON_API_HOST=http://127.0.0.1:PORT/api/v2
    NEON_API_KEY=…

The API key is generated once and kept in the data directory (mode 0600), so it stays valid across restarts. The
running server records its pid, port, front door port, pooler (PgBouncer, or none) and clusters root in
``server.json`` next to it; ``stop`` and ``status`` read that file, and ``status`` reports the disk the data directory
and the clusters use.

Where the branches' clusters live: in the data directory, unless PostgreSQL (run as ``nobody`` when we are root)
cannot reach it. A data directory that is closed to others only by its own mode (``mktemp -d``) is opened for search
(``o+x``, no listing) so that its clusters stay inside it and go with it; one behind a parent that is closed (the XDG
directory under /root) gets ``/var/tmp/neon-mcp-clusters-<hash>``. Such a clusters root whose data directory is gone
serves nothing any more: every ``local`` command removes those (``sweep_orphans``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import LocalNeonDidNotStart

__all__ = ["LocalNeonPaths", "disk_used", "ensure_running", "local_command", "sweep_orphans"]

_START_TIMEOUT = 60.0


@dataclass(frozen=True)
class LocalNeonPaths:
    """Where local Neon keeps its files under the data directory."""

    root: Path

    @property
    def token_file(self) -> Path:
        return self.root / "api-key"

    @property
    def server_file(self) -> Path:
        return self.root / "server.json"

    @property
    def log_file(self) -> Path:
        return self.root / "local-neon.log"

    def token(self) -> str:
        """The API key, created on first use (0600)."""
        self.root.mkdir(parents=True, exist_ok=True)
        if not self.token_file.exists():
            fd = os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write("neon-local-" + secrets.token_urlsafe(24))
        return self.token_file.read_text().strip()

    def running(self) -> dict[str, Any] | None:
        """The running server's pid and port, or None when none runs."""
        try:
            info: dict[str, Any] = json.loads(self.server_file.read_text())
        except (OSError, ValueError):
            return None
        try:
            os.kill(int(info["pid"]), 0)
        except (OSError, KeyError, ValueError):
            return None
        return info


def _env_lines(port: int, token: str) -> str:
    return f"NEON_API_HOST={_host(port)}\nNEON_API_KEY={token}"


_FALLBACK_PARENT = Path("/var/tmp")  # noqa: S108 (our own directories in it, ownership checked)
_FALLBACK_PREFIX = "neon-mcp-clusters-"


def default_clusters_root(data_dir: Path) -> Path | None:
    """None (the service's default, under the data directory) when PostgreSQL, run as ``nobody`` because we are root,
    can reach it, after opening our own data directories for search if only their modes closed them; otherwise a
    directory of our own in /var/tmp, named after the data directory so two homes never share one."""
    from ..errors import ClusterError
    from .clusters import ensure_traversable

    try:
        ensure_traversable(data_dir.parent.parent)  # everything above the home, which is not ours to change
    except ClusterError:
        pass
    else:
        data_dir.mkdir(parents=True, exist_ok=True)
        for directory in (data_dir.parent, data_dir):
            if directory.stat().st_uid == os.geteuid():
                directory.chmod(stat.S_IMODE(directory.stat().st_mode) | stat.S_IXOTH)
        with contextlib.suppress(ClusterError):
            ensure_traversable(data_dir)
            return None
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12]
    root = _FALLBACK_PARENT / f"{_FALLBACK_PREFIX}{digest}"
    root.mkdir(mode=0o711, exist_ok=True)
    if root.is_symlink() or root.lstat().st_uid != os.geteuid():
        raise ClusterError(f"{root} exists but is not a directory of ours; remove it or set NEON_MCP_LOCAL_CLUSTERS")
    root.chmod(0o711)  # our own directory: nobody must traverse it
    return root


def sweep_orphans() -> list[Path]:
    """Remove the /var/tmp clusters roots of ours whose data directory no longer exists and on which no server runs
    (nothing can use them again); returns those removed."""
    from .clusters import HOME_MARKER

    removed = []
    for root in sorted(_FALLBACK_PARENT.glob(_FALLBACK_PREFIX + "*")):
        try:
            if root.is_symlink() or root.lstat().st_uid != os.geteuid():
                continue
            home = Path((root / HOME_MARKER).read_text(encoding="utf-8").strip())
        except OSError:
            continue
        if home.exists() or any(_alive(pid_file) for pid_file in root.glob("*/data/postmaster.pid")):
            continue
        shutil.rmtree(root, ignore_errors=True)
        removed.append(root)
    return removed


def _alive(pid_file: Path) -> bool:
    try:
        os.kill(int(pid_file.read_text().split()[0]), 0)
    except (OSError, ValueError, IndexError):
        return False
    return True


def disk_used(*paths: Path) -> int:
    """Bytes the files under ``paths`` take on disk (each file once, unreadable parts skipped)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for path in paths:
        for directory, _, files in os.walk(path):
            for name in [".", *files]:
                with contextlib.suppress(OSError):
                    st = os.lstat(os.path.join(directory, name))
                    if (st.st_dev, st.st_ino) not in seen:
                        seen.add((st.st_dev, st.st_ino))
                        total += st.st_blocks * 512
    return total


def run_foreground(home: Path, *, port: int, clusters_root: Path | None, bindir: Path | None, history: int) -> int:
    """Serve local Neon until SIGTERM/SIGINT; records pid and port while it runs."""
    import anyio
    import uvicorn

    from ..transport.listening import bind
    from .http import Faults, create_app
    from .service import LocalNeon

    paths = LocalNeonPaths(home / "local-neon")
    token = paths.token()
    clusters_root = clusters_root or default_clusters_root(paths.root)
    service = LocalNeon(paths.root, clusters_root=clusters_root, bindir=bindir, history_seconds=history)
    app = create_app(service, token=token, faults=Faults.parse(os.environ.get("NEON_MCP_LOCAL_FAULTS")))

    listener = bind("127.0.0.1", port)  # loopback only
    bound = listener.getsockname()[1]

    async def main() -> None:
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        # Once it has stopped serving, uvicorn restores the handlers it found and raises the signal that stopped it
        # again: with the default ones that would kill this process before ``close()`` stops the servers and poolers.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, server.handle_exit)
        await service.open()
        try:
            info = {
                "pid": os.getpid(),
                "port": bound,
                "started_at": time.time(),
                "pooler": service.pooler_status(),
                "front_door_port": service.front_door_port,
                "clusters": str(service.clusters_root),
            }
            paths.server_file.write_text(json.dumps(info))
            print(_env_lines(bound, token), flush=True)
            await server.serve(sockets=[listener])  # returns on SIGTERM or SIGINT
        finally:
            with contextlib.suppress(FileNotFoundError):
                paths.server_file.unlink()
            await service.close()

    anyio.run(main, backend_options={"use_uvloop": _has_uvloop()})
    return 0


def ensure_running(home: Path, argv_extra: Sequence[str] = ()) -> tuple[str, str]:
    """Attach to the local Neon of ``home``, starting it in the background first if none runs.

    Returns ``(NEON_API_HOST, NEON_API_KEY)``; raises ``LocalNeonDidNotStart``.
    """
    paths = LocalNeonPaths(home / "local-neon")
    token = paths.token()
    info = paths.running()
    if info is not None:
        return _host(int(info["port"])), token
    paths.root.mkdir(parents=True, exist_ok=True)
    with paths.log_file.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "server", "local", "run", *argv_extra],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            env={**os.environ, "NEON_MCP_HOME": str(home)},
        )
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        info = paths.running()
        if info is not None and int(info["pid"]) == process.pid:
            return _host(int(info["port"])), token
        if process.poll() is not None:
            break
        time.sleep(0.1)
    tail = paths.log_file.read_text(errors="replace").splitlines()[-15:] if paths.log_file.exists() else []
    raise LocalNeonDidNotStart("local Neon did not start:\n" + "\n".join(tail))


def _host(port: int) -> str:
    return f"http://127.0.0.1:{port}/api/v2"


def _start(home: Path, argv_extra: list[str]) -> int:
    try:
        host, token = ensure_running(home, argv_extra)
    except LocalNeonDidNotStart as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"NEON_API_HOST={host}\nNEON_API_KEY={token}")
    return 0


def _stop(home: Path) -> int:
    paths = LocalNeonPaths(home / "local-neon")
    info = paths.running()
    if info is None:
        print("local Neon is not running")
        return 0
    pid = int(info["pid"])
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            print("local Neon stopped")
            return 0
        time.sleep(0.1)
    print(f"local Neon (pid {pid}) did not stop within 30 s", file=sys.stderr)
    return 1


def _status(home: Path) -> int:
    paths = LocalNeonPaths(home / "local-neon")
    info = paths.running()
    if info is None:
        print(f"local Neon is not running (data directory {paths.root})")
        return 3
    print(f"local Neon is running: pid {info['pid']}, http://127.0.0.1:{info['port']}/api/v2, data {paths.root}")
    if "front_door_port" in info:
        print(f"front door (PostgreSQL with TLS, every endpoint): 127.0.0.1:{info['front_door_port']}")
    if "pooler" in info:
        print(info["pooler"])
    clusters = Path(info.get("clusters") or paths.root / "clusters")
    places = [paths.root] if clusters.is_relative_to(paths.root) else [paths.root, clusters]
    where = f"data directory {paths.root}" + ("" if len(places) == 1 else f", clusters {clusters}")
    print(f"disk used: {disk_used(*places) / 2**20:.1f} MiB ({where})")
    print(_env_lines(int(info["port"]), paths.token()))
    return 0


def local_command(
    action: str, home: Path, *, port: int, clusters_root: Path | None, bindir: Path | None, history: int
) -> int:
    """``neon-mcp local ACTION``; returns the exit code. Every action first sweeps away the clusters of data
    directories that are gone."""
    sweep_orphans()
    if action == "run":
        return run_foreground(home, port=port, clusters_root=clusters_root, bindir=bindir, history=history)
    if action == "start":
        return _start(home, ["--local-port", str(port)])
    if action == "stop":
        return _stop(home)
    return _status(home)


def _has_uvloop() -> bool:
    """Whether uvloop is installed (a dependency, except on Windows): the daemon runs on it when it is, because the
    front door relays every query's bytes and uvloop's transports cut its cost per round trip by about a third."""
    import importlib.util

    return importlib.util.find_spec("uvloop") is not None
