"""``LocalNeon``: Neon's management API v2 over local PostgreSQL clusters, without HTTP.

``LocalNeon`` owns the life cycle: ``open()`` locks the data directory, loads the state, builds the parts (accounts,
projects, branches, restores, schemas, endpoints, access) and brings back every endpoint that was active;
``close()`` waits for running operations and stops the servers and their poolers (unless told to leave them
running). The parts answer the API: each marks its handler methods with their routes (``routing``), ``routes()``
lists them and ``handler(name)`` gives the one answering a route. A handler takes the request's path ids, query
parameters and body (plain JSON values) and returns the body Neon answers with, in Neon's envelopes; refusals raise
``NeonAPIError`` with Neon's status. Mutations answer at once with their operations, which run in the background
(see ``operations``).

Layout of ``home``: ``state.db`` (SQLite: organisations, projects, branches, endpoints, roles and passwords,
databases, operations), ``lock`` (held while open), ``clusters/`` (timeline directories, the read replicas'
directories and the endpoints' pooler directories, unless ``clusters_root`` is given), ``front-door/`` (the front
door's certificate, key and port, see ``frontdoor``).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import typing
from dataclasses import dataclass, replace
from pathlib import Path

from ..computes.limits import SUSPEND_MIN_SECONDS
from ..errors import ClusterError
from .access import Access
from .accounts import Accounts
from .branches import Branches
from .clusters import HOME_MARKER, Cluster, ensure_traversable, find_pg_bindir
from .computes import SUPERUSER, Computes
from .endpoints import Endpoints
from .errors import NeonAPIError
from .frontdoor.listener import listen
from .frontdoor.proxy import FrontDoor
from .frontdoor.tls import ensure_certificate
from .housekeeping import Housekeeping
from .operations import Operations
from .pooler import Poolers, find_pgbouncer
from .projects import Projects
from .records import Branch, Endpoint, Operation
from .replicas import is_replica_name, replica_name
from .restore import Restores
from .routing import Handler, Route, handlers_of, routes_of
from .runtime import Runtime
from .schemas import Schemas
from .store import Store
from .timelines import Timeline

__all__ = ["LocalNeon"]

logger = logging.getLogger("neon_mcp.local_neon")

_CLOSE_WAIT = 120.0


@dataclass(frozen=True)
class _Handlers:
    """The parts answering the API, built once the service is open."""

    accounts: Accounts
    projects: Projects
    branches: Branches
    restores: Restores
    schemas: Schemas
    endpoints: Endpoints
    access: Access

    @staticmethod
    def part_types() -> list[type]:
        """The classes of the parts, each marking the routes it answers."""
        return [hint for hint in typing.get_type_hints(_Handlers).values() if isinstance(hint, type)]

    @classmethod
    def build(cls, rt: Runtime) -> _Handlers:
        accounts = Accounts(rt)
        endpoints = Endpoints(rt)
        branches = Branches(rt, endpoints)
        return cls(
            accounts=accounts,
            projects=Projects(rt, accounts, endpoints, branches),
            branches=branches,
            restores=Restores(rt, endpoints),
            schemas=Schemas(rt),
            endpoints=endpoints,
            access=Access(rt, endpoints),
        )


class LocalNeon:
    """Local Neon on the data directory ``home``.

    ``clusters_root`` (default ``home/clusters``) holds the branches' data; when this process is root the servers run
    as ``nobody``, which must be able to traverse every directory above it. ``bindir`` picks the PostgreSQL binaries
    (default: found as ``server.local_neon.clusters.find_pg_bindir`` finds them). ``history_seconds`` is the longest
    window branches can be created or restored back into; ``host`` is the loopback address endpoints listen on. With
    ``pooler`` (the default) each running endpoint gets a PgBouncer in transaction mode when a ``pgbouncer`` binary is
    found (see ``pooler``); without one, or with ``pooler=False``, pooled URIs reach the endpoints directly.
    ``min_suspend_seconds`` is the shortest suspend timeout accepted: Neon's 60 s unless lowered (tests lower it to
    watch scale to zero in seconds). ``front_door_port`` fixes the front door's port (default: the one it had last
    time in this home, else a free one).
    """

    def __init__(
        self,
        home: Path,
        *,
        clusters_root: Path | None = None,
        bindir: Path | None = None,
        history_seconds: int = 86400,
        host: str = "127.0.0.1",
        pooler: bool = True,
        min_suspend_seconds: int = SUSPEND_MIN_SECONDS,
        front_door_port: int | None = None,
    ) -> None:
        self._home = home.absolute()
        self._clusters_root = (clusters_root or self._home / "clusters").absolute()
        self._bindir = bindir
        self._history_seconds = history_seconds
        self._host = host
        self._pooler = pooler
        self._min_suspend_seconds = min_suspend_seconds
        self._lock_fd: int | None = None
        self._rt: Runtime | None = None
        self._housekeeping_task: asyncio.Task[None] | None = None
        self._handlers: _Handlers | None = None
        self._front_door_port = front_door_port
        self._front_door: FrontDoor | None = None
        self._by_name: dict[str, Handler] | None = None

    # --- life cycle ----------------------------------------------------------------------------------------------

    async def open(self) -> None:
        """Lock ``home``, load the state, bring back active endpoints, start the background loop.

        Raises ``NeonAPIError`` (409) if another local Neon has ``home`` open or the clusters root belongs to another
        home, ``ClusterError`` if the PostgreSQL binaries are missing or the clusters root is out of reach of the
        server's user.
        """
        if self._rt is not None:
            raise RuntimeError("this LocalNeon is already open")
        self._home.mkdir(parents=True, exist_ok=True)
        self._lock()
        try:
            bindir = find_pg_bindir(self._bindir)
            if not self._clusters_root.exists():
                self._clusters_root.mkdir(parents=True, mode=0o711)
                self._clusters_root.chmod(0o711)
            ensure_traversable(self._clusters_root)
            self._claim_clusters_root()
            version = await asyncio.to_thread(lambda: Cluster(self._clusters_root / "probe", bindir=bindir).version)
            poolers = Poolers(
                self._clusters_root,
                binary=find_pgbouncer() if self._pooler else None,
                host=self._host,
                auth_user=SUPERUSER,
            )
            if poolers.available:
                await asyncio.to_thread(poolers.version)
            certificate = await asyncio.to_thread(ensure_certificate, self._home / "front-door")
            door_socket = listen(self._home / "front-door", self._host, self._front_door_port)
            store = Store(self._home / "state.db")
        except BaseException:
            self._unlock()
            raise
        rt = Runtime(
            store=store,
            operations=Operations(store),
            computes=Computes(self._clusters_root, bindir=bindir, host=self._host),
            poolers=poolers,
            clusters_root=self._clusters_root,
            bindir=bindir,
            host=self._host,
            history_seconds=self._history_seconds,
            pg_version=version,
            min_suspend_seconds=self._min_suspend_seconds,
            front_door_port=door_socket.getsockname()[1],
        )
        handlers = _Handlers.build(rt)
        self._rt = rt
        self._handlers = handlers
        self._by_name = handlers_of(vars(handlers).values())
        try:
            await self._recover()
        except BaseException:
            await rt.poolers.stop_all()
            await rt.computes.stop_all()
            store.close()
            door_socket.close()
            self._rt = self._handlers = self._by_name = None
            self._unlock()
            raise
        self._front_door = FrontDoor(rt, handlers.endpoints, certificate)
        await self._front_door.start(door_socket)
        housekeeping = Housekeeping(rt, handlers.endpoints, handlers.branches)
        self._housekeeping_task = asyncio.get_running_loop().create_task(housekeeping.run())

    async def close(self, *, stop_endpoints: bool = True) -> None:
        """Stop the background loop, wait for running operations, stop the servers (unless ``stop_endpoints`` is
        false: then they keep serving and the next ``open`` adopts them), release the lock."""
        rt = self._rt
        if rt is None:
            return
        if self._front_door is not None:
            await self._front_door.close()
            self._front_door = None
        if self._housekeeping_task is not None:
            self._housekeeping_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeping_task
            self._housekeeping_task = None
        try:
            await asyncio.wait_for(rt.operations.drain(), _CLOSE_WAIT)
        except TimeoutError:
            logger.warning("local Neon: operations still running after %g s; cancelling them", _CLOSE_WAIT)
            await rt.operations.cancel()
        if stop_endpoints:
            await rt.poolers.stop_all()
            await rt.computes.stop_all()
        rt.store.close()
        self._rt = None
        self._handlers = None
        self._by_name = None
        self._unlock()

    def _lock(self) -> None:
        fd = os.open(self._home / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise NeonAPIError(
                409, f"the local Neon data directory {self._home} is in use by another local Neon (pid {holder})"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def _claim_clusters_root(self) -> None:
        """Mark the clusters root as this home's; refuse one another home uses (``open`` sweeps unused timelines
        out of it, which would destroy the other's branches)."""
        marker = self._clusters_root / HOME_MARKER
        try:
            owner = marker.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            marker.write_text(f"{self._home}\n", encoding="utf-8")
            return
        if owner != str(self._home):
            raise NeonAPIError(
                409, f"the clusters root {self._clusters_root} belongs to the local Neon data directory {owner}"
            )

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    async def _recover(self) -> None:
        """Make the stored state true again after a stop or crash, and start the endpoints that should run."""
        rt = self._runtime()
        store = rt.store
        with store.transaction():
            for op in store.list(Operation):
                if op.status in ("scheduling", "running"):
                    error = "interrupted: local Neon stopped before this operation finished"
                    store.put(replace(op, status="failed", error=error, failures_count=op.failures_count + 1))
        handlers = self._all()
        handlers.accounts.ensure_default_organization()
        for branch in store.list(Branch):
            if branch.current_state == "init" and branch.parent_id is None:
                await handlers.projects.discard_unfinished(branch.project_id)
            elif branch.current_state == "init":
                await handlers.branches.discard_unfinished(branch.id)
            elif branch.current_state != "ready" or branch.pending_state is not None:
                store.put(replace(branch, current_state="ready", pending_state=None))
        known = {branch.timeline for branch in store.list(Branch)}
        known |= {replica_name(e.id) for e in store.list(Endpoint) if e.type == "read_only"}
        for entry in sorted(self._clusters_root.iterdir()):
            unused = Timeline.is_timeline_name(entry.name) or is_replica_name(entry.name)
            if unused and entry.name not in known:
                logger.info("local Neon: removing %s, which nothing uses (left by an interrupted operation)", entry)
                await asyncio.to_thread(Timeline(entry).remove, rt.bindir)
        gate = asyncio.Semaphore(2)

        async def bring_back(endpoint: Endpoint) -> None:
            async with gate:
                try:
                    await handlers.endpoints.bring_up(endpoint.id)
                except (ClusterError, OSError) as exc:
                    logger.error("local Neon: cannot bring back endpoint %s: %s", endpoint.id, exc)
                    store.put(replace(endpoint, current_state="idle", pending_state=None))

        wanted = []
        for endpoint in store.list(Endpoint):
            if "active" in (endpoint.current_state, endpoint.pending_state) and not endpoint.disabled:
                wanted.append(endpoint)
            elif endpoint.current_state != "idle" or endpoint.pending_state is not None:
                store.put(replace(endpoint, current_state="idle", pending_state=None))
        endpoint_ids = {endpoint.id for endpoint in store.list(Endpoint)}
        await rt.poolers.sweep(running={endpoint.id for endpoint in wanted}, known=endpoint_ids)
        await asyncio.gather(*(bring_back(endpoint) for endpoint in wanted))

    @property
    def front_door(self) -> FrontDoor:
        """The front door (open only)."""
        if self._front_door is None:
            raise RuntimeError("LocalNeon is not open: call open() first")
        return self._front_door

    @property
    def front_door_port(self) -> int:
        """The port of the front door, which every endpoint host and connection URI names."""
        return self._runtime().front_door_port

    @property
    def clusters_root(self) -> Path:
        """Where the branches' data lives."""
        return self._clusters_root

    def pooler_status(self) -> str:
        """One line saying which pooler serves pooled connection URIs, or that none does."""
        return self._runtime().poolers.describe()

    @staticmethod
    def routes() -> list[Route]:
        """Every API endpoint local Neon answers, as its parts mark them (see ``routing``)."""
        return routes_of(_Handlers.part_types())

    def handler(self, name: str) -> Handler:
        """The method answering the route ``name`` (the service must be open); call it as ``routing.call`` does."""
        if self._by_name is None:
            raise RuntimeError("LocalNeon is not open: call open() first")
        return self._by_name[name]

    def _runtime(self) -> Runtime:
        if self._rt is None:
            raise RuntimeError("LocalNeon is not open: call open() first")
        return self._rt

    def _all(self) -> _Handlers:
        if self._handlers is None:
            raise RuntimeError("LocalNeon is not open: call open() first")
        return self._handlers
