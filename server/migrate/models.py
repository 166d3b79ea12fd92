"""What migrate answers: the plan report and the applied result (pydantic only, so that registering the tool imports
neither asyncpg nor pglast)."""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = ["AppliedMigration", "FindingModel", "MigrationReport", "StatementReport"]


class StatementReport(BaseModel):
    number: int
    sql: str
    kind: str = Field(description="read, write, ddl or destructive")
    lock: str | None = Field(default=None, description="the table lock it takes (PostgreSQL's name)")
    rewrites: bool = False
    outside_transaction: bool = Field(default=False, description="runs alone, outside the migration's transaction")
    elapsed_ms: float | None = Field(default=None, description="time it took on the plan branch")
    rows_affected: int | None = None


class FindingModel(BaseModel):
    rule: str
    severity: str
    statement: int | None = None
    message: str
    advice: str | None = None
    source: str


class MigrationReport(BaseModel):
    """What ``migrate(action="plan")`` answers."""

    migration_id: str
    version: str
    description: str
    checksum: str
    branch: str
    database: str
    plan_branch: str
    expires_at: str
    statements: list[StatementReport]
    findings: list[FindingModel]
    schema_diff: str
    rows_affected: int
    total_ms: float
    needs_confirmation: bool
    protected_because: str | None = None
    already_applied: bool = False


class AppliedMigration(BaseModel):
    """What ``migrate(action="apply")`` answers."""

    migration_id: str
    version: str
    branch: str
    database: str
    applied: bool = Field(description="false when this version was already applied with the same checksum")
    statements: list[StatementReport] = Field(default_factory=list)
    total_ms: float = 0.0
    backup_branch: str | None = None
    message: str
