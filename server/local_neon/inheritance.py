"""What a copy of a branch's data brings along: the roles and databases in it, as records of the new branch.

Role records carry passwords, which the data does not reveal: a copy's roles take them from the records of the branch
the data came from.
"""

from __future__ import annotations

from dataclasses import replace

from . import ids
from .records import Branch, Database, Role
from .runtime import Runtime

__all__ = ["inherit", "sync"]


def inherit(rt: Runtime, parent: Branch, branch: Branch) -> tuple[list[Role], list[Database]]:
    """The parent's roles and databases, as records of ``branch`` (a copy has the same ones)."""
    moment = ids.now()
    roles = [
        replace(role, branch_id=branch.id, created_at=moment, updated_at=moment)
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
