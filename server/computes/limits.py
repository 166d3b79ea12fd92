"""Neon's limits on a compute's size and scale to zero, as Neon's API spec and documentation state them.

One check, used twice: by ``configure_compute`` before it asks the API, and by local Neon on every endpoint it creates
or updates, so that a value Neon refuses is refused in the same words either way. The checks are pure functions that
return the reason a value is refused, or ``None``; callers raise their own error with it.

- Sizes are Compute Units (CU): 0.25, 0.5, or a whole number (spec ``ComputeUnit``: at least 0.25; docs: compute sizes).
- Autoscaling spans 0.25 to 16 CU, and its range (max − min) is at most 8 CU (docs, "Enable Autoscaling": "The maximum
  permitted autoscaling range is 8 CU"). Above 16 CU a compute has a fixed size (min = max), up to 56 CU.
- ``suspend_timeout_seconds`` (spec ``SuspendTimeoutSeconds``): -1 never suspends, 0 means Neon's default (300 s),
  otherwise from 60 s (one minute) to 604800 s (one week).
"""

from __future__ import annotations

import math

__all__ = [
    "AUTOSCALING_MAX_CU",
    "AUTOSCALING_RANGE_CU",
    "FIXED_MAX_CU",
    "SUSPEND_MAX_SECONDS",
    "SUSPEND_MIN_SECONDS",
    "limits_problem",
    "size_problem",
    "suspend_problem",
]

AUTOSCALING_MAX_CU = 16.0
AUTOSCALING_RANGE_CU = 8.0
FIXED_MAX_CU = 56.0
SUSPEND_MIN_SECONDS = 60
SUSPEND_MAX_SECONDS = 604_800
DOCS = "https://neon.com/docs/manage/computes#compute-size-and-autoscaling-configuration"


def size_problem(field: str, value: float) -> str | None:
    """Why ``value`` is not a compute size Neon offers, or ``None`` when it is one."""
    if math.isfinite(value) and (value in (0.25, 0.5) or (value.is_integer() and 1 <= value <= FIXED_MAX_CU)):
        return None
    return (
        f"{field} {value:g} is not a compute size Neon offers: sizes are 0.25, 0.5 or a whole number of CU up to "
        f"{FIXED_MAX_CU:g} (autoscaling up to {AUTOSCALING_MAX_CU:g}); see {DOCS}"
    )


def limits_problem(min_cu: float, max_cu: float) -> str | None:
    """Why an autoscaling range is refused (each size, their order, the range, fixed sizes above 16 CU), or ``None``."""
    for field, value in (("autoscaling_limit_min_cu", min_cu), ("autoscaling_limit_max_cu", max_cu)):
        if (problem := size_problem(field, value)) is not None:
            return problem
    if min_cu > max_cu:
        return f"autoscaling_limit_min_cu ({min_cu:g}) must not be greater than autoscaling_limit_max_cu ({max_cu:g})"
    if max_cu > AUTOSCALING_MAX_CU and min_cu != max_cu:
        return (
            f"autoscaling goes up to {AUTOSCALING_MAX_CU:g} CU: a compute larger than that has a fixed size, so "
            f"autoscaling_limit_min_cu must equal autoscaling_limit_max_cu ({max_cu:g}); see {DOCS}"
        )
    if max_cu - min_cu > AUTOSCALING_RANGE_CU:
        return (
            f"the maximum permitted autoscaling range is {AUTOSCALING_RANGE_CU:g} CU: autoscaling_limit_max_cu "
            f"({max_cu:g}) minus autoscaling_limit_min_cu ({min_cu:g}) must not exceed {AUTOSCALING_RANGE_CU:g}; "
            f"see {DOCS}"
        )
    return None


def suspend_problem(seconds: int, *, minimum: int = SUSPEND_MIN_SECONDS) -> str | None:
    """Why a ``suspend_timeout_seconds`` is refused, or ``None``; ``minimum`` is Neon's 60 s unless a caller (local
    Neon's tests) lowers it."""
    if seconds in (-1, 0) or minimum <= seconds <= SUSPEND_MAX_SECONDS:
        return None
    return (
        f"suspend_timeout_seconds {seconds} is out of range: use -1 (never suspend), 0 (Neon's default, 300 s) or a "
        f"value from {minimum} to {SUSPEND_MAX_SECONDS} seconds (one week)"
    )
