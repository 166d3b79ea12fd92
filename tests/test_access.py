"""The access verdict for operations that are not SQL (``server.access``): a pure table, like the SQL policy's.

Each row is (operation, access mode, protected?, destructive?) → allow / confirm / refuse. The tools' own tests
(tests/neon/) check that each service asks this verdict and acts on it; here every cell of the table is pinned.
"""

from __future__ import annotations

import pytest

from server import access
from server.errors import PolicyViolation

P = "it is the production branch"

TABLE = [
    # operation, mode, protected_because, destructive, expected
    ("create_project", "read-only", None, False, "refuse"),
    ("create_project", "branches", None, False, "allow"),
    ("create_project", "full", None, False, "allow"),
    ("create_branch", "read-only", None, False, "refuse"),
    ("create_branch", "branches", P, False, "allow"),
    ("create_branch", "full", P, False, "allow"),
    ("create_read_replica", "read-only", None, False, "refuse"),
    ("create_read_replica", "branches", P, False, "allow"),
    ("migrate_plan", "read-only", None, False, "refuse"),
    ("migrate_plan", "branches", P, True, "allow"),
    ("migrate_apply", "read-only", None, False, "refuse"),
    ("migrate_apply", "branches", None, False, "allow"),
    ("migrate_apply", "branches", None, True, "confirm"),
    ("migrate_apply", "branches", P, False, "confirm"),
    ("migrate_apply", "full", None, False, "allow"),
    ("migrate_apply", "full", P, True, "confirm"),
    ("configure_compute", "read-only", None, False, "refuse"),
    ("configure_compute", "branches", None, False, "allow"),
    ("configure_compute", "branches", P, False, "confirm"),
    ("configure_compute", "full", P, False, "confirm"),
    ("manage_compute", "read-only", P, False, "refuse"),
    ("manage_compute", "full", None, False, "allow"),
    ("manage_compute", "branches", P, False, "confirm"),
    ("create_role", "read-only", None, False, "refuse"),
    ("create_role", "branches", None, False, "allow"),
    ("create_role", "branches", P, False, "refuse"),
    ("create_role", "full", None, False, "allow"),
    ("create_role", "full", P, False, "confirm"),
]
for _operation in ("delete_project", "delete_branch", "reset_branch", "restore_branch"):
    TABLE += [
        (_operation, "read-only", None, False, "refuse"),
        (_operation, "branches", None, False, "confirm"),
        (_operation, "branches", P, False, "refuse"),
        (_operation, "full", None, False, "confirm"),
        (_operation, "full", P, False, "confirm"),
    ]


@pytest.mark.parametrize(("operation", "mode", "protected", "destructive", "expected"), TABLE)
def test_verdict(
    operation: access.Operation, mode: access.AccessMode, protected: str | None, destructive: bool, expected: str
) -> None:
    verdict = access.decide(operation, mode, branch="production", protected_because=protected, destructive=destructive)
    assert verdict.action == expected
    assert verdict.needs_confirmation is (expected == "confirm")
    if expected == "refuse":
        assert verdict.reason
        with pytest.raises(PolicyViolation, match=r"refused|protected"):
            verdict.enforced()


def test_every_operation_is_in_the_table() -> None:
    named = {row[0] for row in TABLE}
    assert named == set(access.Operation.__args__)  # type: ignore[attr-defined]


def test_refusals_say_what_to_do_instead() -> None:
    role = access.decide("create_role", "branches", branch="production", protected_because=P)
    assert "migrate" in role.reason and "create_branch parent=production" in role.reason
    reset = access.decide("reset_branch", "branches", branch="production", protected_because=P)
    assert "create_branch parent=production" in reset.reason and "access mode full" in reset.reason
    project = access.decide("delete_project", "branches", branch="production", protected_because=P)
    assert "every branch" in project.reason and "access mode full" in project.reason
    read_only = access.decide("migrate_plan", "read-only")
    assert read_only.reason.startswith("access mode read-only") and "migrate refused" in read_only.reason


@pytest.mark.parametrize(
    ("mode", "protected", "on_a_branch", "expected"),
    [
        ("branches", None, True, "full"),
        ("branches", P, True, "read-only"),
        ("branches", None, False, "read-only"),
        ("full", P, True, "full"),
        ("read-only", None, True, "read-only"),
    ],
)
def test_the_sql_mode_at_a_place(
    mode: access.AccessMode, protected: str | None, on_a_branch: bool, expected: str
) -> None:
    assert access.mode_at(mode, protected, on_a_branch=on_a_branch) == expected
