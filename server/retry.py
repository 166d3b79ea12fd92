"""Pacing retries: exponential backoff with jitter, and the clock and sleep a retrying loop takes.

One policy for every retry the server makes: the Neon API client resending after 429, 423 or 503 answers and
network failures, and the database executor connecting to a compute that is waking up. It sits at the top of
``server/`` because the SQL package must not depend on the Neon package, nor the other way round. Loops take the
clock and the sleep as parameters so that tests run them at full speed.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import TypeAlias

__all__ = ["Clock", "Sleep", "backoff"]

Clock: TypeAlias = Callable[[], float]
"""Monotonic seconds (``time.monotonic`` unless a test injects its own)."""
Sleep: TypeAlias = Callable[[float], Awaitable[None]]
"""Waits the given seconds (``asyncio.sleep`` unless a test injects its own)."""


def backoff(attempt: int, *, base: float = 0.5, cap: float = 10.0, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait before retry ``attempt`` (0 for the first retry): exponential, capped, with equal jitter.

    The ceiling is ``min(cap, base * 2**attempt)``; half of it is fixed and half random, so concurrent callers spread
    out without any of them retrying at once.
    """
    ceiling = min(cap, base * 2.0**attempt)
    return ceiling / 2 + rand() * ceiling / 2
