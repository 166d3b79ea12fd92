"""Branch changes on Neon: create, delete, reset and restore.

Creating a branch reads its parent, so it runs in access modes ``branches`` and ``full`` from any parent; it waits for
Neon's operations and then until the branch answers ``SELECT 1``. Whatever fails after Neon made the branch, the
branch is deleted again: no half-made branch is left behind.

Deleting, resetting and restoring are planned first (``plan_delete``, ``plan_reset``, ``plan_restore``): a plan is
checked against the current branch list and Neon's rules (the default branch, root branches and branches with
children are not deleted; a root branch has nothing to reset to), and carries the exact summary a human confirms.
``apply`` runs a plan. In access mode ``branches`` these three refuse protected branches (``Directory.protection``);
in ``full`` they run there too, and the branch's previous state is kept as a backup branch named
``backup/<branch>/<UTC time>`` that Neon deletes after ``backup_days``:

- reset and restore keep the previous state through Neon's ``preserve_under_name`` (the old data itself, no copy,
  no compute), then set the backup's ``expires_at``. A branch with children cannot be kept that way for a limited
  time (the kept branch takes the children over), so it is kept as ``<branch>_old_<UTC time>`` for good instead.
- delete renames the protected branch to its backup name, removes Neon's protection and sets ``expires_at``: a child
  backup would stop Neon from deleting the branch at all, so the branch is its own backup.

Reset and restore also keep the previous state as ``<branch>_old_<UTC time>`` where Neon requires a name (the branch
has children, or is restored onto its own history) and the caller gave none.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from .. import access, progress
from ..errors import InvalidInput, NeonAPIFailure, NeonMCPError
from ..settings import AccessMode
from ..state.audit import AuditLog, AuditRecord, Confirmed
from ..state.binding import Binding, Bound
from .backups import backup_name
from .points import is_lsn, parse_lsn, parse_moment

if TYPE_CHECKING:
    from .backups import Backups
    from .client import NeonClient
    from .connections import Connections
    from .models import Branch
    from .targets import Directory

__all__ = ["BranchChange", "BranchChanged", "BranchCreated", "BranchService", "parse_duration"]

logger = logging.getLogger(__name__)

Action = Literal["delete", "reset", "restore"]
Keep = Literal["discard", "named", "old", "backup"]
"""How a change keeps the branch's previous state: not at all, under the caller's name, as ``<name>_old_<UTC>``,
or as an expiring backup branch."""

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d|w)?$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_LISTED = 10


class BranchCreated(BaseModel):
    """What create_branch made."""

    branch: str
    branch_id: str
    parent: str
    parent_id: str
    parent_lsn: str | None = Field(default=None, description="the point of the parent's history it starts from")
    parent_timestamp: datetime | None = None
    expires_at: datetime | None = Field(default=None, description="when Neon deletes it")
    compute: str | None = Field(default=None, description="id of its read-write compute; null: created without one")
    host: str | None = None
    database: str | None = Field(default=None, description="the database the readiness check connected to")
    connectable: bool = Field(description="a connection ran SELECT 1 on it before this answer")
    elapsed_ms: float


class BranchChanged(BaseModel):
    """What delete_branch, reset_branch or restore_branch did (or, before confirmation, would do)."""

    action: Action
    branch: str
    branch_id: str
    protected_because: str | None = Field(default=None, description="why the branch is protected, if it is")
    source_branch: str | None = Field(default=None, description="reset/restore: the branch the data comes from")
    source_branch_id: str | None = None
    source_lsn: str | None = None
    source_timestamp: datetime | None = None
    preserved_as: str | None = Field(default=None, description="the branch that now holds the previous state")
    backup_branch: str | None = Field(
        default=None, description="an expiring backup branch holding the previous state (or the deleted branch)"
    )
    backup_expires_at: datetime | None = None
    notes: list[str] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Request:
    """A change as the caller asked for it (planned again, on fresh state, before a stored change runs)."""

    action: Action
    branch: str
    from_branch: str | None = None
    to_time: str | None = None
    to_lsn: str | None = None
    preserve_under_name: str | None = None


@dataclass(frozen=True, slots=True)
class BranchChange:
    """A checked change that has not run: what the human confirms (``summary``) and what ``apply`` does."""

    request: _Request
    project_id: str
    branch: Branch
    protected_because: str | None
    children: tuple[str, ...]
    source: Branch | None
    source_lsn: str | None
    source_timestamp: datetime | None
    keep: Keep
    unprotect: bool
    summary: str
    needs_confirmation: bool = True

    def preview(self) -> dict[str, object]:
        """The result's fields known before it runs, as JSON."""
        return self.changed().model_dump(mode="json", exclude_none=True)

    async def binding(self) -> Binding:
        """The branches it touches, by id (resolved from the names when it was planned)."""
        found = [self.branch, *([self.source] if self.source is not None and self.source.id != self.branch.id else [])]
        return tuple(Bound("branch", b.name, f"branch {b.id}") for b in found)

    def changed(self) -> BranchChanged:
        """The result, as far as it is known before it runs."""
        return BranchChanged(
            action=self.request.action,
            branch=self.branch.name,
            branch_id=self.branch.id,
            protected_because=self.protected_because,
            source_branch=self.source.name if self.source else None,
            source_branch_id=self.source.id if self.source else None,
            source_lsn=self.source_lsn,
            source_timestamp=self.source_timestamp,
        )


def parse_duration(value: str | float) -> timedelta:
    """``"2h"``, ``"30m"``, ``"7d"``, ``"1w"``, ``"90s"`` or a number of seconds, as a positive ``timedelta``."""
    text = str(value).strip().lower()
    match = _DURATION.match(text)
    seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"] if match else 0.0
    if seconds <= 0:
        raise InvalidInput(
            f"expires_in {value!r} is not a positive duration; write it like 30m, 2h, 7d or a number of seconds"
        )
    return timedelta(seconds=seconds)


def _moment(text: str, field: str) -> datetime:
    if is_lsn(text):
        raise InvalidInput(f"{field} {text!r} is an LSN; pass it as {field.replace('time', 'lsn')}")
    return parse_moment(text, field)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _stamp(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%dT%H-%M-%SZ}"


def _names(names: tuple[str, ...]) -> str:
    more = len(names) - _LISTED
    return ", ".join(names[:_LISTED]) + (f" and {more} more" if more > 0 else "")


class BranchService:
    """Creates, deletes, resets and restores branches of the served project (see the module docstring)."""

    def __init__(
        self,
        neon: NeonClient,
        directory: Directory,
        connections: Connections,
        backups: Backups,
        audit: AuditLog,
        *,
        access_mode: AccessMode,
    ) -> None:
        self.neon = neon
        self.directory = directory
        self.connections = connections
        self.backups = backups
        self.audit = audit
        self.access_mode: AccessMode = access_mode

    # --- create ------------------------------------------------------------------------------------------------------

    async def create(
        self,
        name: str,
        *,
        parent: str | None = None,
        at_time: str | None = None,
        at_lsn: str | None = None,
        expires_in: str | float | None = None,
        with_compute: bool = True,
    ) -> BranchCreated:
        """Create branch ``name`` of ``parent`` (default: NEON_BRANCH, else the default branch), at its head or at a
        past time or LSN; return once it is ready (and, with a compute, answers ``SELECT 1``).

        Raises ``InvalidInput`` for bad arguments, a name in use or a point outside the parent's history; any failure
        after Neon made the branch deletes it again and is raised with that said.
        """
        started = time.monotonic()
        access.decide("create_branch", self.access_mode).enforced()
        name = name.strip()
        if not name:
            raise InvalidInput("name is empty: give the new branch a name")
        if at_time is not None and at_lsn is not None:
            raise InvalidInput("pass at_time or at_lsn, not both")
        moment = _moment(at_time, "at_time") if at_time is not None else None
        lsn = parse_lsn(at_lsn, "at_lsn") if at_lsn is not None else None
        expires_at = datetime.now(UTC) + parse_duration(expires_in) if expires_in is not None else None
        directory = self.directory
        neon = self.neon
        project_id = await directory.project_id()
        if any(b.name == name for b in await directory.branches()):
            raise InvalidInput(_name_taken(name))
        source = await directory.branch(parent)
        point = f" as of {_iso(moment)}" if moment else f" at LSN {lsn}" if lsn else ""
        await progress.report(0, None, f"creating branch {name} from {source.name}{point}")
        try:
            created = await neon.create_branch(
                project_id,
                name=name,
                parent_id=source.id,
                parent_lsn=lsn,
                parent_timestamp=moment,
                expires_at=expires_at,
                with_compute=with_compute,
            )
        except NeonAPIFailure as exc:
            if exc.status == 409:
                raise InvalidInput(_name_taken(name) + f" (Neon: {exc.message})") from exc
            if point and exc.status in (400, 422):
                raise InvalidInput(
                    f"cannot branch {source.name}{point}: {exc.message} (is it inside the project's history window?)"
                ) from exc
            raise
        directory.forget(project_id)
        branch = created.branch
        database = None
        try:
            await neon.wait_for_operations(project_id, created.operations, progress=progress.report)
            if with_compute:
                database = await self._until_connectable(branch)
            branch = await directory.branch(branch.id)  # as it is now: with the LSN it started from
        except BaseException as exc:
            removed = await asyncio.shield(self._discard(project_id, branch.id))
            if not isinstance(exc, NeonMCPError):
                raise
            after = "it was deleted again" if removed else f"deleting it failed too: delete branch {name} by hand"
            raise NeonMCPError(f"branch {name} was created but did not become ready ({exc}); {after}") from exc
        endpoint = next((e for e in created.endpoints if e.type == "read_write"), None)
        return BranchCreated(
            branch=branch.name,
            branch_id=branch.id,
            parent=source.name,
            parent_id=source.id,
            parent_lsn=branch.parent_lsn,
            parent_timestamp=branch.parent_timestamp,
            expires_at=branch.expires_at or expires_at,
            compute=endpoint.id if endpoint else None,
            host=endpoint.host if endpoint else None,
            database=database,
            connectable=database is not None,
            elapsed_ms=round((time.monotonic() - started) * 1000, 1),
        )

    async def _until_connectable(self, branch: Branch) -> str:
        """Connect to the new branch and run ``SELECT 1`` (starting its compute if needed); the database's name."""
        await progress.report(0, None, f"connecting to branch {branch.name}")
        target = await self.directory.target(branch.id)
        databases = await self.connections.databases(target)
        async with databases.connection(target.database) as conn:
            await conn.fetchval("SELECT 1")
        await progress.report(1, 1, f"branch {branch.name} is ready")
        return target.database

    async def _discard(self, project_id: str, branch_id: str) -> bool:
        """Delete a branch this service just made; whether it is gone (a failure is logged, not raised)."""
        neon = self.neon
        try:
            await self.connections.forget_branch(branch_id)
            operations = await neon.delete_branch(project_id, branch_id)
            await neon.wait_for_operations(project_id, operations)
        except NeonAPIFailure as exc:
            if exc.status == 404:  # Neon discarded it itself (its creation failed)
                return True
            logger.warning("branch %s could not be deleted after a failed creation: %s", branch_id, exc)
            return False
        except NeonMCPError as exc:
            logger.warning("branch %s could not be deleted after a failed creation: %s", branch_id, exc)
            return False
        finally:
            self.directory.forget(project_id)
        return True

    # --- planning ----------------------------------------------------------------------------------------------------

    async def plan_delete(self, branch: str) -> BranchChange:
        """Check a deletion (Neon's rules, protection in this access mode); raises before anything is asked."""
        return await self._plan(_Request("delete", branch))

    async def plan_reset(self, branch: str, *, preserve_under_name: str | None = None) -> BranchChange:
        """Check a reset of ``branch`` to its parent's head."""
        return await self._plan(_Request("reset", branch, preserve_under_name=preserve_under_name))

    async def plan_restore(
        self,
        branch: str,
        *,
        from_branch: str | None = None,
        to_time: str | None = None,
        to_lsn: str | None = None,
        preserve_under_name: str | None = None,
    ) -> BranchChange:
        """Check a restore of ``branch`` from ``from_branch`` (head, time or LSN) or from its own past."""
        return await self._plan(_Request("restore", branch, from_branch, to_time, to_lsn, preserve_under_name))

    async def _plan(self, request: _Request) -> BranchChange:
        directory = self.directory
        project_id = await directory.project_id()
        await directory.branches(refresh=True)  # children and protection as they are now, not as cached
        branch = await directory.branch(request.branch)
        children = tuple(b.name for b in await directory.branches() if b.parent_id == branch.id)
        protected_because = directory.protection(branch)
        source, lsn, moment = await self._source(request, branch)
        if request.action == "delete":
            _check_deletable(branch, children)
        verdict = access.decide(
            _OPERATIONS[request.action], self.access_mode, branch=branch.name, protected_because=protected_because
        ).enforced()
        preserve = (request.preserve_under_name or "").strip() or None
        if request.action == "delete":
            keep: Keep = "backup" if protected_because and self.backups.enabled else "discard"
        elif preserve is not None:
            keep = "named"
        elif protected_because and self.backups.enabled and not children:
            keep = "backup"
        elif children or (source is not None and source.id == branch.id):
            keep = "old"
        else:
            keep = "discard"
        change = BranchChange(
            request=replace(request, preserve_under_name=preserve),
            project_id=project_id,
            branch=branch,
            protected_because=protected_because,
            children=children,
            source=source,
            source_lsn=lsn,
            source_timestamp=moment,
            keep=keep,
            unprotect=branch.protected,
            summary="",
            needs_confirmation=verdict.needs_confirmation,
        )
        return replace(change, summary=self._summary(change))

    async def _source(self, request: _Request, branch: Branch) -> tuple[Branch | None, str | None, datetime | None]:
        """Where reset and restore take the data from: (branch, LSN, timestamp)."""
        if request.action == "delete":
            return None, None, None
        if request.action == "reset":
            if branch.parent_id is None:
                raise InvalidInput(
                    f"branch {branch.name} has no parent (it is a root branch), so there is nothing to reset it to; "
                    "restore_branch with to_time or from_branch can bring back another state"
                )
            return await self.directory.branch(branch.parent_id), None, None
        if request.to_time is not None and request.to_lsn is not None:
            raise InvalidInput("pass to_time or to_lsn, not both")
        if request.from_branch is None and request.to_time is None and request.to_lsn is None:
            raise InvalidInput(
                "say what to restore from: to_time or to_lsn (the branch's own past), from_branch (another branch's "
                "head), or from_branch with to_time or to_lsn"
            )
        moment = _moment(request.to_time, "to_time") if request.to_time is not None else None
        lsn = parse_lsn(request.to_lsn, "to_lsn") if request.to_lsn is not None else None
        source = branch if request.from_branch is None else await self.directory.branch(request.from_branch)
        if source.id == branch.id and moment is None and lsn is None:
            raise InvalidInput(
                f"restoring branch {branch.name} from itself needs to_time or to_lsn (a point in its past)"
            )
        return source, lsn, moment

    def _summary(self, change: BranchChange) -> str:
        """The text the human confirms: deterministic for the same branch list (no clock, no random part)."""
        b = change.branch
        src = change.source
        action = change.request.action
        lines: list[str]
        if action == "delete":
            lines = [f"Delete branch {b.name} ({b.id}) of project {change.project_id}: its data and computes go."]
        elif action == "reset":
            assert src is not None
            lines = [
                f"Reset branch {b.name} ({b.id}) to the current state of its parent {src.name} ({src.id}): every "
                f"change made on {b.name} since it was created or last reset is lost."
            ]
        else:
            assert src is not None
            if change.source_timestamp is not None:
                point = f"as of {_iso(change.source_timestamp)}"
            elif change.source_lsn is not None:
                point = f"at LSN {change.source_lsn}"
            else:
                point = "at its current state"
            origin = "its own history" if src.id == b.id else f"branch {src.name} ({src.id})"
            lines = [f"Restore branch {b.name} ({b.id}) from {origin} {point}: its current data is replaced."]
        if action != "delete":
            lines.append(f"Computes of {b.name} restart on the restored data; open sessions are cut.")
        if change.protected_because is not None:
            lines.append(f"Branch {b.name} is protected ({change.protected_because}).")
        lines.append(self._keeping(change))
        return "\n".join(lines)

    def _keeping(self, change: BranchChange) -> str:
        b = change.branch
        days = f"{self.backups.lifetime.total_seconds() / 86_400:g} days"
        backup = f"backup/{b.name}/<UTC time>"
        if change.request.action == "delete":
            if change.keep == "backup":
                return (
                    f"It is not removed at once: it is renamed to {backup}, "
                    + ("Neon's protection is removed, " if change.unprotect else "")
                    + f"and Neon deletes it in {days} (create_branch parent=<that name> brings its data back)."
                )
            text = "Nothing of it is kept."
            if change.unprotect:
                text += " Neon's protection is removed first (Neon does not delete a protected branch)."
            if change.protected_because:
                text += " Backups are switched off (NEON_MCP_BACKUPS=false)."
            return text
        children = f"it has child branches ({_names(change.children)}), which move to it"
        match change.keep:
            case "named":
                moved = f"; {children}" if change.children else ""
                return f"Its current state is kept as branch {change.request.preserve_under_name}{moved}."
            case "backup":
                return f"Its current state is kept as backup branch {backup}, which Neon deletes in {days}."
            case "old":
                why = children if change.children else "Neon requires this to restore a branch onto its own history"
                return f"Its current state is kept as branch {b.name}_old_<UTC time> ({why})."
        off = " (backups are switched off: NEON_MCP_BACKUPS=false)" if change.protected_because else ""
        return f"Its current state is not kept{off}."

    # --- applying ----------------------------------------------------------------------------------------------------

    async def apply(self, change: BranchChange, confirmed: Confirmed) -> BranchChanged:
        """Run a planned change (plan it on the current branch list: a stored change is planned again before it is
        confirmed). The change is written to the audit log, whether it succeeded or failed."""
        try:
            result = await self._apply(change)
        except NeonMCPError as exc:
            self._audit(change, confirmed, error=str(exc))
            raise
        self._audit(change, confirmed, backup=result.backup_branch)
        return result

    def _audit(
        self,
        change: BranchChange,
        confirmed: Confirmed,
        *,
        error: str | None = None,
        backup: str | None = None,
    ) -> None:
        action = f"{change.request.action}_branch {change.branch.name}"
        self.audit.append(
            AuditRecord(
                target=f"project={change.branch.project_id} branch={change.branch.id}",
                sql=action + (f" (backup {backup})" if backup else ""),
                classification="branch",
                confirmation=confirmed.path,
                outcome="error" if error else "ok",
                error=error,
                operation_id=confirmed.operation_id,
            )
        )

    async def _apply(self, change: BranchChange) -> BranchChanged:
        result = change.changed()
        if change.request.action == "delete":
            await self._delete(change, result)
        else:
            await self._restore(change, result)
        logger.info("%s_branch %s (%s) done", change.request.action, change.branch.name, change.branch.id)
        return result

    async def _delete(self, change: BranchChange, result: BranchChanged) -> None:
        neon = self.neon
        b = change.branch
        project_id = change.project_id
        await self.connections.forget_branch(b.id)
        try:
            if change.keep == "backup":
                now = datetime.now(UTC)
                name = backup_name(b.name, now)
                expires = now + self.backups.lifetime
                await progress.report(0, None, f"renaming protected branch {b.name} to backup branch {name}")
                _, operations = await neon.update_branch(
                    project_id, b.id, name=name, protected=False if b.protected else None, expires_at=expires
                )
                await neon.wait_for_operations(project_id, operations, progress=progress.report)
                result.backup_branch = name
                result.backup_expires_at = expires
                return
            if change.unprotect:
                await neon.update_branch(project_id, b.id, protected=False)
            try:
                await progress.report(0, None, f"deleting branch {b.name}")
                operations = await neon.delete_branch(project_id, b.id)
            except NeonMCPError:
                if change.unprotect:  # put Neon's protection back: nothing half-done
                    await neon.update_branch(project_id, b.id, protected=True)
                raise
            await neon.wait_for_operations(project_id, operations, progress=progress.report)
        finally:
            self.directory.forget(project_id)

    async def _restore(self, change: BranchChange, result: BranchChanged) -> None:
        neon = self.neon
        b = change.branch
        src = change.source
        assert src is not None
        project_id = change.project_id
        now = datetime.now(UTC)
        preserve = {
            "discard": None,
            "named": change.request.preserve_under_name,
            "old": f"{b.name}_old_{_stamp(now)}",
            "backup": backup_name(b.name, now),
        }[change.keep]
        await progress.report(0, None, f"{change.request.action} of branch {b.name} from {src.name}")
        # Neon does not reset a protected branch from its parent: its protection is lifted for the reset, then put back
        unprotect = b.protected and src.id == b.parent_id
        if unprotect:
            await neon.update_branch(project_id, b.id, protected=False)
        operations = None
        try:
            _, operations = await neon.restore_branch(
                project_id,
                b.id,
                source_branch_id=src.id,
                source_lsn=change.source_lsn,
                source_timestamp=change.source_timestamp,
                preserve_under_name=preserve,
            )
        except NeonAPIFailure as exc:
            point = change.source_timestamp or change.source_lsn
            if point is not None and exc.status in (400, 422):
                at = _iso(point) if isinstance(point, datetime) else f"LSN {point}"
                raise InvalidInput(
                    f"cannot restore branch {b.name} from {src.name} as of {at}: {exc.message} (is it inside the "
                    "project's history window?)"
                ) from exc
            raise
        finally:
            if unprotect and operations is None:
                await neon.update_branch(project_id, b.id, protected=True)
            self.directory.forget(project_id)
        try:
            await neon.wait_for_operations(project_id, operations, progress=progress.report)
        finally:
            if unprotect:
                await neon.update_branch(project_id, b.id, protected=True)
            self.directory.forget(project_id)
            await self.connections.forget_branch(b.id)
        result.preserved_as = preserve
        match change.keep:
            case "discard":
                result.notes.append("previous state not kept")
            case "named":
                result.notes.append(f"previous state kept as branch {preserve}")
            case "old":
                why = (
                    f"it has taken over the child branches {_names(change.children)}"
                    if change.children
                    else "Neon needs it to restore a branch onto its own history"
                )
                result.notes.append(f"previous state kept as branch {preserve} ({why}); delete it when done")
            case "backup":
                assert preserve is not None
                await self._expire_backup(project_id, preserve, now, result)

    async def _expire_backup(self, project_id: str, name: str, now: datetime, result: BranchChanged) -> None:
        """Give the kept previous state its backup lifetime; a failure leaves it kept for good, and says so."""
        expires = now + self.backups.lifetime
        try:
            kept = await self.directory.branch(name)
            await self.neon.update_branch(project_id, kept.id, expires_at=expires)
        except NeonMCPError as exc:
            logger.warning("backup branch %s kept without an expiry: %s", name, exc)
            result.notes.append(f"backup branch {name} could not be given an expiry ({exc}); delete it when done")
        else:
            result.backup_branch = name
            result.backup_expires_at = expires
            result.notes.append(
                f"previous state kept as backup branch {name} until {_iso(expires)} "
                f"(restore_branch from_branch={name} undoes this)"
            )
        finally:
            self.directory.forget(project_id)


_OPERATIONS: dict[Action, access.Operation] = {
    "delete": "delete_branch",
    "reset": "reset_branch",
    "restore": "restore_branch",
}


def _name_taken(name: str) -> str:
    return f"a branch named {name!r} already exists; choose another name (list_branches shows the names in use)"


def _check_deletable(branch: Branch, children: tuple[str, ...]) -> None:
    """Neon's own rules, checked before anyone is asked (in every access mode)."""
    if branch.default:
        raise InvalidInput(
            f"branch {branch.name} is the project's default branch: Neon does not delete it. Make another branch "
            "the default first (Neon's console or API), then delete this one"
        )
    if branch.parent_id is None:
        raise InvalidInput(f"branch {branch.name} is a root branch of the project: Neon does not delete root branches")
    if children:
        raise InvalidInput(
            f"branch {branch.name} has child branches ({_names(children)}): Neon deletes a branch only without "
            "children. Delete those first (delete_branch on each), then this one"
        )
