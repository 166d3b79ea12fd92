"""Keeping within Neon's rate limits: the client-side limiter and the pacing of retries.

Neon allows 700 API requests a minute per account, and bursts of at most 40 requests a second per route. The limiter
keeps every request the client sends inside both, however many tool calls run at once; ``parse_retry_after`` (or,
without a Retry-After header, ``server.retry.backoff``) paces the retries when Neon still answers 429 (or 423/503).

The limits are sliding windows, not token buckets: a bucket of 40 refilled at 40/s lets 80 requests through in a
second that straddles a refill, and the guarantee wanted is "never more than N in any window".
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from ..retry import Clock, Sleep

__all__ = ["RateLimiter", "parse_retry_after", "route_of"]

_MIN_WAIT = 1e-4
"""Shortest wait; keeps float rounding at a window's edge from spinning on near-zero waits."""

_COLLECTIONS = frozenset(
    {"projects", "branches", "endpoints", "operations", "databases", "roles", "snapshots", "api_keys", "organizations"}
)
_UUIDISH = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def route_of(method: str, path: str) -> str:
    """The rate-limit route of a request: method and path with ids replaced, e.g. ``GET /projects/{id}/branches``."""
    parts = path.split("?", 1)[0].strip("/").split("/")
    shaped = [
        "{id}" if (index > 0 and parts[index - 1] in _COLLECTIONS) or _UUIDISH.match(part) else part
        for index, part in enumerate(parts)
    ]
    return f"{method.upper()} /{'/'.join(shaped)}"


class _Window:
    """At most ``count`` grants in any half-open window of ``seconds``; waiters are served first come, first served."""

    def __init__(self, count: int, seconds: float) -> None:
        self.seconds = seconds
        self.grants: deque[float] = deque(maxlen=count)
        self.lock = asyncio.Lock()

    def wait(self, now: float) -> float:
        """Seconds until one more grant fits (0 if it fits now)."""
        if len(self.grants) < (self.grants.maxlen or 0):
            return 0.0
        return max(0.0, self.grants[0] + self.seconds - now)


class RateLimiter:
    """Admits requests within ``per_minute`` overall and ``per_route_per_second`` per route.

    ``acquire(route)`` returns when the request may be sent and records it. Waiting is asynchronous and fair: requests
    of one route are admitted in arrival order, and a route at its burst limit does not hold up other routes.
    """

    def __init__(
        self,
        *,
        per_minute: int = 700,
        per_route_per_second: int = 40,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if per_minute < 1 or per_route_per_second < 1:
            raise ValueError("rate limits must be at least 1")
        self._per_route = per_route_per_second
        self._overall = _Window(per_minute, 60.0)
        self._routes: dict[str, _Window] = {}
        self._clock = clock
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"RateLimiter(per_minute={self._overall.grants.maxlen}, per_route_per_second={self._per_route})"

    async def acquire(self, route: str) -> None:
        """Wait until a request on ``route`` fits both limits, then count it as sent."""
        window = self._routes.get(route)
        if window is None:
            window = self._routes[route] = _Window(self._per_route, 1.0)
        async with window.lock:
            await self._wait_for(window)
            async with self._overall.lock:
                await self._wait_for(self._overall)
                now = self._clock()
                window.grants.append(now)
                self._overall.grants.append(now)

    async def _wait_for(self, window: _Window) -> None:
        while (delay := window.wait(self._clock())) > 0:
            await self._sleep(max(delay, _MIN_WAIT))


def parse_retry_after(value: str | None, *, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delta-seconds or HTTP date); ``None`` if absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now()).total_seconds())
