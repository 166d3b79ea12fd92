"""PostgreSQL values to JSON and JSON arguments to PostgreSQL parameters.

``to_json`` turns whatever asyncpg decoded into something ``json.dumps`` accepts without losing meaning (numerics as
exact strings, NaN and infinities spelled out, bytea as hex, ranges in PostgreSQL's text form). ``converter`` picks,
once per result column, the part of ``to_json`` that column's type needs (or nothing, when asyncpg's value is
already what ``to_json`` would return), and ``sizing`` how ``estimate_size`` will count its values: the same answer
without an ``isinstance`` chain per cell. ``json_lines`` writes rows as JSON lines, with pydantic-core's faster encoder
when ``float_free`` says no column can hold a float. ``coerce_param`` turns a
JSON argument (a tool's ``params``) into the Python type asyncpg expects for the parameter's PostgreSQL type, so that a
model can pass ``"2024-05-01"`` for a ``date`` parameter.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic_core import PydanticSerializationError
from pydantic_core import to_json as _fast_json

from ..errors import InvalidInput

__all__ = [
    "BYTEA_PREVIEW_BYTES",
    "Sizing",
    "coerce_param",
    "converter",
    "cut_bytes",
    "estimate_size",
    "float_free",
    "json_lines",
    "sizing",
    "to_json",
]

BYTEA_PREVIEW_BYTES = 64
"""A bytea value is shown as at most this many bytes of hex, then its length."""

JSONValue = Any


def _float(value: float) -> JSONValue:
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _decimal(value: Decimal) -> str:
    if value.is_nan():
        return "NaN"
    if value.is_infinite():
        return "Infinity" if value > 0 else "-Infinity"
    return str(value)


def _bytes(value: bytes) -> str:
    if len(value) <= BYTEA_PREVIEW_BYTES:
        return "\\x" + value.hex()
    return cut_bytes(value, len(value))


def cut_bytes(head: bytes, length: int) -> str:
    """A bytea value of ``length`` bytes shown by its first ``BYTEA_PREVIEW_BYTES`` (``head``, cut in the database
    or here), then its length."""
    return f"\\x{head[:BYTEA_PREVIEW_BYTES].hex()}… ({length} bytes)"


def _interval(value: dt.timedelta) -> str:
    """ISO 8601 duration: ``P1DT2H3M4.5S``; negative intervals get a leading minus."""
    sign = "-" if value < dt.timedelta(0) else ""
    value = abs(value)
    days, seconds, micros = value.days, value.seconds, value.microseconds
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    out = f"{sign}P{days}D" if days else f"{sign}P"
    clock = ""
    if hours:
        clock += f"{hours}H"
    if minutes:
        clock += f"{minutes}M"
    if secs or micros:
        clock += f"{secs}.{micros:06d}".rstrip("0").rstrip(".") + "S"
    if clock:
        out += "T" + clock
    return out if out not in ("P", "-P") else "PT0S"


def _range(value: Any) -> str:
    if value.isempty:
        return "empty"
    lower = "" if value.lower is None else _scalar_text(to_json(value.lower))
    upper = "" if value.upper is None else _scalar_text(to_json(value.upper))
    return f"{'[' if value.lower_inc else '('}{lower},{upper}{']' if value.upper_inc else ')'}"


def _scalar_text(value: JSONValue) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def to_json(value: Any) -> JSONValue:
    """Return ``value`` as a JSON-safe Python value (see the module docstring for the mapping)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, Decimal):
        return _decimal(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return _interval(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return _bytes(bytes(value))
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    if isinstance(value, Mapping) or hasattr(value, "items"):
        # decoded json objects, and asyncpg.Record for composite types (it has items() but is no Mapping)
        return {str(key): to_json(item) for key, item in value.items()}
    if hasattr(value, "isempty") and hasattr(value, "lower_inc"):
        return _range(value)
    return str(value)


# Types asyncpg decodes to exactly what to_json returns for them (int, bool, str; lists of those for arrays).
_AS_IS = frozenset({"int2", "int4", "int8", "oid", "bool", "text", "varchar", "bpchar", "name", "xml", "money"})
_CONVERTERS: dict[str, Callable[[Any], JSONValue]] = {
    "float4": _float,
    "float8": _float,
    # Methods, not functions of ours: a column's conversion is one C call per cell. asyncpg decodes numeric to a
    # Decimal, whose str spells NaN and the infinities as _decimal does.
    "numeric": Decimal.__str__,
    "date": dt.date.isoformat,
    "time": dt.time.isoformat,
    "timetz": dt.time.isoformat,
    "timestamp": dt.datetime.isoformat,
    "timestamptz": dt.datetime.isoformat,
    "interval": _interval,
    "uuid": str,
    "inet": str,
    "cidr": str,
    "bytea": _bytes,
    "json": json.loads,
    "jsonb": json.loads,
}
_NUMBERS = frozenset({"int2", "int4", "int8", "oid", "bool"})
_STRINGS = frozenset(_AS_IS - _NUMBERS) | {
    "numeric", "date", "time", "timetz", "timestamp", "timestamptz", "interval", "uuid", "inet", "cidr", "bytea",
}  # fmt: skip
_PLAIN = _NUMBERS | _STRINGS
"""Types whose converted values are strings, integers or booleans (``to_json`` of an array of them: lists of those)."""


def converter(type_name: str, *, builtin: bool, element: str | None = None) -> Callable[[Any], JSONValue] | None:
    """What ``to_json`` does to a non-NULL value of a column of this type (``element``: of an array of it), or None
    when it returns asyncpg's value unchanged. ``builtin``: the type is PostgreSQL's own (pg_catalog)."""
    if not builtin:
        return to_json
    if element is not None:
        return None if element in _AS_IS else to_json
    if type_name in _AS_IS:
        return None
    found: Callable[[Any], JSONValue] = _CONVERTERS.get(type_name, to_json)
    return found


def float_free(type_name: str, *, builtin: bool, element: str | None = None) -> bool:
    """Whether a column's converted values are only strings, integers, booleans and NULLs (or arrays of them): no
    float, and no JSON document that could hold one (see ``json_lines``)."""
    return builtin and (type_name if element is None else element) in _PLAIN


_LINES = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)
"""One encoder for every row's line (``json.dumps`` with these options builds a new encoder for each call)."""


def json_lines(rows: Sequence[Sequence[JSONValue]], *, float_free: bool) -> str:
    """Each row as one compact JSON array per line, as ``json.dumps(row, ensure_ascii=False, separators=(",", ":"))``
    writes it.

    Rows of ``float_free`` columns (see ``float_free``) go through pydantic-core's encoder, about 7 times faster,
    which writes strings, integers, booleans and null exactly as the standard library does (a test compares them over
    every code point); it writes some floats differently (``1e-7`` for ``1e-07``), so rows that may hold one take the
    standard library's encoder.
    """
    if float_free:
        try:
            return b"\n".join(map(_fast_json, rows)).decode()
        except PydanticSerializationError:  # a lone surrogate, which the standard library writes as an escape
            pass
    return "\n".join(map(_LINES.encode, rows))


Sizing = Literal["number", "string", "any"]
"""How ``estimate_size`` counts a column's converted values: ``number`` (8 each, NULL too), ``string`` (a string or
NULL), ``any`` (call it)."""


def sizing(type_name: str, *, builtin: bool, element: str | None = None) -> Sizing:
    """How the converted values of a column of this type are counted (see ``Sizing``)."""
    if not builtin or element is not None:
        return "any"
    if type_name in _NUMBERS:
        return "number"
    return "string" if type_name in _STRINGS else "any"


def estimate_size(value: JSONValue) -> int:
    """A cheap upper-ish estimate of the bytes ``value`` takes once serialised as JSON."""
    if isinstance(value, str):
        return len(value) + 2
    if isinstance(value, list):
        return 2 + sum(estimate_size(item) + 1 for item in value)
    if isinstance(value, dict):
        return 2 + sum(len(key) + 4 + estimate_size(item) for key, item in value.items())
    return 8


# --- parameters ---------------------------------------------------------------------------------------------------


def _parse_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("t", "true", "yes", "y", "on", "1"):
        return True
    if lowered in ("f", "false", "no", "n", "off", "0"):
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _parse_timestamptz(value: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _parse_bytea(value: str) -> bytes:
    return bytes.fromhex(value[2:]) if value.startswith("\\x") else value.encode()


def _parse_decimal(value: str) -> Decimal:
    try:
        return Decimal(value)
    except InvalidOperation as exc:
        raise ValueError(f"not a number: {value!r}") from exc


_FROM_STRING: dict[str, Callable[[str], Any]] = {
    "int2": int,
    "int4": int,
    "int8": int,
    "oid": int,
    "float4": float,
    "float8": float,
    "numeric": _parse_decimal,
    "bool": _parse_bool,
    "date": dt.date.fromisoformat,
    "time": dt.time.fromisoformat,
    "timestamp": dt.datetime.fromisoformat,
    "timestamptz": _parse_timestamptz,
    "uuid": uuid.UUID,
    "bytea": _parse_bytea,
    "inet": ipaddress.ip_interface,
    "cidr": ipaddress.ip_network,
}


def _coerce(value: Any, type_name: str, element: str | None) -> Any:
    if value is None:
        return None
    if element is not None and isinstance(value, Sequence) and not isinstance(value, str):
        return [_coerce(item, element, None) for item in value]
    if type_name in ("json", "jsonb"):
        return value if isinstance(value, str) else json.dumps(value)
    if isinstance(value, str):
        parse = _FROM_STRING.get(type_name)
        return parse(value) if parse else value
    if type_name == "numeric" and isinstance(value, int | float):
        return Decimal(str(value))
    if type_name in ("float4", "float8") and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if type_name in ("text", "varchar", "bpchar", "name") and isinstance(value, int | float | bool):
        return json.dumps(value)
    if type_name in ("timestamp", "timestamptz") and isinstance(value, int | float) and not isinstance(value, bool):
        return (
            dt.datetime.fromtimestamp(value, dt.UTC)
            if type_name == "timestamptz"
            else dt.datetime.fromtimestamp(value, dt.UTC).replace(tzinfo=None)
        )
    return value


def coerce_param(value: Any, *, index: int, type_name: str, element_type: str | None = None) -> Any:
    """Convert a JSON argument for parameter ``$index`` of PostgreSQL type ``type_name``.

    Raises ``InvalidInput`` naming the parameter and its type when the value cannot be converted.
    """
    try:
        return _coerce(value, type_name, element_type)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidInput(f"parameter ${index} expects {type_name}: {exc}") from exc
