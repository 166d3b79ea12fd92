"""SQL over HTTP as ``@neondatabase/serverless`` speaks it: ``POST /sql`` on local Neon's API port.

The request names its database in the ``Neon-Connection-String`` header (``postgresql://role:password@host/db?…``);
the endpoint is the host name's first label (``ep-….localhost``, as Neon reads it) or ``options=endpoint=…`` (for
the URIs local Neon hands out, whose host is 127.0.0.1). The body is one query ``{"query", "params", "arrayMode"}``
or a batch ``{"queries": [...]}``, run in one transaction whose isolation level, read-only and deferrable settings
come from the ``Neon-Batch-Isolation-Level``, ``Neon-Batch-Read-Only`` and ``Neon-Batch-Deferrable`` headers. Each
query runs with the extended protocol in text format (so one statement per query, as on Neon), parameters as text
(JSON values converted as Neon converts them). A result is ``{"fields": [{"name", "dataTypeID", "tableID",
"columnID", "dataTypeSize", "dataTypeModifier", "format"}], "rows", "command", "rowCount", "rowAsArray"}``; rows are
arrays with ``Neon-Array-Mode: true`` (or ``arrayMode``), values raw text with ``Neon-Raw-Text-Output: true`` (what
the driver sends), else booleans, numbers and JSON typed. A PostgreSQL error answers 400 with its fields
(``message``, ``code``, ``detail``, ``hint``, ``position``, …, as Neon names them).

Authentication is the connection string's password, checked against the role's secret as the front door checks it;
the endpoint is woken like any connection. Server connections are pooled (``sessions``).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .routing import Refusal, parse_request
from .sessions import QueryError, Result, Session
from .upstream import UpstreamRefused, UpstreamUnreachable

if TYPE_CHECKING:
    from .proxy import FrontDoor

__all__ = ["handle"]

_MAX_BODY = 10 * 1024 * 1024
_ISOLATION = {
    "Serializable": "SERIALIZABLE",
    "ReadUncommitted": "READ UNCOMMITTED",
    "ReadCommitted": "READ COMMITTED",
    "RepeatableRead": "REPEATABLE READ",
}
_ERROR_FIELDS = {
    "C": "code",
    "D": "detail",
    "H": "hint",
    "P": "position",
    "p": "internalPosition",
    "q": "internalQuery",
    "S": "severity",
    "W": "where",
    "t": "table",
    "c": "column",
    "s": "schema",
    "d": "dataType",
    "n": "constraint",
    "F": "file",
    "L": "line",
    "R": "routine",
}
_BOOL, _INT2, _INT4, _FLOAT4, _FLOAT8, _JSON, _JSONB = 16, 21, 23, 700, 701, 114, 3802


# --- the request -------------------------------------------------------------------------------------------------

_CORS = {"Access-Control-Allow-Origin": "*"}
_ALLOWED_HEADERS = (
    "Neon-Connection-String, Neon-Raw-Text-Output, Neon-Array-Mode, Neon-Pool-Opt-In, Neon-Batch-Read-Only, "
    "Neon-Batch-Deferrable, Neon-Batch-Isolation-Level, Authorization, Content-Type"
)


@dataclass(frozen=True)
class _Target:
    user: str
    password: str
    database: str
    host: str | None
    options: str | None


def _error(status: int, message: str, code: str | None = None) -> JSONResponse:
    return JSONResponse({"message": message, "code": code}, status_code=status, headers=_CORS)


def _pg_error(fields: dict[str, str]) -> JSONResponse:
    body: dict[str, Any] = {"message": fields.get("M", "")}
    body.update({name: fields.get(letter) for letter, name in _ERROR_FIELDS.items()})
    return JSONResponse(body, status_code=400, headers=_CORS)


def _target(text: str) -> _Target:
    try:
        parts = urlsplit(text)
        hostname = parts.hostname
    except ValueError as exc:
        raise Refusal(f"invalid connection string: {exc}") from exc
    if parts.scheme not in ("postgres", "postgresql"):
        raise Refusal("connection string must start with postgresql:// or postgres://")
    if not parts.username:
        raise Refusal("connection string is missing a user name")
    if parts.password is None:
        raise Refusal("connection string is missing a password")
    database = unquote(parts.path.lstrip("/").split("/", 1)[0])
    if not database:
        raise Refusal("connection string is missing a database name")
    options = parse_qs(parts.query).get("options", [None])[0]
    name = None
    if hostname:
        try:
            ipaddress.ip_address(hostname)
        except ValueError:
            name = hostname
    return _Target(unquote(parts.username), unquote(parts.password), database, name, options)


async def handle(request: Request) -> Response:
    """``POST /sql`` (and the CORS preflight ``OPTIONS /sql``)."""
    if request.method == "OPTIONS":
        preflight = {
            **_CORS,
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": _ALLOWED_HEADERS,
            "Access-Control-Max-Age": "86400",
        }
        return Response(status_code=200, headers=preflight)
    door: FrontDoor = request.app.state.service.front_door
    headers = request.headers
    connection_string = headers.get("neon-connection-string")
    if not connection_string:
        return _error(400, "missing or invalid header: Neon-Connection-String")
    isolation = headers.get("neon-batch-isolation-level")
    if isolation is not None and isolation not in _ISOLATION:
        return _error(400, "invalid isolation level")
    raw = headers.get("neon-raw-text-output") == "true"
    array_default = headers.get("neon-array-mode") == "true"
    read_only = headers.get("neon-batch-read-only") == "true"
    deferrable = headers.get("neon-batch-deferrable") == "true"
    body = await request.body()
    if len(body) > _MAX_BODY:
        return _error(413, f"request is too large (max is {_MAX_BODY} bytes)")
    try:
        payload = json.loads(body)
        queries = _queries(payload)
    except (ValueError, TypeError) as exc:
        return _error(400, f"could not parse the request body: {exc}")
    try:
        target = _target(connection_string)
        wanted = parse_request(sni=target.host, options=target.options)
        async with door.router.open(wanted) as server:
            verifier = await door.secret(server, target.user)
            keys, verifier = await door.check_password(server, target.user, target.password, verifier)
            params = {"user": target.user, "database": target.database}
            key = (server.host, server.port, target.user, target.database, wanted.options, keys.client_key)
            session = await door.sql.acquire(key, lambda: door.login(server, wanted, params, keys, verifier))
            try:
                if isinstance(payload, dict) and "queries" in payload:
                    begin = _begin(isolation, read_only, deferrable)
                    output: dict[str, Any] = {"results": await _batch(session, queries, begin, raw, array_default)}
                else:
                    query = queries[0]
                    result = await session.query(query["query"], _params(query))
                    output = _shape(result, raw=raw, array=query.get("arrayMode", array_default))
            except QueryError as exc:
                door.sql.release(key, session)
                return _pg_error(exc.fields)
            except BaseException:
                session.close()
                raise
            door.sql.release(key, session)
    except Refusal as exc:
        return _error(400, exc.message, exc.code)
    except UpstreamRefused as exc:
        return _pg_error(exc.fields)
    except UpstreamUnreachable as exc:
        return _error(500, f"could not connect to the endpoint's server: {exc}")
    answer_headers = dict(_CORS)
    if isinstance(payload, dict) and "queries" in payload:
        if read_only:
            answer_headers["Neon-Batch-Read-Only"] = "true"
        if deferrable:
            answer_headers["Neon-Batch-Deferrable"] = "true"
        if isolation is not None:
            answer_headers["Neon-Batch-Isolation-Level"] = isolation
    return JSONResponse(output, headers=answer_headers)


def _queries(payload: Any) -> list[dict[str, Any]]:
    """The queries of a request body, each ``{"query": str, "params": list, "arrayMode": bool?}``."""
    if not isinstance(payload, dict):
        raise TypeError("the body must be a JSON object")
    items = payload.get("queries", [payload])
    if not isinstance(items, list):
        raise TypeError("queries must be a list")
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("query"), str):
            raise TypeError("each query must be an object with a query string")
        if not isinstance(item.get("params", []), list):
            raise TypeError("params must be a list")
    return items


def _begin(isolation: str | None, read_only: bool, deferrable: bool) -> str:
    words = ["BEGIN"]
    if isolation is not None:
        words.append("ISOLATION LEVEL " + _ISOLATION[isolation])
    if read_only:
        words.append("READ ONLY")
    if deferrable:
        words.append("DEFERRABLE")
    return " ".join(words)


async def _batch(
    session: Session, queries: list[dict[str, Any]], begin: str, raw: bool, array_default: bool
) -> list[dict[str, Any]]:
    await session.query(begin, [])
    results = []
    try:
        for query in queries:
            result = await session.query(query["query"], _params(query))
            results.append(_shape(result, raw=raw, array=query.get("arrayMode", array_default)))
    except QueryError:
        with contextlib.suppress(QueryError):
            await session.query("ROLLBACK", [])
        raise
    await session.query("COMMIT", [])
    return results


def _params(query: dict[str, Any]) -> list[str | None]:
    """Parameters as text, as Neon converts JSON values: null stays NULL, strings as they are, arrays as PostgreSQL
    array literals, anything else as its JSON text."""
    return [_param(value) for value in query.get("params", [])]


def _param(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return _array(value)
    return json.dumps(value, separators=(",", ":"))


def _array(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, list):
        return "{" + ",".join(_array(item) for item in value) + "}"
    if isinstance(value, dict):
        return json.dumps(json.dumps(value, separators=(",", ":")))
    return json.dumps(value)


def _shape(result: Result, *, raw: bool, array: bool) -> dict[str, Any]:
    names = [field["name"] for field in result.fields]
    rows: list[Any] = []
    for row in result.rows:
        values = row if raw else [_typed(value, oid) for value, oid in zip(row, result.types, strict=True)]
        rows.append(values if array else dict(zip(names, values, strict=True)))
    words = result.tag.split(" ")
    count_word = words[2] if words[0] == "INSERT" and len(words) > 2 else (words[1] if len(words) > 1 else "")
    return {
        "fields": result.fields,
        "rows": rows,
        "command": words[0],
        "rowCount": int(count_word) if count_word.isdigit() else None,
        "rowAsArray": array,
    }


def _typed(value: str | None, oid: int) -> Any:
    """A text value as JSON, as Neon types it without ``Neon-Raw-Text-Output``."""
    if value is None:
        return None
    if oid == _BOOL:
        return value == "t"
    if oid in (_INT2, _INT4):
        return int(value)
    if oid in (_FLOAT4, _FLOAT8):
        number = float(value)
        return number if math.isfinite(number) else value
    if oid in (_JSON, _JSONB):
        return json.loads(value)
    return value
