"""Summarising PostgreSQL's ``EXPLAIN (FORMAT JSON)`` output for a model.

A raw plan is long and repetitive; what a model needs from it fits in a few lines: the total cost and time, the nodes
that cost the most themselves, sequential scans over large tables, row estimates that missed by more than 10×, sorts
and hashes that spilled to disk, buffer hits and reads, JIT. Pure functions over the JSON document (a list holding
one object with ``Plan``), no I/O: table sizes for "large" come from the caller.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, Field, WithJsonSchema

__all__ = [
    "LARGE_TABLE_ROWS",
    "MISS_FACTOR",
    "Buffers",
    "EstimateMiss",
    "Jit",
    "NodeCost",
    "PlanSummary",
    "SeqScan",
    "Spill",
    "plan_of",
    "scanned_tables",
    "summarise",
    "total_cost",
    "used_indexes",
]


def _items(description: str) -> WithJsonSchema:
    """An array declared without a per-item schema: validating every item costs a client more than it tells it."""
    return WithJsonSchema({"type": "array", "description": description})


LARGE_TABLE_ROWS = 10_000
"""A sequential scan is reported when its table holds at least this many rows (planner estimate)."""
MISS_FACTOR = 10.0
"""A row estimate is reported when it is off by more than this factor."""
_MISS_MIN_ROWS = 100
"""… and the larger side, over all loops, reaches this many rows (an estimate of 1 that found 3 is noise)."""
_TOP = 5
_LABEL_CHARS = 160


class NodeCost(BaseModel):
    node: str = Field(description="the plan node, e.g. 'Seq Scan on public.orders'")
    self_cost: float = Field(description="planner cost of the node itself (its total minus its children's)")
    self_ms: float | None = Field(default=None, description="time spent in the node itself (ANALYZE)")
    share: float = Field(description="its share of the plan's time (ANALYZE) or cost, 0 to 1")
    rows_estimated: float
    rows_actual: float | None = Field(default=None, description="rows per loop (ANALYZE)")
    loops: int | None = None


class SeqScan(BaseModel):
    relation: str
    table_rows: int | None = Field(description="the planner's estimate of the table's rows")
    filter: str | None = None
    rows_estimated: float
    rows_actual: float | None = None
    rows_removed_by_filter: float | None = None


class EstimateMiss(BaseModel):
    node: str
    rows_estimated: float
    rows_actual: float
    loops: int
    factor: float = Field(description="how many times the estimate was off (either way)")


class Spill(BaseModel):
    node: str
    operation: str = Field(description="sort, hash or hash aggregate")
    detail: str
    disk_kb: int | None = None


class Buffers(BaseModel):
    shared_hit: int
    shared_read: int
    shared_dirtied: int
    shared_written: int
    temp_read: int
    temp_written: int

    @property
    def hit_ratio(self) -> float | None:
        total = self.shared_hit + self.shared_read
        return self.shared_hit / total if total else None


class Jit(BaseModel):
    functions: int
    total_ms: float | None = None


class Trigger(BaseModel):
    name: str
    relation: str | None = None
    ms: float
    calls: int


class PlanSummary(BaseModel):
    """What matters in one plan."""

    total_cost: float
    startup_cost: float
    rows_estimated: float
    rows_actual: float | None = None
    planning_ms: float | None = None
    execution_ms: float | None = None
    nodes: int = Field(description="plan nodes in all")
    costliest_nodes: Annotated[
        list[NodeCost], _items("{node, self_cost, self_ms, share, rows_estimated, rows_actual, loops}")
    ] = Field(default_factory=list)
    seq_scans: Annotated[
        list[SeqScan],
        _items(
            "sequential scans of large tables: {relation, table_rows, filter, rows_estimated, rows_actual, "
            "rows_removed_by_filter}"
        ),
    ] = Field(default_factory=list)
    estimate_misses: Annotated[list[EstimateMiss], _items("{node, rows_estimated, rows_actual, loops, factor}")] = (
        Field(default_factory=list)
    )
    spills: Annotated[list[Spill], _items("sorts and hashes that went to disk: {node, operation, detail, disk_kb}")] = (
        Field(default_factory=list)
    )
    buffers: Buffers | None = Field(default=None, description="blocks the execution touched (ANALYZE)")
    jit: Jit | None = None
    triggers: Annotated[list[Trigger], _items("{name, relation, ms, calls}")] = Field(default_factory=list)
    settings: dict[str, str] = Field(default_factory=dict, description="planner settings that differ from defaults")


@dataclass(frozen=True, slots=True)
class _Walked:
    node: dict[str, Any]
    label: str
    self_cost: float
    self_ms: float | None


def plan_of(document: Any) -> dict[str, Any]:
    """The top object of an EXPLAIN (FORMAT JSON) result (a list of one); raises ``ValueError`` on anything else."""
    if isinstance(document, list) and document and isinstance(document[0], dict) and "Plan" in document[0]:
        top: dict[str, Any] = document[0]
        return top
    raise ValueError("not an EXPLAIN (FORMAT JSON) document")


def total_cost(document: Any) -> float:
    return float(plan_of(document)["Plan"]["Total Cost"])


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans") or ():
        yield from _nodes(child)


def _relation(node: Mapping[str, Any]) -> str | None:
    name = node.get("Relation Name")
    if name is None:
        return None
    schema = node.get("Schema")
    return f"{schema}.{name}" if schema else str(name)


def scanned_tables(document: Any) -> set[tuple[str | None, str]]:
    """``(schema, table)`` of every sequential scan (schema is None without VERBOSE)."""
    return {
        (node.get("Schema"), str(node["Relation Name"]))
        for node in _nodes(plan_of(document)["Plan"])
        if node.get("Node Type") == "Seq Scan" and node.get("Relation Name")
    }


def used_indexes(document: Any) -> set[str]:
    """Names of the indexes the plan reads."""
    return {str(node["Index Name"]) for node in _nodes(plan_of(document)["Plan"]) if node.get("Index Name")}


_AGGREGATES = {"Hashed": "HashAggregate", "Sorted": "GroupAggregate", "Mixed": "MixedAggregate"}


def _label(node: Mapping[str, Any]) -> str:
    kind = str(node.get("Node Type", "?"))
    if kind == "Aggregate":
        kind = _AGGREGATES.get(str(node.get("Strategy")), kind)
    if node.get("Parallel Aware"):
        kind = f"Parallel {kind}"
    join = node.get("Join Type")
    if join and join != "Inner":
        kind = f"{kind} ({join})"
    relation = _relation(node)
    if node.get("Index Name"):
        kind += f" using {node['Index Name']}"
    if relation:
        alias = node.get("Alias")
        kind += f" on {relation}" + (f" {alias}" if alias and alias != node.get("Relation Name") else "")
    elif node.get("CTE Name"):
        kind += f" on {node['CTE Name']}"
    elif node.get("Function Name"):
        kind += f" on {node['Function Name']}()"
    if node.get("Sort Key"):
        kind += f" by {', '.join(map(str, node['Sort Key']))}"
    elif node.get("Group Key"):
        kind += f" by {', '.join(map(str, node['Group Key']))}"
    if node.get("Parent Relationship") in ("InitPlan", "SubPlan"):
        kind = f"{node.get('Subplan Name') or node['Parent Relationship']}: {kind}"
    return kind if len(kind) <= _LABEL_CHARS else kind[: _LABEL_CHARS - 1] + "…"


def _walk(plan: dict[str, Any], analyzed: bool) -> list[_Walked]:
    out = []
    for node in _nodes(plan):
        children = node.get("Plans") or ()
        self_cost = max(0.0, float(node["Total Cost"]) - sum(float(c["Total Cost"]) for c in children))
        self_ms = None
        if analyzed and "Actual Total Time" in node:
            spent = _spent(node) - sum(_spent(c) for c in children)
            self_ms = max(0.0, spent)
        out.append(_Walked(node, _label(node), self_cost, self_ms))
    return out


def _spent(node: Mapping[str, Any]) -> float:
    """Milliseconds in a node over all its loops (per-loop averages times loops)."""
    return float(node.get("Actual Total Time") or 0.0) * int(node.get("Actual Loops") or 0)


def _costliest(walked: list[_Walked], analyzed: bool) -> list[NodeCost]:
    def key(w: _Walked) -> float:
        return (w.self_ms or 0.0) if analyzed else w.self_cost

    total = sum(key(w) for w in walked) or 1.0
    top = sorted(walked, key=key, reverse=True)[:_TOP]
    return [
        NodeCost(
            node=w.label,
            self_cost=round(w.self_cost, 2),
            self_ms=None if w.self_ms is None else round(w.self_ms, 3),
            share=round(key(w) / total, 3),
            rows_estimated=float(w.node.get("Plan Rows", 0)),
            rows_actual=_actual(w.node),
            loops=w.node.get("Actual Loops"),
        )
        for w in top
        if key(w) > 0
    ]


def _actual(node: Mapping[str, Any]) -> float | None:
    value = node.get("Actual Rows")
    return None if value is None else float(value)


def _seq_scans(walked: list[_Walked], table_rows: Mapping[tuple[str | None, str], int]) -> list[SeqScan]:
    found = []
    for w in walked:
        node = w.node
        if node.get("Node Type") != "Seq Scan" or not node.get("Relation Name"):
            continue
        rows = table_rows.get((node.get("Schema"), str(node["Relation Name"])))
        loops = int(node.get("Actual Loops") or 1)
        removed = node.get("Rows Removed by Filter")
        scanned = None
        if "Actual Rows" in node:
            scanned = (float(node["Actual Rows"]) + float(removed or 0)) * loops
        size = rows if rows is not None and rows >= 0 else scanned
        if size is None or size < LARGE_TABLE_ROWS:
            continue
        found.append(
            SeqScan(
                relation=_relation(node) or "?",
                table_rows=rows if rows is not None and rows >= 0 else None,
                filter=node.get("Filter"),
                rows_estimated=float(node.get("Plan Rows", 0)),
                rows_actual=_actual(node),
                rows_removed_by_filter=None if removed is None else float(removed) * loops,
            )
        )
    return found


def _misses(walked: list[_Walked]) -> list[EstimateMiss]:
    found = []
    for w in walked:
        node = w.node
        loops = int(node.get("Actual Loops") or 0)
        if loops == 0 or "Actual Rows" not in node:
            continue  # not analysed, or never executed
        estimated, actual = float(node.get("Plan Rows", 0)), float(node["Actual Rows"])
        factor = max(estimated, actual, 1.0) / max(min(estimated, actual), 1.0)
        if factor > MISS_FACTOR and max(estimated, actual) * loops >= _MISS_MIN_ROWS:
            found.append(
                EstimateMiss(
                    node=w.label, rows_estimated=estimated, rows_actual=actual, loops=loops, factor=round(factor, 1)
                )
            )
    return sorted(found, key=lambda m: m.factor, reverse=True)[:_TOP]


def _sort_spill(label: str, info: Mapping[str, Any]) -> Spill | None:
    if info.get("Sort Space Type") != "Disk":
        return None
    used = info.get("Sort Space Used")
    return Spill(
        node=label,
        operation="sort",
        detail=f"{info.get('Sort Method', 'sort')}, {used} kB on disk",
        disk_kb=None if used is None else int(used),
    )


def _spills(walked: list[_Walked]) -> list[Spill]:
    found: list[Spill] = []
    for w in walked:
        node = w.node
        kind = node.get("Node Type")
        if kind == "Sort":
            for info in (node, *(node.get("Workers") or ())):
                spill = _sort_spill(w.label, info)
                if spill is not None:
                    found.append(spill)
                    break
        elif kind == "Hash" and int(node.get("Hash Batches") or 1) > 1:
            found.append(
                Spill(
                    node=w.label,
                    operation="hash",
                    detail=f"{node['Hash Batches']} batches (planned {node.get('Original Hash Batches', '?')}), "
                    f"peak memory {node.get('Peak Memory Usage', '?')} kB",
                )
            )
        elif kind == "Aggregate" and (int(node.get("HashAgg Batches") or 1) > 1 or int(node.get("Disk Usage") or 0)):
            disk = int(node.get("Disk Usage") or 0)
            found.append(
                Spill(
                    node=w.label,
                    operation="hash aggregate",
                    detail=f"{node.get('HashAgg Batches', '?')} batches, {disk} kB on disk",
                    disk_kb=disk,
                )
            )
    return found


def _buffers(plan: Mapping[str, Any]) -> Buffers:
    def get(key: str) -> int:
        return int(plan.get(key) or 0)

    return Buffers(
        shared_hit=get("Shared Hit Blocks"),
        shared_read=get("Shared Read Blocks"),
        shared_dirtied=get("Shared Dirtied Blocks"),
        shared_written=get("Shared Written Blocks"),
        temp_read=get("Temp Read Blocks"),
        temp_written=get("Temp Written Blocks"),
    )


def _jit(top: Mapping[str, Any]) -> Jit | None:
    jit = top.get("JIT")
    if not isinstance(jit, dict):
        return None
    timing = jit.get("Timing")
    total = timing.get("Total") if isinstance(timing, dict) else None
    return Jit(functions=int(jit.get("Functions") or 0), total_ms=None if total is None else float(total))


def _triggers(top: Mapping[str, Any]) -> list[Trigger]:
    return [
        Trigger(
            name=str(t.get("Trigger Name") or t.get("Constraint Name") or "?"),
            relation=t.get("Relation"),
            ms=float(t.get("Time") or 0.0),
            calls=int(t.get("Calls") or 0),
        )
        for t in top.get("Triggers") or ()
    ]


def summarise(document: Any, *, table_rows: Mapping[tuple[str | None, str], int] | None = None) -> PlanSummary:
    """The summary of one plan. ``table_rows`` maps ``(schema, table)`` to the planner's row estimate of the tables
    in ``scanned_tables(document)``; a sequential scan counts as large by it, else by the rows it actually read."""
    top = plan_of(document)
    plan = top["Plan"]
    analyzed = "Actual Total Time" in plan
    walked = _walk(plan, analyzed)
    settings = top.get("Settings")
    return PlanSummary(
        total_cost=float(plan["Total Cost"]),
        startup_cost=float(plan["Startup Cost"]),
        rows_estimated=float(plan.get("Plan Rows", 0)),
        rows_actual=_actual(plan),
        planning_ms=top.get("Planning Time"),
        execution_ms=top.get("Execution Time"),
        nodes=len(walked),
        costliest_nodes=_costliest(walked, analyzed),
        seq_scans=_seq_scans(walked, table_rows or {}),
        estimate_misses=_misses(walked),
        spills=_spills(walked),
        buffers=_buffers(plan) if analyzed else None,
        jit=_jit(top),
        triggers=_triggers(top),
        settings={str(k): str(v) for k, v in settings.items()} if isinstance(settings, dict) else {},
    )
