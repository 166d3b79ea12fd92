"""Result models and text for the SQL tools (run_sql, run_sql_transaction, and their confirmed runs).

The structured content carries the data for programs; the text content is what a model reads: a short header, the
column names and types and the rows (one JSON array per line) inside an untrusted-data fence, then truncation hints
and warnings. Values that quote a password are redacted in both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from mcp_types import CallToolResult, TextContent
from pydantic import BaseModel, Field, WithJsonSchema

from server.mcp import fence
from server.redaction import redact_text, redact_value
from server.sql import json_lines

if TYPE_CHECKING:
    from server.sql import Execution, Outcome, Plan

__all__ = [
    "ColumnModel",
    "SQLResult",
    "StatementResult",
    "TransactionResult",
    "sql_result",
    "transaction_result",
]

Status = Literal["ok", "confirmation_required", "declined"]


class ColumnModel(BaseModel):
    name: str
    type: str


_COLUMNS = {"type": "array", "items": ColumnModel.model_json_schema()}
"""ColumnModel's schema written in place: a ``$ref`` costs a client that validates structured content with the
jsonschema package (the Python SDK's) about 20 µs per column of every answer to resolve."""


class StatementResult(BaseModel):
    kind: str = Field(description="read, write, ddl or destructive")
    command: str = Field(default="", description="PostgreSQL's command tag, e.g. 'SELECT 3' or 'DELETE 10'")
    columns: Annotated[list[ColumnModel], WithJsonSchema(_COLUMNS)] = Field(default_factory=list)
    rows: Annotated[list[list[Any]], WithJsonSchema({"type": "array"})] = Field(
        default_factory=list, description="rows as arrays of values, in column order"
    )
    row_count: int = Field(default=0, description="rows returned here")
    rows_affected: int | None = Field(default=None, description="rows inserted, updated or deleted")
    truncated: bool = Field(default=False, description="more rows exist than were returned")
    elapsed_ms: float = 0.0


class SQLResult(StatementResult):
    """What run_sql returns."""

    status: Status
    database: str
    branch: str | None = Field(default=None, description="the Neon branch it ran on")
    as_of: str | None = Field(default=None, description="time travel: the moment the read saw")
    backup_branch: str | None = Field(default=None, description="backup of the protected branch taken first")
    warnings: list[str] = Field(default_factory=list)
    hint: str | None = None
    operation_id: str | None = Field(default=None, description="pass to confirm_operation to run it")
    summary: str | None = Field(default=None, description="what would run, for the human to confirm")
    expires_at: str | None = None


class TransactionResult(BaseModel):
    """What run_sql_transaction returns."""

    status: Status
    database: str
    branch: str | None = None
    backup_branch: str | None = None
    kind: str = Field(description="the strictest classification among the statements")
    results: list[StatementResult] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    elapsed_ms: float = 0.0
    operation_id: str | None = None
    summary: str | None = None
    expires_at: str | None = None


_TRUNCATED_HINT = "More rows exist than were returned; add a LIMIT, filter, or aggregate (count, group by)."


def _statement(outcome: Outcome, kind: str) -> dict[str, Any]:
    """A StatementResult as a plain dict (the SDK validates structured content against the declared model)."""
    data: dict[str, Any] = {
        "kind": kind,
        "command": outcome.command,
        "columns": [{"name": c.name, "type": c.type} for c in outcome.columns],
        "rows": outcome.rows,
        "row_count": len(outcome.rows),
        "truncated": outcome.truncated,
        "elapsed_ms": round(outcome.elapsed_ms, 3),
    }
    if outcome.rows_affected is not None:
        data["rows_affected"] = outcome.rows_affected
    return data


def _statement_text(result: dict[str, Any], *, float_free: bool, number: int | None = None) -> list[str]:
    command = result["command"]
    head = f"{command or 'OK'} · {result['kind']}"
    if result["columns"]:
        count = result["row_count"]
        head += f" · {count} row{'s' if count != 1 else ''}"
    affected = result.get("rows_affected")
    if affected is not None and not command.startswith(("INSERT", "UPDATE", "DELETE", "MERGE")):
        head += f" · {affected} affected"
    head += f" · {result['elapsed_ms']:.1f} ms"
    lines = [f"[{number}] {head}" if number is not None else head]
    if result["columns"]:
        body = json_lines(result["rows"], float_free=float_free)
        if redact_text(body) != body:
            # A value quotes a password (a connection string, an ALTER ROLE read back from pg_stat_activity): the
            # structured rows lose it too, not only the text.
            result["rows"] = redact_value(result["rows"])
            body = json_lines(result["rows"], float_free=float_free)
        # Column names and type names are the database's (a view can name a column anything): inside the fence.
        header = "columns: " + ", ".join(f"{c['name']} ({c['type']})" for c in result["columns"])
        lines.append(fence(f"{header}\n{body if body else '(no rows)'}"))
    if result["truncated"]:
        lines.append("truncated: " + _TRUNCATED_HINT)
    return lines


def _tool_result(structured: dict[str, Any], lines: list[str]) -> CallToolResult:
    return CallToolResult(content=[TextContent(text="\n".join(lines))], structured_content=structured)


def _where(plan: Plan) -> dict[str, Any]:
    """The database, and the branch when on Neon."""
    branch = plan.place.branch_name
    return {"database": plan.database} | ({"branch": branch} if branch else {})


def _backup_lines(execution: Execution, data: dict[str, Any]) -> list[str]:
    if execution.backup is None:
        return []
    data["backup_branch"] = execution.backup
    return [f"backup branch taken first: {execution.backup} (restore_branch from_branch= it to undo)"]


def sql_result(plan: Plan, execution: Execution) -> CallToolResult:
    outcome = execution.outcomes[0]
    data = _statement(outcome, plan.verdict.statements[0].category)
    data.update(status="ok", **_where(plan), warnings=list(plan.warnings))
    if outcome.truncated:
        data["hint"] = _TRUNCATED_HINT
    lines = _backup_lines(execution, data)
    as_of = plan.as_of
    if as_of is not None:
        data["as_of"] = as_of
        lines.append(
            f"time travel: branch {plan.place.branch_name} as of {as_of} (read on a short-lived copy, deleted since)"
        )
    lines += _statement_text(data, float_free=outcome.float_free)
    lines += [f"warning: {w}" for w in plan.warnings]
    return _tool_result(data, lines)


def transaction_result(plan: Plan, execution: Execution) -> CallToolResult:
    outcomes = execution.outcomes
    results = [
        _statement(outcome, classification.category)
        for outcome, classification in zip(outcomes, plan.verdict.statements, strict=True)
    ]
    data = {
        "status": "ok",
        **_where(plan),
        "kind": plan.verdict.category,
        "results": results,
        "warnings": list(plan.warnings),
        "elapsed_ms": round(sum(r["elapsed_ms"] for r in results), 3),
    }
    lines = _backup_lines(execution, data)
    if plan.verdict.read_only:
        lines.append(f"ran {len(results)} read(s) in one read-only transaction on {plan.place.label}")
    else:
        lines.append(f"committed {len(results)} statement(s) in one transaction on {plan.place.label}")
    for number, (statement, outcome) in enumerate(zip(results, outcomes, strict=True), start=1):
        lines += _statement_text(statement, float_free=outcome.float_free, number=number)
    lines += [f"warning: {w}" for w in plan.warnings]
    return _tool_result(data, lines)
