"""What a copy of a branch's data brings along: the roles and databases in it, as records of the new branch.

Role records carry passwords, which the data does not reveal: a copy's roles take them from the records of the branch
the data came from, except when that branch is protected: then the copy's roles get passwords of their own (Neon's
rule, so that a branch of production does not open production), set in the copy's server by ``set_passwords``.
"""

from __future__ import annotations

from dataclasses import replace

from . import catalog, ids
from .records import Branch, Database, Project, Role
from .runtime import Runtime

__all__ = ["inherit", "reissue_passwords", "set_passwords", "sync"]


def inherit(rt: Runtime, parent: Branch, branch: Branch) -> tuple[list[Role], list[Database]]:
    """The parent's roles and databases, as records of ``branch`` (a copy has the same ones); new passwords when the
    parent is protected."""
    moment = ids.now()
    roles = [
        replace(
            role,
            branch_id=branch.id,
            created_at=moment,
            updated_at=moment,
            password=ids.password() if parent.protected and role.password is not None else role.password,
        )
        for role in rt.store.list(Role, project_id=parent.project_id, branch_id=parent.id)
    ]
    databases = [
        replace(db, id=rt.store.next_id("database"), branch_id=branch.id, created_at=moment, updated_at=moment)
        for db in rt.store.list(Database, project_id=parent.project_id, branch_id=parent.id)
    ]
    return roles, databases


def sync(
    rt: Runtime,
    branch: Branch,
    origin: Branch,
    *,
    roles: set[str] | None,
    databases: dict[str, str] | None,
) -> None:
    """Replace ``branch``'s role and database records by those its new data, copied from ``origin``, holds.

    A copy at head has exactly ``origin``'s (``roles`` and ``databases`` are ``None``); a copy from the past has what
    existed then (``roles``, ``databases``: read from the restored server), with passwords from ``origin``'s records.
    """
    origin_roles = {r.name: r for r in rt.store.list(Role, project_id=origin.project_id, branch_id=origin.id)}
    origin_dbs = {d.name: d for d in rt.store.list(Database, project_id=origin.project_id, branch_id=origin.id)}
    if roles is not None and databases is not None:
        role_names = [name for name in origin_roles if name in roles]
        database_owners = dict(databases)
    else:
        role_names = list(origin_roles)
        database_owners = {name: db.owner_name for name, db in origin_dbs.items()}
    moment = ids.now()
    rt.store.delete_all(Role, project_id=branch.project_id, branch_id=branch.id)
    rt.store.delete_all(Database, project_id=branch.project_id, branch_id=branch.id)
    for name in role_names:
        rt.store.put(replace(origin_roles[name], branch_id=branch.id, updated_at=moment))
    for name, owner in database_owners.items():
        known = origin_dbs.get(name)
        created = known.created_at if known is not None else moment
        rt.store.put(Database(rt.store.next_id("database"), branch.project_id, branch.id, name, owner, created, moment))


def reissue_passwords(rt: Runtime, branch: Branch, keep: dict[str, str]) -> dict[str, str]:
    """Give ``branch``'s login roles passwords of their own: those in ``keep``, else new ones. Returns role name →
    password, to be set in the branch's server (``set_passwords``)."""
    passwords: dict[str, str] = {}
    moment = ids.now()
    for role in rt.store.list(Role, project_id=branch.project_id, branch_id=branch.id):
        if role.password is not None:
            passwords[role.name] = keep.get(role.name) or ids.password()
            rt.store.put(replace(role, password=passwords[role.name], updated_at=moment))
    return passwords


async def set_passwords(rt: Runtime, project: Project, timeline: str, passwords: dict[str, str]) -> None:
    """Set ``passwords`` in the server of ``timeline`` (held on a port of its own, so that no client reaches it before
    the old passwords are gone)."""
    if not passwords:
        return
    async with rt.computes.hold(timeline, port=None, password=project.superuser_password) as cluster:
        for name, password in passwords.items():
            await catalog.set_password(cluster, name, password)
