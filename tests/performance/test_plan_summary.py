"""The plan summariser on EXPLAIN (FORMAT JSON) documents shaped like PostgreSQL's (pure, no database)."""

from __future__ import annotations

from typing import Any

import pytest

from server.performance.plan_summary import plan_of, scanned_tables, summarise, total_cost, used_indexes


def node(kind: str, cost: float, rows: float = 1, *children: dict[str, Any], **fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"Node Type": kind, "Startup Cost": 0.0, "Total Cost": cost, "Plan Rows": rows, **fields}
    if children:
        out["Plans"] = list(children)
    return out


def analysed(
    kind: str, cost: float, est: float, actual: float, ms: float, loops: int = 1, *children: Any, **f: Any
) -> dict[str, Any]:
    return node(
        kind, cost, est, *children, **{"Actual Total Time": ms, "Actual Rows": actual, "Actual Loops": loops, **f}
    )


def doc(plan: dict[str, Any], **top: Any) -> list[dict[str, Any]]:
    return [{"Plan": plan, **top}]


SCAN = {"Relation Name": "orders", "Schema": "shop", "Alias": "orders"}


@pytest.mark.parametrize(
    ("table_rows", "actual", "removed", "reported"),
    [
        ({("shop", "orders"): 200_000}, None, None, True),  # large by the planner's estimate
        ({("shop", "orders"): 9_999}, None, None, False),  # small
        ({}, None, None, False),  # unknown and not run: cannot tell
        ({}, 10, 20_000, True),  # unknown, but it read 20,010 rows
        ({("shop", "orders"): -1}, 10, 500, False),  # never analysed, read few rows
    ],
)
def test_sequential_scans_are_reported_on_large_tables_only(
    table_rows: dict[tuple[str, str], int], actual: float | None, removed: float | None, reported: bool
) -> None:
    fields: dict[str, Any] = {**SCAN, "Filter": "(customer_id = 42)"}
    if actual is not None:
        fields |= {
            "Actual Total Time": 1.0,
            "Actual Rows": actual,
            "Actual Loops": 1,
            "Rows Removed by Filter": removed,
        }
    summary = summarise(doc(node("Seq Scan", 4000.0, 40, **fields)), table_rows=table_rows)
    assert bool(summary.seq_scans) is reported
    if reported:
        (scan,) = summary.seq_scans
        assert scan.relation == "shop.orders" and scan.filter == "(customer_id = 42)"


@pytest.mark.parametrize(
    ("estimated", "actual", "loops", "factor"),
    [
        (1, 5_000, 1, 5_000.0),
        (1_000, 0, 1, 1_000.0),  # estimated rows that never came
        (100, 900, 1, None),  # 9×: under the threshold
        (1, 50, 1, None),  # 50×, but 50 rows in all: noise
        (1, 50, 10, 50.0),  # 50× over 10 loops: 500 rows
        (10, 10, 1, None),
    ],
)
def test_row_estimates_missed_by_more_than_ten_times(
    estimated: float, actual: float, loops: int, factor: float | None
) -> None:
    summary = summarise(doc(analysed("Seq Scan", 10.0, estimated, actual, 1.0, loops, **SCAN)))
    if factor is None:
        assert summary.estimate_misses == []
    else:
        (miss,) = summary.estimate_misses
        assert miss.factor == factor and miss.loops == loops


def test_nodes_that_never_ran_are_not_misses() -> None:
    summary = summarise(doc(analysed("Seq Scan", 10.0, 5_000, 0, 0.0, 0, **SCAN)))
    assert summary.estimate_misses == []


@pytest.mark.parametrize(
    ("plan", "operation", "detail"),
    [
        (
            analysed(
                "Sort",
                10,
                1,
                1,
                1.0,
                1,
                **{"Sort Method": "external merge", "Sort Space Used": 9_000, "Sort Space Type": "Disk"},
            ),
            "sort",
            "external merge, 9000 kB on disk",
        ),
        (
            analysed(
                "Sort",
                10,
                1,
                1,
                1.0,
                2,
                **{
                    "Sort Method": "quicksort",
                    "Sort Space Type": "Memory",
                    "Workers": [{"Sort Method": "external sort", "Sort Space Used": 100, "Sort Space Type": "Disk"}],
                },
            ),
            "sort",
            "external sort, 100 kB on disk",
        ),
        (
            analysed(
                "Hash", 10, 1, 1, 1.0, 1, **{"Hash Batches": 8, "Original Hash Batches": 1, "Peak Memory Usage": 4_000}
            ),
            "hash",
            "8 batches (planned 1), peak memory 4000 kB",
        ),
        (
            analysed(
                "Aggregate", 10, 1, 1, 1.0, 1, **{"Strategy": "Hashed", "HashAgg Batches": 5, "Disk Usage": 2_048}
            ),
            "hash aggregate",
            "5 batches, 2048 kB on disk",
        ),
    ],
)
def test_spills_to_disk(plan: dict[str, Any], operation: str, detail: str) -> None:
    (spill,) = summarise(doc(plan)).spills
    assert spill.operation == operation and spill.detail == detail


@pytest.mark.parametrize(
    "plan",
    [
        analysed("Sort", 10, 1, 1, 1.0, 1, **{"Sort Method": "quicksort", "Sort Space Type": "Memory"}),
        analysed("Hash", 10, 1, 1, 1.0, 1, **{"Hash Batches": 1}),
        analysed("Aggregate", 10, 1, 1, 1.0, 1, **{"Strategy": "Hashed", "HashAgg Batches": 1, "Disk Usage": 0}),
        node("Sort", 10),  # not analysed: nothing is known
    ],
)
def test_no_spill_in_memory(plan: dict[str, Any]) -> None:
    assert summarise(doc(plan)).spills == []


def test_costliest_nodes_by_own_cost_then_by_own_time() -> None:
    scan = node("Seq Scan", 900.0, 10, **SCAN)
    index = node("Index Scan", 50.0, 1, **{**SCAN, "Relation Name": "customers", "Index Name": "customers_pkey"})
    join = node("Nested Loop", 1_000.0, 10, scan, index)
    planned = summarise(doc(join))
    assert [n.node for n in planned.costliest_nodes] == [
        "Seq Scan on shop.orders",
        "Nested Loop",
        "Index Scan using customers_pkey on shop.customers orders",
    ]
    assert planned.costliest_nodes[0].self_cost == 900.0 and planned.costliest_nodes[1].self_cost == 50.0
    assert sum(n.share for n in planned.costliest_nodes) == pytest.approx(1.0, abs=0.01)
    # With ANALYZE the order is by own time: the index scan ran 100 loops of 0.5 ms.
    scan_run = analysed("Seq Scan", 900.0, 10, 100, 10.0, 1, **SCAN)
    index_run = analysed("Index Scan", 50.0, 1, 1, 0.5, 100, **{**SCAN, "Index Name": "customers_pkey"})
    timed = summarise(doc(analysed("Nested Loop", 1_000.0, 10, 100, 61.0, 1, scan_run, index_run)))
    assert [n.self_ms for n in timed.costliest_nodes] == [50.0, 10.0, 1.0]
    assert timed.costliest_nodes[0].loops == 100


@pytest.mark.parametrize(
    ("fields", "label"),
    [
        ({"Node Type": "Aggregate", "Strategy": "Hashed", "Group Key": ["o.status"]}, "HashAggregate by o.status"),
        ({"Node Type": "Aggregate", "Strategy": "Sorted"}, "GroupAggregate"),
        ({"Node Type": "Hash Join", "Join Type": "Left"}, "Hash Join (Left)"),
        ({"Node Type": "Hash Join", "Join Type": "Inner"}, "Hash Join"),
        ({"Node Type": "Seq Scan", "Parallel Aware": True, **SCAN, "Alias": "o"}, "Parallel Seq Scan on shop.orders o"),
        ({"Node Type": "CTE Scan", "CTE Name": "recent"}, "CTE Scan on recent"),
        ({"Node Type": "Function Scan", "Function Name": "generate_series"}, "Function Scan on generate_series()"),
        ({"Node Type": "Sort", "Sort Key": ["o.created DESC"]}, "Sort by o.created DESC"),
        (
            {"Node Type": "Result", "Parent Relationship": "InitPlan", "Subplan Name": "InitPlan 1"},
            "InitPlan 1: Result",
        ),
    ],
)
def test_node_labels(fields: dict[str, Any], label: str) -> None:
    kind = fields.pop("Node Type")
    top = node(kind, 5.0, 1, **fields)
    assert summarise(doc(top)).costliest_nodes[0].node == label


def test_buffers_jit_triggers_and_settings() -> None:
    plan = analysed(
        "ModifyTable",
        10.0,
        0,
        0,
        3.0,
        1,
        **{"Shared Hit Blocks": 90, "Shared Read Blocks": 10, "Temp Written Blocks": 4},
    )
    top = {
        "Planning Time": 0.2,
        "Execution Time": 3.5,
        "JIT": {"Functions": 13, "Timing": {"Generation": 0.4, "Total": 7.0}},
        "Triggers": [{"Trigger Name": "RI_ConstraintTrigger_a_1", "Relation": "orders", "Time": 1.5, "Calls": 10}],
        "Settings": {"work_mem": "64kB"},
    }
    summary = summarise(doc(plan, **top))
    assert summary.buffers is not None and summary.buffers.hit_ratio == 0.9 and summary.buffers.temp_written == 4
    assert summary.jit is not None and summary.jit.functions == 13 and summary.jit.total_ms == 7.0
    assert summary.triggers[0].name == "RI_ConstraintTrigger_a_1" and summary.triggers[0].calls == 10
    assert summary.settings == {"work_mem": "64kB"}
    assert summary.planning_ms == 0.2 and summary.execution_ms == 3.5
    assert summarise(doc(node("Result", 0.01))).buffers is None  # a plan only: no buffers of execution


def test_helpers_read_the_document() -> None:
    plan = node(
        "Nested Loop",
        20.0,
        1,
        node("Seq Scan", 10.0, **SCAN),
        node("Index Scan", 5.0, **{"Index Name": "<1>btree_t_a"}),
    )
    assert total_cost(doc(plan)) == 20.0
    assert scanned_tables(doc(plan)) == {("shop", "orders")}
    assert used_indexes(doc(plan)) == {"<1>btree_t_a"}
    with pytest.raises(ValueError, match="not an EXPLAIN"):
        plan_of({"Plan": {}})
