"""Copying a branch's data at a point in its history into a new timeline: head, a past time, or a past LSN.

At head the source's running server is copied with ``pg_basebackup`` (it is started for the copy if suspended). At a
past point the source's base copy is restored and its archived WAL replayed up to the target, then promoted: first
the source is *sealed* (a commit and a WAL switch, archived) so the archive reaches past the target. A point must lie
inside the branch's history: not in the future, not before the retention window, not before the branch's own copy.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import asyncpg

from ..errors import ClusterError
from . import catalog, ids
from .clusters import Cluster
from .errors import bad_request
from .records import Branch, Project
from .runtime import Runtime
from .timelines import Timeline

__all__ = ["Copy", "Point", "copy_data", "parse_point", "serving_at"]

_PROMOTE_TIMEOUT = 120.0


@dataclass(frozen=True)
class Point:
    """Where in a branch's history: head (neither set), a time, or an LSN (as text and as a number)."""

    time: datetime | None = None
    lsn: str | None = None
    lsn_value: int | None = None

    @property
    def is_head(self) -> bool:
        return self.time is None and self.lsn is None


@dataclass(frozen=True)
class Copy:
    """A new timeline holding the source's data at the point, and where exactly that was."""

    timeline: str
    lsn: str
    moment: datetime
    history_start: datetime
    history_start_lsn: str
    roles: set[str] | None = None
    databases: dict[str, str] | None = None


def on_copy(branch: Branch, copy: Copy, *, from_parent: bool) -> Branch:
    """``branch`` now served by the timeline of ``copy``, ready; ``from_parent``: the copy is of its parent, so the
    branch's parent point moves to the copy's."""
    moment = ids.now()
    settled = replace(
        branch,
        timeline=copy.timeline,
        history_start=copy.history_start,
        history_start_lsn=copy.history_start_lsn,
        current_state="ready",
        pending_state=None,
        state_changed_at=moment,
        updated_at=moment,
    )
    if from_parent:
        settled = replace(settled, parent_lsn=copy.lsn, parent_timestamp=copy.moment)
    return settled


def parse_point(*, lsn: object, timestamp: object, lsn_field: str, time_field: str) -> Point:
    """The point a request names; 400 if both or a malformed value is given."""
    if lsn is not None and timestamp is not None:
        raise bad_request(f"{lsn_field} and {time_field} cannot be specified at the same time")
    if timestamp is not None:
        return Point(time=ids.parse_time(timestamp, time_field))
    if lsn is not None:
        value = ids.parse_lsn(lsn, lsn_field)
        return Point(lsn=ids.format_lsn(value), lsn_value=value)
    return Point()


def check_window(project: Project, source: Branch, point: Point, *, history_seconds: int) -> None:
    """400 unless ``point`` lies in ``source``'s history: retention window, the branch's own start, not future."""
    if point.time is not None:
        now = ids.now()
        retention = min(project.history_retention_seconds, history_seconds)
        if point.time > now:
            raise bad_request(f"timestamp {ids.format_time(point.time, precise=True)} is in the future")
        if point.time < now - timedelta(seconds=retention):
            raise bad_request(
                f"timestamp {ids.format_time(point.time, precise=True)} is outside the history retention window "
                f"of {retention} seconds"
            )
        if source.history_start is not None and point.time < source.history_start:
            raise bad_request(
                f"timestamp {ids.format_time(point.time, precise=True)} is before the history of branch "
                f"{source.id} begins ({ids.format_time(source.history_start, precise=True)})"
            )
    if point.lsn_value is not None and source.history_start_lsn is not None:
        start = ids.parse_lsn(source.history_start_lsn, "history start")
        if point.lsn_value < start:
            raise bad_request(
                f"LSN {point.lsn} is before the history of branch {source.id} begins ({source.history_start_lsn})"
            )


async def copy_data(rt: Runtime, project: Project, source: Branch, point: Point, *, run_on: int | None) -> Copy:
    """A new timeline with ``source``'s data at ``point``; on failure nothing of it is left behind.

    With ``run_on`` the new timeline's server is left running on that port (for the endpoint about to start on it);
    otherwise it is stopped (or never started). Raises ``NeonAPIError`` (400) if an LSN is past the source's head,
    ``ClusterError`` when copying or recovering fails.
    """
    timeline = Timeline(rt.clusters_root / ids.timeline_name())
    await asyncio.to_thread(timeline.create)
    try:
        if point.is_head:
            return await _copy_head(rt, source, timeline, run_on=run_on)
        return await _copy_at(rt, project, source, point, timeline, run_on=run_on)
    except BaseException:
        await rt.computes.forget(timeline.name)
        await asyncio.to_thread(timeline.remove, rt.bindir)
        raise


@asynccontextmanager
async def serving_at(
    rt: Runtime, project: Project, source: Branch, point: Point, *, reserving: str | None
) -> AsyncIterator[Cluster]:
    """A server with ``source``'s data at ``point`` while the block runs: the branch's own (held) at head, else a
    temporary copy, removed afterwards. The point must lie in the branch's history (400 otherwise). ``reserving`` names
    the work that reserves the branch while the copy is made (423 for others meanwhile); ``None`` when the caller's
    operation holds it already."""
    if point.is_head:
        async with rt.hold(source) as cluster:
            yield cluster
        return
    check_window(project, source, point, history_seconds=rt.history_seconds)
    if reserving is None:
        copy = await copy_data(rt, project, source, point, run_on=None)
    else:
        with rt.operations.reserve([source.id], f"{reserving} of {source.id} at a past point"):
            copy = await copy_data(rt, project, source, point, run_on=None)
    try:
        async with rt.computes.hold(copy.timeline, port=None, password=project.superuser_password) as cluster:
            yield cluster
    finally:
        await rt.drop_timeline(copy.timeline)


async def _copy_head(rt: Runtime, source: Branch, timeline: Timeline, *, run_on: int | None) -> Copy:
    async with rt.hold(source) as cluster:
        base = await asyncio.to_thread(timeline.copy_from, cluster)
    if run_on is not None:
        await rt.computes.start(timeline.name, port=run_on, password=cluster.password)
    return Copy(timeline.name, base.lsn, base.time, history_start=base.time, history_start_lsn=base.lsn)


async def _copy_at(
    rt: Runtime, project: Project, source: Branch, point: Point, timeline: Timeline, *, run_on: int | None
) -> Copy:
    origin = rt.computes.timeline(source.timeline)
    async with rt.hold(source) as cluster:
        head = await rt.computes.seal(cluster, origin)
    if point.lsn_value is not None and point.lsn_value > head:
        raise bad_request(f"LSN {point.lsn} is past the head of branch {source.id} ({ids.format_lsn(head)})")
    await asyncio.to_thread(timeline.prepare_recovery, origin, target_time=point.time, target_lsn=point.lsn)
    password = project.superuser_password
    async with rt.computes.hold(timeline.name, port=run_on, password=password) as restored:
        replayed_until = await _wait_promoted(restored)
        lsn = await asyncio.to_thread(timeline.finish_recovery)
        base = await asyncio.to_thread(timeline.add_base, restored)
        roles, databases = await catalog.inventory(restored)
        if run_on is not None:
            await rt.computes.start(timeline.name, port=run_on, password=password)
    moment = point.time or replayed_until or base.time
    reported = point.lsn if point.lsn is not None else lsn  # Neon reports the LSN asked for, not where replay ended
    return Copy(timeline.name, reported, moment, base.time, base.lsn, roles=roles, databases=databases)


async def _wait_promoted(cluster: Cluster) -> datetime | None:
    """Wait until the recovering server has promoted; returns the commit time of the last transaction replayed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _PROMOTE_TIMEOUT
    try:
        conn = await asyncpg.connect(cluster.dsn(), timeout=10)
        try:
            while await conn.fetchval("SELECT pg_is_in_recovery()"):
                if loop.time() > deadline:
                    raise ClusterError(f"The recovery did not finish within {_PROMOTE_TIMEOUT:g} s.")
                await asyncio.sleep(0.02)
            replayed: datetime | None = await conn.fetchval("SELECT pg_last_xact_replay_timestamp()")
        finally:
            await conn.close()
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, ClusterError) as exc:
        raise ClusterError(f"The point-in-time recovery failed: {exc}\n{cluster.log_tail(10)}") from exc
    return replayed
