"""Reading request bodies: typed fields out of JSON objects, or a 400 that names the field and what it must be."""

from __future__ import annotations

from typing import Any

from .errors import bad_request

__all__ = ["boolean", "integer", "number", "section", "string"]


def section(body: object, key: str, *, required: bool = False) -> dict[str, Any]:
    """``body[key]`` as an object (``{}`` when absent and not required)."""
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    value = body.get(key)
    if value is None:
        if required:
            raise bad_request(f"the request body needs a {key!r} object")
        return {}
    if not isinstance(value, dict):
        raise bad_request(f"{key} must be a JSON object")
    return value


def string(
    values: dict[str, Any], key: str, *, field: str, required: bool = False, max_length: int = 256
) -> str | None:
    """A non-empty string of at most ``max_length`` characters, or ``None`` when absent and not required."""
    value = values.get(key)
    if value is None:
        if required:
            raise bad_request(f"{field} is required")
        return None
    if not isinstance(value, str) or not value:
        raise bad_request(f"{field} must be a non-empty string")
    if len(value) > max_length:
        raise bad_request(f"{field} must be at most {max_length} characters long")
    if "\0" in value:
        raise bad_request(f"{field} must not contain NUL characters")
    return value


def boolean(values: dict[str, Any], key: str, *, field: str) -> bool | None:
    value = values.get(key)
    if value is not None and not isinstance(value, bool):
        raise bad_request(f"{field} must be true or false")
    return value


def integer(values: dict[str, Any], key: str, *, field: str, minimum: int, maximum: int) -> int | None:
    value = values.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise bad_request(f"{field} must be an integer from {minimum} to {maximum}")
    return value


def number(values: dict[str, Any], key: str, *, field: str, minimum: float | None = None) -> float | None:
    """A JSON number (at least ``minimum`` when given), or ``None`` when absent."""
    value = values.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad_request(f"{field} must be a number")
    if minimum is not None and value < minimum:
        raise bad_request(f"{field} must be a number of at least {minimum:g}")
    return float(value)
