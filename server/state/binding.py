"""What a confirmation is bound to: the identity and size of each object a change will touch.

A human confirms words ("drop app.scratch (≈3 rows)"), but a change runs on objects. Between the question and the
run, another object can take the name (a rename) or the object can grow; the words still match. So a change also
gives its ``Binding``: each object it touches, by identity (an OID, a Neon id) and size, as read when the human is
asked. It is read again before the change runs, and ``differences`` says what changed materially; a change whose
objects differ does not run (``server.mcp.confirmations``).

A binding is plain data (it is stored with a pending operation, which any replica may replay): ``to_json`` and
``from_json`` convert it.

Reading it again before the run leaves a moment in which a name could still change hands. So where objects have
OIDs, the run itself holds them (``Held``): in its own transaction, before its first statement, it locks each bound
table or view by name (a rename then waits for the run to end) and checks that the name still resolves to the OID
the human was shown; otherwise nothing runs (``server.sql.database``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

__all__ = ["Binding", "Bound", "Held", "describe", "differences", "from_json", "to_json"]

_ROWS_SLACK = 10
"""Rows a table may gain (beyond a tenth of its size) before the growth counts: ordinary traffic goes on meanwhile."""
_BYTES_SLACK = 1 << 20


@dataclass(frozen=True, slots=True)
class Bound:
    """One object a change will touch, as it was when read."""

    kind: str
    """Which namespace ``name`` is looked up in: ``relation``, ``schema``, ``branch``, …"""
    name: str
    """How the human reads it (the name the change uses)."""
    identity: str
    """What makes it this object and no other, in words (``table, oid 16384``, ``branch br-…``); empty when no
    object has the name now."""
    rows: int | None = None
    """Rows it holds (PostgreSQL's estimate or statistics, whichever is larger), when it holds rows."""
    bytes: int | None = None
    """Its size on disk, with indexes and TOAST, when it has one."""


Binding = tuple[Bound, ...]


@dataclass(frozen=True, slots=True)
class Held:
    """A bound object a run holds in its own transaction: the name as SQL (quoted), the OID it must resolve to."""

    kind: Literal["relation", "schema"]
    sql_name: str
    oid: int
    lockable: bool
    """A table, partitioned table, view, materialized view or foreign table (``LOCK TABLE`` takes these)."""


def describe(binding: Binding) -> str:
    """Lines for the human: each object as it is now. Sizes are rounded (two significant digits), so that asking
    again about an unchanged object gives the same text (an answer is matched to its question by the text)."""
    if not binding:
        return ""
    lines = ["Bound to these objects as they are now (checked again before it runs):"]
    for bound in binding:
        if not bound.identity:
            lines.append(f"  {bound.name}: does not exist now")
            continue
        facts = [bound.identity]
        if bound.rows is not None:
            facts.append(f"≈{_round(bound.rows):,} rows")
        if bound.bytes is not None:
            facts.append(_size(bound.bytes))
        lines.append(f"  {bound.name}: " + ", ".join(facts))
    return "\n".join(lines)


def differences(before: Binding, now: Binding) -> list[str]:
    """What changed materially between two readings of the same change's objects; empty when nothing did.

    Material: another object (or none) under a name, a different kind, or growth beyond ordinary traffic (more than
    a tenth and more than 10 rows, or 1 MiB). Shrinking is not material: the change then touches less than the
    human agreed to.
    """
    found: list[str] = []
    then = {(b.kind, b.name): b for b in before}
    current = {(b.kind, b.name): b for b in now}
    for key in sorted(then.keys() | current.keys()):
        old, new = then.get(key), current.get(key)
        name = key[1]
        if old is None or new is None or old.identity != new.identity:
            found.append(f"{name} is {_identity(new)} now, not {_identity(old)}")
        elif _grew(old.rows, new.rows, _ROWS_SLACK):
            found.append(f"{name} grew from ≈{old.rows:,} to ≈{new.rows:,} rows")
        elif _grew(old.bytes, new.bytes, _BYTES_SLACK):
            found.append(f"{name} grew from {_size(old.bytes or 0)} to {_size(new.bytes or 0)}")
    return found


def to_json(binding: Binding) -> list[dict[str, Any]]:
    return [asdict(bound) for bound in binding]


def from_json(data: Sequence[dict[str, Any]]) -> Binding:
    return tuple(Bound(**item) for item in data)


def _identity(bound: Bound | None) -> str:
    if bound is None or not bound.identity:
        return "absent"
    return bound.identity


def _grew(old: int | None, new: int | None, slack: int) -> bool:
    if old is None or new is None:
        return old != new
    return new > old + max(slack, old // 10)


def _round(value: int) -> int:
    """``value`` to two significant digits."""
    if value < 100:
        return value
    scale = 10 ** (len(str(value)) - 2)
    return int(round(value / scale) * scale)


def _size(num: int) -> str:
    value = float(_round(num))
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" or value >= 10 else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"
