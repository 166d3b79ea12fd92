"""The health checks' interpretation on rows shaped like the catalog's (pure, no database); the queries themselves
run against real PostgreSQL in tests/tools/test_performance.py."""

from __future__ import annotations

from typing import Any

import pytest

from server.performance.health import CHECKS, estimate_bloat, report, sequence_used


@pytest.mark.parametrize(
    ("rows", "pages", "width", "index", "wasted_pages"),
    [
        (200_000, 1_274, 20.0, False, 0),  # 24 + 24 + 4 bytes a row, 157 rows a page: 1,274 pages, no bloat
        (20_000, 1_274, 20.0, False, 1_146),  # after deleting 90%: the pages stay
        (0, 10, 20.0, False, 10),
        (200_000, 548, 4.0, True, 0),  # an int4 B-tree at fillfactor 90
        (20_000, 548, 4.0, True, 492),
    ],
)
def test_bloat_estimates(rows: float, pages: int, width: float, index: bool, wasted_pages: int) -> None:
    fillfactor = 90 if index else 100
    found = estimate_bloat(rows=rows, pages=pages, width=width, fillfactor=fillfactor, block_size=8192, index=index)
    assert found is not None
    assert found[0] == pytest.approx(wasted_pages * 8192, abs=3 * 8192)


@pytest.mark.parametrize(
    ("rows", "pages", "width"),
    [(-1, 100, 10.0), (100, 0, 10.0), (100, 100, None)],  # never analysed, empty, no stats
)
def test_no_bloat_estimate_without_the_facts(rows: float, pages: int, width: float | None) -> None:
    assert estimate_bloat(rows=rows, pages=pages, width=width, fillfactor=100, block_size=8192, index=False) is None


def seq(
    last: int, *, low: int = 1, high: int = 1000, step: int = 1, cycle: bool = False, column_type: str | None = None
) -> dict[str, Any]:
    return {
        "schema": "public",
        "sequence": "s",
        "last_value": last,
        "min_value": low,
        "max_value": high,
        "increment": step,
        "cycle": cycle,
        "column_type": column_type,
    }


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (seq(951), (0.95, 1000)),
        (seq(1), (0.0, 1000)),
        (seq(-951, low=-1000, high=-1, step=-1), (0.95, -1000)),  # a descending sequence
        (seq(2_000_000_000, high=2**63 - 1, column_type="integer"), (2_000_000_000 / 2_147_483_647, 2_147_483_647)),
        (seq(30_000, high=2**63 - 1, column_type="smallint"), (30_000 / 32_767, 32_767)),
        (seq(999, cycle=True), None),  # cycling sequences wrap by design
    ],
)
def test_sequence_use(row: dict[str, Any], expected: tuple[float, int] | None) -> None:
    used = sequence_used(row)
    if expected is None:
        assert used is None
    else:
        assert used is not None and used[1] == expected[1] and used[0] == pytest.approx(expected[0], abs=1e-3)


def overview(**fields: Any) -> list[dict[str, Any]]:
    base = {"max_connections": 100, "freeze_max_age": 200_000_000, "block_size": 8192, "blks_hit": 0, "blks_read": 0}
    return [{**base, "xid_age": 1_000, **fields}]


def health(**rows: Any) -> Any:
    order = [
        "overview",
        "connections",
        "sessions",
        "blocking",
        "invalid",
        "duplicate",
        "unused",
        "tables",
        "indexes",
        "sequences",
        "oldest",
    ]
    given = {"overview": overview(), **rows}
    return report(*(given.get(name, []) for name in order))


def test_nothing_to_report() -> None:
    found = health(connections=[{"state": "active", "n": 1}, {"state": "idle", "n": 2}])
    assert found.healthy and found.findings == [] and found.connections == 3
    assert found.connections_by_state == {"active": 1, "idle": 2} and found.checks == list(CHECKS)


@pytest.mark.parametrize(
    ("rows", "check", "severity"),
    [
        ({"overview": overview(blks_hit=80_000, blks_read=20_000)}, "cache_hit_ratio", "warning"),
        ({"overview": overview(blks_hit=9_000, blks_read=9_000)}, None, None),  # too few reads to judge
        ({"connections": [{"state": "idle", "n": 85}]}, "connections", "warning"),
        ({"connections": [{"state": "idle", "n": 96}]}, "connections", "critical"),
        ({"overview": overview(xid_age=250_000_000)}, "wraparound", "warning"),
        ({"overview": overview(xid_age=1_600_000_000, freeze_max_age=2_000_000_000)}, "wraparound", "critical"),
        ({"sequences": [seq(800)]}, "sequence_exhaustion", "warning"),
        ({"sequences": [seq(950)]}, "sequence_exhaustion", "critical"),
        ({"sequences": [seq(700)]}, None, None),
    ],
)
def test_thresholds(rows: dict[str, Any], check: str | None, severity: str | None) -> None:
    found = health(**rows)
    if check is None:
        assert found.findings == []
    else:
        (finding,) = found.findings
        assert (finding.check, finding.severity) == (check, severity) and finding.action
        assert found.healthy is False


def test_findings_come_critical_first_and_long_lists_are_cut() -> None:
    unused = [{"schema": "s", "table": "t", "index": f"i{n}", "bytes": 2 << 20} for n in range(15)]
    found = health(unused=unused, sequences=[seq(990)])
    assert [f.severity for f in found.findings][:1] == ["critical"]
    listed = [f for f in found.findings if f.check == "unused_index"]
    assert len(listed) == 11 and listed[-1].detail == "and 5 more unused indexes"
    assert found.healthy is False  # a critical finding; info ones alone would leave it healthy
    assert health(unused=unused[:1]).healthy is True
