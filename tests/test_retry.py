"""The one retry pacing (``server.retry.backoff``), as the Neon client and the database executor use it."""

from __future__ import annotations

import random

import pytest

from server.retry import backoff


def test_backoff_grows_to_its_cap_with_jitter() -> None:
    assert [backoff(n, rand=lambda: 0.0) for n in range(7)] == [0.25, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert [backoff(n, rand=lambda: 1.0) for n in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


@pytest.mark.parametrize(("base", "cap"), [(0.5, 10.0), (0.2, 2.0)], ids=["neon-api", "waking-compute"])
def test_backoff_stays_between_half_and_all_of_its_ceiling(base: float, cap: float) -> None:
    rand = random.Random(7).random
    for attempt in range(12):
        ceiling = min(cap, base * 2**attempt)
        delays = [backoff(attempt, base=base, cap=cap, rand=rand) for _ in range(200)]
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
        assert len({round(delay, 6) for delay in delays}) > 150, "concurrent callers spread out"
