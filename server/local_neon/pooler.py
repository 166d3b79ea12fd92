"""PgBouncer in front of endpoints: one per running endpoint, in transaction mode, as Neon runs it.

Where a ``pgbouncer`` binary is found (on PATH or ``/usr/sbin``, as Debian's package installs it), every running
endpoint gets its own PgBouncer on its own loopback port, and pooled connection URIs point there; without one,
``Poolers.available`` is false and pooled URIs reach the endpoints directly. Each PgBouncer is a daemon of its own
(``pgbouncer -d``), run as the servers' user (``nobody`` when we are root), with its files in
``<clusters root>/pooler-<endpoint id>/``: ``pgbouncer.ini``, ``userlist.txt``, ``pgbouncer.pid``, ``pgbouncer.log``.
A daemon outlives the process that started it, so a local Neon closed with its endpoints left running, or one that
crashed, finds its poolers by their pid files and adopts them.

Authentication: clients log in with SCRAM; PgBouncer looks the role's SCRAM secret up in the server
(``auth_user``/``auth_query`` on ``pg_shadow``, as the endpoint's superuser, whose password alone is in
``userlist.txt``) and logs in to the server with the client's own SCRAM proof. Roles created or re-keyed later,
through the API or in SQL, are thus known at once, with no file to keep in sync.

Pooled server connections close after ``server_idle_timeout`` (10 s): the housekeeping loop counts them as clients
of the endpoint, so an endpoint used through its pooler is suspended at most that much later than one used directly.
Failures are ``ClusterError``; the blocking work runs in worker threads.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import re
import shutil
import signal
import socket
import time
from pathlib import Path

from ..errors import ClusterError
from .clusters import free_port, run_as_server_user, run_as_user

__all__ = ["POOL_MODE", "Poolers", "find_pgbouncer"]

POOL_MODE = "transaction"
_DEBIAN_BINARY = Path("/usr/sbin/pgbouncer")
_DIR_PREFIX = "pooler-"
_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 10.0
_PORT_RETRIES = 3
_VERSION = re.compile(r"PgBouncer (\d+)\.(\d+)(?:\.(\d+))?")
_PREPARED_STATEMENTS_SINCE = (1, 21)  # protocol-level prepared statements in transaction mode


def find_pgbouncer() -> Path | None:
    """The ``pgbouncer`` binary: on PATH, else Debian's ``/usr/sbin/pgbouncer`` (not on a non-root PATH); or None."""
    if found := shutil.which("pgbouncer"):
        return Path(found)
    if _DEBIAN_BINARY.is_file() and os.access(_DEBIAN_BINARY, os.X_OK):
        return _DEBIAN_BINARY
    return None


def _quote_ini(value: str) -> str:
    if any(c in value for c in "\n\r\0;#"):
        raise ClusterError(f"Invalid PgBouncer setting value {value!r}.")
    return value


def _userlist_line(user: str, password: str) -> str:
    return f'"{user.replace(chr(34), chr(34) * 2)}" "{password.replace(chr(34), chr(34) * 2)}"\n'


class Poolers:
    """The PgBouncers of the endpoints, with their directories under ``root``.

    ``binary`` is the ``pgbouncer`` to run (None: no pooler; every method but ``discard`` and ``sweep`` is then a
    no-op or an error). ``host`` is the loopback address both the poolers and the servers listen on; ``auth_user``
    is the servers' superuser, used to look roles up.
    """

    def __init__(self, root: Path, *, binary: Path | None, host: str, auth_user: str) -> None:
        self._root = root
        self._binary = binary
        self._host = host
        self._auth_user = auth_user
        self._version: tuple[int, ...] | None = None
        self._locks: collections.defaultdict[str, asyncio.Lock] = collections.defaultdict(asyncio.Lock)

    @property
    def available(self) -> bool:
        return self._binary is not None

    def describe(self) -> str:
        """One line for ``neon-mcp local status``: which pooler serves pooled URIs, or that none does."""
        if self._binary is None:
            return "pooled connections: no pgbouncer found, pooled URIs reach the endpoints directly"
        version = ".".join(map(str, self.version()))
        return f"pooled connections: PgBouncer {version} ({self._binary}) in {POOL_MODE} mode before each endpoint"

    def version(self) -> tuple[int, ...]:
        """The binary's version, e.g. ``(1, 18, 0)``; raises ``ClusterError`` if it cannot be read."""
        if self._version is None:
            if self._binary is None:
                raise ClusterError("No pgbouncer binary.")
            out = run_as_server_user([self._binary, "--version"], timeout=30, what="pgbouncer --version").stdout
            if not (match := _VERSION.search(out)):
                raise ClusterError(f"Cannot read the PgBouncer version from {out.strip()!r}.")
            self._version = tuple(int(part) for part in match.groups() if part is not None)
        return self._version

    def directory(self, endpoint_id: str) -> Path:
        return self._root / f"{_DIR_PREFIX}{endpoint_id}"

    async def start(self, endpoint_id: str, *, port: int, server_port: int, password: str) -> int:
        """Run the endpoint's PgBouncer on ``port`` in front of the server on ``server_port`` (adopting one that
        runs with the same configuration, restarting one that runs with another). ``password`` is the auth user's.

        Returns the port it listens on: ``port``, or a new free one if ``port`` was taken. Raises ``ClusterError``
        (with the end of PgBouncer's log) if it does not come up.
        """
        async with self._locks[endpoint_id]:
            return await asyncio.to_thread(self._start, endpoint_id, port, server_port, password)

    async def stop(self, endpoint_id: str) -> None:
        """Stop the endpoint's PgBouncer, if one runs (its clients are disconnected)."""
        async with self._locks[endpoint_id]:
            await asyncio.to_thread(self._stop, self.directory(endpoint_id))

    async def discard(self, endpoint_id: str) -> None:
        """Stop the endpoint's PgBouncer and delete its directory (the endpoint is being deleted)."""
        async with self._locks[endpoint_id]:
            await asyncio.to_thread(self._discard, self.directory(endpoint_id))
        self._locks.pop(endpoint_id, None)

    async def stop_all(self) -> None:
        """Stop every PgBouncer under the root."""
        for directory in self._directories():
            await self.stop(directory.name.removeprefix(_DIR_PREFIX))

    async def sweep(self, *, running: set[str], known: set[str]) -> None:
        """After a restart: stop the PgBouncers of endpoints not in ``running``, delete the directories of
        endpoints not in ``known``."""
        for directory in self._directories():
            endpoint_id = directory.name.removeprefix(_DIR_PREFIX)
            if endpoint_id not in known:
                await self.discard(endpoint_id)
            elif endpoint_id not in running:
                await self.stop(endpoint_id)

    # --- the work (blocking) -------------------------------------------------------------------------------------

    def _directories(self) -> list[Path]:
        return sorted(p for p in self._root.glob(f"{_DIR_PREFIX}*") if p.is_dir())

    def _config(self, directory: Path, port: int, server_port: int) -> str:
        host = _quote_ini(self._host)
        lines = [
            "; Written by local Neon; rewritten whenever the endpoint starts.",
            "[databases]",
            f"* = host={host} port={server_port}",
            "",
            "[pgbouncer]",
            f"listen_addr = {host}",
            f"listen_port = {port}",
            "unix_socket_dir =",
            f"pool_mode = {POOL_MODE}",
            "auth_type = scram-sha-256",
            f"auth_file = {_quote_ini(str(directory / 'userlist.txt'))}",
            f"auth_user = {_quote_ini(self._auth_user)}",
            "auth_query = SELECT usename, passwd FROM pg_catalog.pg_shadow WHERE usename = $1",
            "max_client_conn = 1000",
            "default_pool_size = 20",
            "server_idle_timeout = 10",
            "ignore_startup_parameters = extra_float_digits",
            "log_connections = 0",
            "log_disconnections = 0",
            f"logfile = {_quote_ini(str(directory / 'pgbouncer.log'))}",
            f"pidfile = {_quote_ini(str(directory / 'pgbouncer.pid'))}",
        ]
        if self.version() >= _PREPARED_STATEMENTS_SINCE:
            lines.append("max_prepared_statements = 100")
        return "\n".join(lines) + "\n"

    def _start(self, endpoint_id: str, port: int, server_port: int, password: str) -> int:
        if self._binary is None:
            raise ClusterError("No pgbouncer binary: local Neon runs no pooler.")
        directory = self.directory(endpoint_id)
        self._make_directory(directory)
        ini, userlist = directory / "pgbouncer.ini", directory / "userlist.txt"
        users = _userlist_line(self._auth_user, password)
        for attempt in range(_PORT_RETRIES + 1):
            config = self._config(directory, port, server_port)
            pid = _running_pid(directory)
            if pid is not None:
                if _read(ini) == config and _read(userlist) == users:
                    return port  # adopted: it runs as wanted
                self._stop(directory)
            _write_private(userlist, users)
            _write_private(ini, config)
            log = directory / "pgbouncer.log"
            offset = log.stat().st_size if log.exists() else 0
            run_as_server_user([self._binary, "-d", ini], timeout=30, what="pgbouncer")
            if self._wait_up(directory, port, log, offset):
                return port
            output = _read(log)[offset:]
            if "Address already in use" in output and attempt < _PORT_RETRIES:
                port = free_port(self._host)
                continue
            self._stop(directory)
            tail = "\n".join(output.strip().splitlines()[-10:])
            raise ClusterError(f"PgBouncer for endpoint {endpoint_id} did not start on port {port}:\n{tail}")
        raise AssertionError("unreachable")

    def _wait_up(self, directory: Path, port: int, log: Path, offset: int) -> bool:
        """Whether the PgBouncer just launched accepts connections on ``port`` (False once it has given up)."""
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if _running_pid(directory) is not None and _accepts(self._host, port):
                return True
            if "FATAL" in _read(log)[offset:]:
                return False
            time.sleep(0.005)
        return False

    def _stop(self, directory: Path) -> None:
        pid = _running_pid(directory)
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)  # PgBouncer's immediate shutdown
        deadline = time.monotonic() + _STOP_TIMEOUT
        while _alive(pid):
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                break
            time.sleep(0.005)
        with contextlib.suppress(FileNotFoundError):
            (directory / "pgbouncer.pid").unlink()

    def _discard(self, directory: Path) -> None:
        self._stop(directory)
        shutil.rmtree(directory, ignore_errors=True)

    def _make_directory(self, directory: Path) -> None:
        """The endpoint's directory: the servers' user's alone (it holds the auth user's password)."""
        directory.mkdir(mode=0o700, exist_ok=True)
        if user := run_as_user():
            os.chown(directory, *user)
        directory.chmod(0o700)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        if user := run_as_user():
            os.fchown(out.fileno(), *user)
        out.write(text)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, which a container's init may never reap, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _running_pid(directory: Path) -> int | None:
    """The pid of the PgBouncer running on ``directory``'s configuration, if one does."""
    try:
        pid = int((directory / "pgbouncer.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    if not _alive(pid):
        return None
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.parent.parent.exists() and str(directory / "pgbouncer.ini").encode() not in _read_bytes(cmdline):
        return None  # the pid was reused by another process
    return pid


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def _accepts(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        try:
            sock.connect((host, port))
        except OSError:
            return False
        return True
