"""Read replicas: a ``read_only`` endpoint is a hot standby of its branch's primary, with a data directory of its own.

``<clusters root>/ro-<endpoint id>/`` holds ``data/`` (a ``pg_basebackup`` of the branch's running primary, started
with ``standby.signal``) and ``source`` (the name of the timeline it was copied from). The standby streams WAL from the
primary (``primary_conninfo``, as the servers' superuser, to the port of the branch's read-write endpoint); while the
primary is down it reads WAL from the branch's archive and from the primary's ``pg_wal`` (``restore_command``), so a
replica started while the primary is suspended still sees every committed transaction. PostgreSQL itself refuses
writes on it (SQLSTATE 25006), whoever connects.

``prepare`` runs before every start: it rewrites the standby's settings (the primary's port may have changed) and,
when the directory is missing or was copied from another timeline (the branch was reset or restored since), copies
the primary again. Blocking work runs in worker threads; failures are ``ClusterError``.
"""

from __future__ import annotations

import asyncio
import os
import shlex
from pathlib import Path

from ..errors import ClusterError
from .clusters import run_as_user
from .computes import SUPERUSER
from .records import Branch, Endpoint
from .runtime import Runtime

__all__ = ["is_replica_name", "prepare", "replica_name"]

_PREFIX = "ro-"
_SOURCE = "source"
_RECOVERY_CONF = "neon_recovery.conf"  # included by every timeline's postgresql.conf (see ``timelines``)


def replica_name(endpoint_id: str) -> str:
    """The directory name (under the clusters root) of a read-only endpoint's standby."""
    return _PREFIX + endpoint_id


def is_replica_name(name: str) -> bool:
    return name.startswith(_PREFIX + "ep-")


async def prepare(rt: Runtime, branch: Branch, endpoint: Endpoint, *, password: str) -> str:
    """Make the standby of ``endpoint`` ready to start (copying ``branch``'s primary if needed); its server name."""
    name = replica_name(endpoint.id)
    directory = rt.clusters_root / name
    data = directory / "data"
    current = await asyncio.to_thread(_source, directory)
    if current != branch.timeline or not (data / "PG_VERSION").exists():
        await rt.drop_timeline(name)  # stops a standby of the old timeline, removes its directory
        await asyncio.to_thread(_make_directory, directory)
        try:
            async with rt.hold(branch) as primary:
                await asyncio.to_thread(primary.basebackup, data)
            await asyncio.to_thread(_finish_copy, directory, branch.timeline)
        except BaseException:
            await rt.drop_timeline(name)
            raise
    writer = rt.read_write_endpoint(branch)
    timeline = rt.computes.timeline(branch.timeline)
    settings = _standby_settings(
        host=rt.host,
        port=writer.port if writer is not None else None,
        password=password,
        application_name=endpoint.id,
        sources=(timeline.wal, timeline.data / "pg_wal"),
    )
    await asyncio.to_thread(_write_owned, data / _RECOVERY_CONF, settings)
    return name


def _source(directory: Path) -> str | None:
    try:
        return (directory / _SOURCE).read_text(encoding="utf-8").strip()
    except OSError:
        return None


def _make_directory(directory: Path) -> None:
    try:
        directory.mkdir(mode=0o700)
        if user := run_as_user():
            os.chown(directory, *user)
    except OSError as exc:
        raise ClusterError(f"Cannot create the replica directory {directory}: {exc}") from exc


def _finish_copy(directory: Path, timeline: str) -> None:
    """Turn the fresh copy into a standby and note where it came from (last: a half-made copy has no ``source``)."""
    data = directory / "data"
    (data / "server.log").unlink(missing_ok=True)  # the primary's log, copied along
    (data / _RECOVERY_CONF).unlink(missing_ok=True)
    _write_owned(data / "standby.signal", "")
    (directory / _SOURCE).write_text(timeline + "\n", encoding="utf-8")


def _write_owned(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        if user := run_as_user():
            os.fchown(out.fileno(), *user)
        out.write(text)


def _conf(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _conninfo(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _standby_settings(
    *, host: str, port: int | None, password: str, application_name: str, sources: tuple[Path, ...]
) -> str:
    restore = " || ".join(f"cp {shlex.quote(str(source))}/%f %p 2>/dev/null" for source in sources)
    lines = [
        "# Written by local Neon before every start of this read replica.",
        f"restore_command = {_conf(restore)}",
        "wal_retrieve_retry_interval = '1s'",
        "hot_standby = on",
    ]
    if port is not None:
        conninfo = " ".join(
            f"{key}={_conninfo(value)}"
            for key, value in (
                ("host", host),
                ("port", str(port)),
                ("user", SUPERUSER),
                ("password", password),
                ("application_name", application_name),
            )
        )
        lines.append(f"primary_conninfo = {_conf(conninfo)}")
    return "\n".join(lines) + "\n"
