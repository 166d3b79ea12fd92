"""Restoring a branch: its data replaced by another branch's (or its own) at head or at a past point.

Restoring from the parent at head is Neon's *reset from parent*. The new data is copied into a new timeline first
(``create_timeline``); only then does the branch switch to it, and its active endpoints start again on it
(``start_compute``), at the same addresses. ``preserve_under_name`` keeps the old timeline as a new branch of that
name, which takes the branch's place in the tree (its parent, its children) and becomes the restored branch's parent,
as on Neon: "reset from parent" then undoes the restore, and restoring a root leaves one root. Without it the old data
is deleted; Neon requires it when the branch has children or is restored onto its own history. A protected branch
cannot be reset from its parent, and a restore from a protected branch gives the roles passwords of their own.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from . import ids, inheritance, views
from .branching import Copy, check_window, copy_data, on_copy, parse_point
from .endpoints import Endpoints
from .errors import bad_request, unprocessable
from .operations import Step
from .records import Branch, Database, Project, Role
from .requests import string
from .routing import route
from .runtime import Runtime

__all__ = ["Restores"]


class Restores:
    def __init__(self, rt: Runtime, endpoints: Endpoints) -> None:
        self._rt = rt
        self._endpoints = endpoints

    @route("restore_branch", "POST", "/projects/{project_id}/branches/{branch_id}/restore")
    async def restore(self, project_id: str, branch_id: str, body: dict[str, Any]) -> dict[str, Any]:
        project = self._rt.project(project_id)
        branch = self._rt.branch(project_id, branch_id)
        source_id = string(body, "source_branch_id", field="source_branch_id", required=True, max_length=60)
        assert source_id is not None
        source = self._rt.branch(project_id, source_id)
        point = parse_point(
            lsn=body.get("source_lsn"),
            timestamp=body.get("source_timestamp"),
            lsn_field="source_lsn",
            time_field="source_timestamp",
        )
        preserve = body.get("preserve_under_name") or None
        if preserve is not None:
            preserve = string(body, "preserve_under_name", field="preserve_under_name")
        if branch.protected and source.id == branch.parent_id:
            raise unprocessable(
                f"branch {branch.id} is protected: protected branches cannot be reset from their parent; "
                "unprotect it first"
            )
        if source.id == branch.id and point.is_head:
            raise bad_request("restoring a branch onto itself needs source_lsn or source_timestamp")
        if source.id == branch.id and preserve is None:
            raise bad_request("restoring a branch onto its own history needs preserve_under_name")
        if preserve is None and self._rt.children(branch):
            raise bad_request(f"branch {branch.id} has child branches: restoring it needs preserve_under_name")
        if preserve is not None:
            self._rt.check_branch_name_free(project_id, preserve)
        self._rt.operations.check([branch.id, source.id])
        if source.current_state != "ready":
            raise bad_request(f"branch {source.id} is not ready yet")
        check_window(project, source, point, history_seconds=self._rt.history_seconds)
        active = [e for e in self._rt.endpoints_of(branch) if e.current_state == "active"]
        operation = self._rt.operations.new(project_id, "create_timeline", branch_id=branch.id)

        async def run() -> None:
            copy = await copy_data(self._rt, project, source, point, run_on=None)
            passwords = None
            if source.protected and source.id != branch.id:
                passwords = self._own_passwords(branch, source, copy)
                try:
                    await inheritance.set_passwords(self._rt, project, copy.timeline, passwords)
                except BaseException:
                    await self._rt.drop_timeline(copy.timeline)
                    raise
            await self._swap(project, branch.id, source, copy, preserve, passwords)

        async def undo() -> None:
            fresh = self._rt.store.get(Branch, branch.id)
            if fresh is not None and fresh.current_state == "resetting":
                self._rt.store.put(replace(fresh, current_state="ready", pending_state=None))

        steps: list[Step] = [(operation, run), *(self._endpoints.start_step(e) for e in active)]
        operations = self._rt.operations.submit(project_id, [branch.id, source.id], steps, cleanup=undo)
        moment = ids.now()
        branch = replace(branch, current_state="resetting", pending_state="ready", state_changed_at=moment)
        self._rt.store.put(branch)
        return {"branch": views.branch(branch), "operations": [views.operation(op) for op in operations]}

    def _own_passwords(self, branch: Branch, source: Branch, copy: Copy) -> dict[str, str]:
        """The passwords the login roles of a copy of protected ``source`` get on ``branch``: the ones the branch had,
        new ones for roles it did not have."""
        own = {r.name: r.password for r in self._rt.store.list(Role, project_id=branch.project_id, branch_id=branch.id)}
        return {
            role.name: own.get(role.name) or ids.password()
            for role in self._rt.store.list(Role, project_id=source.project_id, branch_id=source.id)
            if role.password is not None and (copy.roles is None or role.name in copy.roles)
        }

    async def _swap(
        self,
        project: Project,
        branch_id: str,
        source: Branch,
        copy: Copy,
        preserve: str | None,
        passwords: dict[str, str] | None,
    ) -> None:
        """Put ``copy`` under the branch; keep the old timeline as branch ``preserve`` (the branch's new parent) or
        delete it. ``passwords``: the roles' own passwords (set in ``copy`` already), for a copy of a protected
        branch."""
        old = self._rt.store.get(Branch, branch_id)
        assert old is not None
        await self._rt.computes.stop(old.timeline)
        new = on_copy(old, copy, from_parent=source.id == old.parent_id)
        moment = new.updated_at
        if source.id == old.parent_id:
            new = replace(new, last_reset_at=moment)
        old_roles = self._rt.store.list(Role, project_id=project.id, branch_id=old.id)
        old_databases = self._rt.store.list(Database, project_id=project.id, branch_id=old.id)
        with self._rt.store.transaction():
            if preserve is not None:
                kept = replace(
                    old,
                    id=ids.branch_id(),
                    name=preserve,
                    default=False,
                    protected=False,
                    expires_at=None,
                    ttl_interval_seconds=None,
                    created_at=moment,
                    updated_at=moment,
                    state_changed_at=moment,
                    current_state="ready",
                    pending_state=None,
                    annotation={},
                )
                new = replace(
                    new,
                    restored_as=kept.id,
                    parent_id=kept.id,
                    parent_lsn=None,
                    parent_timestamp=moment,
                    init_source="parent-data",
                )
                self._rt.store.put(kept)
                for role in old_roles:
                    self._rt.store.put(replace(role, branch_id=kept.id))
                for db in old_databases:
                    self._rt.store.put(replace(db, id=self._rt.store.next_id("database"), branch_id=kept.id))
                for child in self._rt.children(old):
                    self._rt.store.put(replace(child, parent_id=kept.id))
            self._rt.store.put(new)
            origin = source if source.id != old.id else old
            inheritance.sync(self._rt, new, origin, roles=copy.roles, databases=copy.databases)
            if passwords is not None and source.id != old.id:
                inheritance.reissue_passwords(self._rt, new, passwords)
        if preserve is None:
            await self._rt.drop_timeline(old.timeline)
