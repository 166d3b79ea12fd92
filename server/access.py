"""The access verdict for every operation that is not SQL: changing projects, branches, computes, roles and schemas.

A pure function, like the SQL policy (``server.sql.policy``): from the operation, the access mode and whether its
branch is protected, to allow, confirm or refuse with the reason. Services ask it before they plan anything and raise
``PolicyViolation`` with the reason on a refusal; a ``confirm`` verdict is what makes their change need a human's
yes (``Verdict.enforced`` raises for a refusal). The rules:

- ``read-only``: nothing changes (every operation here is refused).
- Operations that only read their branch (a new branch of it, a read replica, a migration tested on a copy) run on
  any branch in the other modes, and so does creating a project (it touches nothing that exists).
- A migration's apply, and a compute's configuration, start, suspend or restart, are confirmed on a protected branch
  (production, the default branch, Neon-protected ones) in both other modes; an apply is also confirmed when its
  statements are destructive.
- ``branches``: every other change runs on unprotected branches only.
- ``full``: every other change runs everywhere, confirmed on a protected branch; deleting, resetting or restoring a
  branch, and deleting a project, are always confirmed.

Deleting a project deletes all its branches: its verdict is given for the project's protected branch, if it has one
(its default branch always is), so in ``branches`` it is refused.

The mode of SQL at a place (``mode_at``) follows the same rule: ``branches`` is ``full`` on unprotected branches and
``read-only`` on protected ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .errors import PolicyViolation
from .settings import AccessMode

__all__ = ["Operation", "Verdict", "decide", "mode_at"]

Operation = Literal[
    "create_project",
    "delete_project",
    "create_branch",
    "delete_branch",
    "reset_branch",
    "restore_branch",
    "configure_compute",
    "manage_compute",
    "create_read_replica",
    "create_role",
    "migrate_plan",
    "migrate_apply",
]

_READS_THE_BRANCH = frozenset({"create_project", "create_branch", "create_read_replica", "migrate_plan"})
"""Operations that only read their branch (a copy, a replica, a test run on a copy), or touch nothing that exists (a
new project): allowed on any branch."""
_COMPUTES = frozenset({"configure_compute", "manage_compute"})
"""Operations that change how a branch runs, never its data: confirmed on a protected branch in every mode."""
_THROW_DATA_AWAY = frozenset({"delete_project", "delete_branch", "reset_branch", "restore_branch"})
"""Operations a human confirms on any branch: they throw the branch's current data away."""
_READ_ONLY_NOUN = {
    "create_project": "projects are not changed",
    "delete_project": "projects are not changed",
    "create_branch": "branches are not changed",
    "delete_branch": "branches are not changed",
    "reset_branch": "branches are not changed",
    "restore_branch": "branches are not changed",
    "configure_compute": "computes are not changed",
    "manage_compute": "computes are not changed",
    "create_read_replica": "computes are not changed",
    "create_role": "no role is created",
    "migrate_plan": "migrations are not planned (a plan creates a branch)",
    "migrate_apply": "migrations are not applied",
}


@dataclass(frozen=True, slots=True)
class Verdict:
    """What may happen: ``allow`` runs, ``confirm`` runs after a human's yes, ``refuse`` does not run (``reason``)."""

    action: Literal["allow", "confirm", "refuse"]
    reason: str = ""

    @property
    def needs_confirmation(self) -> bool:
        return self.action == "confirm"

    def enforced(self) -> Verdict:
        """This verdict, unless it refuses: then ``PolicyViolation`` with the reason."""
        if self.action == "refuse":
            raise PolicyViolation(self.reason)
        return self


_ALLOW = Verdict("allow")


def mode_at(mode: AccessMode, protected_because: str | None, *, on_a_branch: bool = True) -> AccessMode:
    """The SQL policy's mode at a place: ``branches`` is ``full`` on an unprotected branch, else ``read-only``."""
    if mode != "branches":
        return mode
    return "full" if on_a_branch and protected_because is None else "read-only"


def decide(
    operation: Operation,
    mode: AccessMode,
    *,
    branch: str | None = None,
    protected_because: str | None = None,
    destructive: bool = False,
) -> Verdict:
    """The verdict on ``operation`` on ``branch`` (``protected_because`` says why it is protected, None if not).

    ``destructive``: the operation's content throws data away (a migration with DROP, …): confirmed like a change to
    a protected branch.
    """
    if mode == "read-only":
        return Verdict("refuse", f"access mode read-only: {_READ_ONLY_NOUN[operation]} ({_name(operation)} refused)")
    if operation in _READS_THE_BRANCH:
        return _ALLOW
    protected = Verdict("confirm", f"branch {branch} is protected ({protected_because})")
    if operation in _COMPUTES:
        return protected if protected_because is not None else _ALLOW
    if operation == "migrate_apply":
        # The way schema changes reach a protected branch in every mode: tested on a copy first, then confirmed.
        if protected_because is not None:
            return protected
        return Verdict("confirm", "it holds destructive statements") if destructive else _ALLOW
    if protected_because is not None and mode == "branches":
        return Verdict("refuse", _refusal_in_branches_mode(operation, branch, protected_because))
    if operation in _THROW_DATA_AWAY:
        return Verdict("confirm", f"{operation} throws away the branch's current data")
    return protected if protected_because is not None else _ALLOW


def _name(operation: Operation) -> str:
    return "migrate" if operation.startswith("migrate") else operation


def _refusal_in_branches_mode(operation: Operation, branch: str | None, protected_because: str | None) -> str:
    head = f"branch {branch} is protected ({protected_because}): in access mode branches, "
    if operation == "create_role":
        return head + (
            "role changes on it go through migrate (write the CREATE ROLE and GRANTs as a migration, review it on a "
            f"branch, then apply it). To try the role now, create it on a branch of it (create_branch parent={branch})."
        )
    if operation == "delete_project":
        return head + (
            "delete_project is refused: deleting a project deletes every branch in it. Deleting a project needs the "
            "operator to choose access mode full (the user then confirms it)."
        )
    return head + (
        f"{operation} runs on unprotected branches only. Work on a branch of it instead (create_branch parent="
        f"{branch}); changing a protected branch needs the operator to choose access mode full."
    )
