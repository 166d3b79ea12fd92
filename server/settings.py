"""The one settings object: read once by the CLI (arguments over environment over defaults) and passed down.

Every field carries a description; the CLI help and docs/settings.md are made from them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, AliasChoices, BeforeValidator, Field, SecretStr
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["AccessMode", "AccessModeSetting", "Settings", "Transport", "default_cache", "default_home"]

MIN_HTTP_TOKEN_CHARS = 16
"""A bearer token shorter than this is refused: it would be guessable."""

MIN_STATE_KEY_CHARS = 32
"""The request-state cipher needs at least 32 bytes of secret (the SDK refuses less)."""


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


def _blank_is_none(value: str | None) -> str | None:
    return value or None


def _long_enough(value: SecretStr | None) -> SecretStr | None:
    if value is not None and len(value.get_secret_value()) < MIN_HTTP_TOKEN_CHARS:
        raise ValueError(f"a bearer token needs at least {MIN_HTTP_TOKEN_CHARS} characters")
    return value


# Validators belong to the fields' types (not to the class), so that a model made of some of the fields, as the
# command line's options are, validates them exactly as Settings does.
AccessMode = Literal["read-only", "branches", "full"]
AccessModeSetting = Literal["auto", "read-only", "branches", "full"]
LogLevel = Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], BeforeValidator(_upper)]
Transport = Literal["stdio", "http", "sse"]


def _key_long_enough(value: SecretStr | None) -> SecretStr | None:
    if value is not None and len(value.get_secret_value()) < MIN_STATE_KEY_CHARS:
        raise ValueError(f"a state key needs at least {MIN_STATE_KEY_CHARS} characters")
    return value


def _comma_separated(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


Names = Annotated[list[str], NoDecode, BeforeValidator(_comma_separated)]
"""A list setting that the environment and the command line give comma-separated."""

HARD_MAX_SQL_BYTES = 1_000_000
"""SQL text larger than this is refused before parsing, whatever the settings say."""


def default_home() -> Path:
    """``$XDG_DATA_HOME/neon-mcp``, else ``~/.local/share/neon-mcp``."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "neon-mcp"


def default_cache() -> Path:
    """``$XDG_CACHE_HOME/neon-mcp``, else ``~/.cache/neon-mcp``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "neon-mcp"


class Settings(BaseSettings):
    """neon-mcp settings. Environment variables are ``NEON_MCP_<FIELD>`` unless noted."""

    model_config = SettingsConfigDict(env_prefix="NEON_MCP_", extra="ignore", frozen=True)

    database_url: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("database_url", "NEON_MCP_DATABASE_URL", "DATABASE_URL"),
        description="PostgreSQL URL to serve (env DATABASE_URL or NEON_MCP_DATABASE_URL).",
    )
    neon_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("neon_api_key", "NEON_MCP_NEON_API_KEY", "NEON_API_KEY"),
        description="Neon API key, sent as a bearer token (env NEON_API_KEY or NEON_MCP_NEON_API_KEY).",
    )
    neon_api_host: str = Field(
        default="https://console.neon.tech/api/v2",
        validation_alias=AliasChoices("neon_api_host", "NEON_MCP_NEON_API_HOST", "NEON_API_HOST"),
        description="Base URL of Neon's API, up to /api/v2 (env NEON_API_HOST or NEON_MCP_NEON_API_HOST).",
    )
    neon_project_id: str | None = Field(
        default=None,
        validation_alias=AliasChoices("neon_project_id", "NEON_MCP_NEON_PROJECT_ID", "NEON_PROJECT_ID"),
        description="Neon project to serve (env NEON_PROJECT_ID; default: the only project).",
    )
    neon_branch: str | None = Field(
        default=None,
        validation_alias=AliasChoices("neon_branch", "NEON_MCP_NEON_BRANCH", "NEON_BRANCH"),
        description="Branch name or id tools use by default (env NEON_BRANCH; default: the project's default branch).",
    )
    neon_database: str | None = Field(
        default=None,
        validation_alias=AliasChoices("neon_database", "NEON_MCP_NEON_DATABASE", "NEON_DATABASE"),
        description="Database tools use by default (env NEON_DATABASE; default: neondb, else the only one).",
    )
    neon_role: str | None = Field(
        default=None,
        validation_alias=AliasChoices("neon_role", "NEON_MCP_NEON_ROLE", "NEON_ROLE"),
        description="Role tools connect as (env NEON_ROLE; default: the database's owner).",
    )
    production_branch: str = Field(
        default="production",
        min_length=1,
        description="Name of the production branch; it is protected like Neon-protected and default branches.",
    )
    access_mode: AccessModeSetting = Field(
        default="auto",
        description=(
            "read-only: only reads run. branches: changes run on unprotected branches only (reads everywhere). "
            "full: writes anywhere. Destructive statements always need confirmation. "
            "auto: branches with Neon, read-only with a database URL."
        ),
    )
    pooled: bool = Field(
        default=True,
        description="Connect to Neon branches through the pooler (PgBouncer, transaction mode) rather than directly.",
    )
    backups: bool = Field(
        default=True,
        description="Take a backup branch before a confirmed destructive operation on a protected branch.",
    )
    backup_days: float = Field(
        default=7.0, gt=0, le=30, description="Days a backup branch lives before Neon deletes it (expires_at)."
    )
    reveal_passwords: bool = Field(
        default=False,
        description="Let get_connection_string return passwords, and create_project once the user accepts it in a "
        "form (otherwise they are redacted).",
    )
    allow_deleting_served_project: bool = Field(
        default=False,
        description="Let delete_project delete the project this server serves (NEON_PROJECT_ID, or the only one).",
    )
    max_rows: int = Field(default=500, ge=1, le=100_000, description="Most rows a result returns.")
    max_bytes: int = Field(
        default=100_000, ge=1_000, le=50_000_000, description="Most bytes of row data a result returns."
    )
    statement_timeout: float = Field(
        default=30.0, gt=0, le=86_400, description="Seconds a statement may run (SET LOCAL statement_timeout)."
    )
    lock_timeout: float = Field(
        default=5.0, gt=0, le=3_600, description="Seconds a statement may wait for a lock (SET LOCAL lock_timeout)."
    )
    idle_in_transaction_timeout: float = Field(
        default=60.0, gt=0, le=86_400, description="Seconds an open transaction may sit idle before PostgreSQL ends it."
    )
    max_sql_bytes: int = Field(
        default=200_000, ge=1_000, le=HARD_MAX_SQL_BYTES, description="Largest SQL text accepted in one call."
    )
    max_analysis_seconds: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="Longest the server spends analysing one statement's text with PostgreSQL's parser; a statement "
        "that needs longer is refused as too complex (a deeply nested expression can take seconds).",
    )
    default_schema: Annotated[str | None, AfterValidator(_blank_is_none)] = Field(
        default=None, description="Schema tables belong to (e.g. auslex); unqualified table names get a warning."
    )
    confirmation_ttl: float = Field(
        default=300.0, gt=0, le=86_400, description="Seconds a pending destructive operation waits for confirmation."
    )
    pool_size: int = Field(default=4, ge=1, le=100, description="Most connections per database pool.")
    home: Path = Field(
        default_factory=default_home, description="Data directory (audit log, local state). Default XDG data dir."
    )
    cache_dir: Path = Field(
        default_factory=default_cache,
        description="Cache directory (the tool catalog: a start then builds no tool). Default XDG cache dir.",
    )
    pg_bindir: Path | None = Field(
        default=None, description="Directory of PostgreSQL server binaries (initdb, pg_ctl) for local clusters."
    )
    local_port: int = Field(
        default=0, ge=0, le=65_535, description="Port of local Neon's API on 127.0.0.1 (0: any free port)."
    )
    local_clusters: Path | None = Field(
        default=None,
        description="Where local Neon keeps its branches' PostgreSQL data (default: HOME/local-neon/clusters).",
    )
    history_seconds: int = Field(
        default=86_400, ge=0, le=30 * 86_400, description="Local Neon's point-in-time history window in seconds."
    )
    reveal_role_passwords: bool = Field(
        default=False,
        description="Let create_role return a new role's password once, after the user accepts it in a form "
        "(elicitation); otherwise the password is never returned.",
    )
    require_least_privilege: bool = Field(
        default=False,
        description="Refuse to work as a database role that is a superuser or a member of pg_execute_server_program, "
        "pg_read_server_files or pg_write_server_files (checked at start, and on each role's first connection).",
    )
    log_level: LogLevel = Field(default="INFO", description="Logging level; logs go to stderr only.")
    transport: Transport = Field(
        default="stdio",
        description="MCP transport: stdio, http (streamable HTTP at /mcp) or sse (legacy SSE at /sse).",
    )
    http_token: Annotated[SecretStr | None, AfterValidator(_long_enough)] = Field(
        default=None,
        description=(
            "Bearer token HTTP and SSE clients must send (Authorization: Bearer …); default: one generated at start "
            "and printed to stderr. Required to listen on a non-loopback address."
        ),
    )
    host: str = Field(
        default="127.0.0.1", min_length=1, description="Address the HTTP and SSE transports listen on (loopback)."
    )
    port: int = Field(default=8765, ge=0, le=65_535, description="Port of the HTTP and SSE transports (0: any free).")
    allowed_hosts: Names = Field(
        default_factory=list,
        description=(
            "HTTP and SSE: Host header values requests may carry, comma-separated (host, host:port, or host:* for any "
            "port); others get 421. Loopback names are allowed when listening on loopback. Required to listen on a "
            "non-loopback address."
        ),
    )
    allowed_origins: Names = Field(
        default_factory=list,
        description=(
            "HTTP and SSE: Origin header values browser requests may carry, comma-separated (scheme://host[:port], or "
            "…:* for any port); a request with any other Origin gets 403. Requests without Origin (not from a "
            "browser) pass. Loopback origins are allowed when listening on loopback."
        ),
    )
    neon_key_from_header: bool = Field(
        default=False,
        description=(
            "HTTP and SSE: take each request's Neon API key from its X-Neon-Api-Key header; every key gets its own "
            "caches, pools, confirmations and data directory. Without the header the server's own key is used."
        ),
    )

    state_url: SecretStr | None = Field(
        default=None,
        description=(
            "PostgreSQL URL of the state database that replicas share: pending confirmations, migration plans and "
            "the audit log, in the schema neon_mcp_state (created and migrated by the server). Streamable HTTP then "
            "runs stateless, so any replica answers any request. Default: memory and files in HOME (one process)."
        ),
    )
    state_key: Annotated[SecretStr | None, AfterValidator(_key_long_enough)] = Field(
        default=None,
        description=(
            "Secret (at least 32 characters) sealing the request state of elicitation round trips, the same on every "
            "replica. Default with a state URL: a random key kept in the state database; without: one per process."
        ),
    )

    @property
    def uses_neon(self) -> bool:
        """Whether the server talks to Neon's API (a key, or keys from requests, and no plain database URL)."""
        return self.database_url is None and (self.neon_api_key is not None or self.neon_key_from_header)

    @property
    def effective_access_mode(self) -> AccessMode:
        """The access mode in force: ``auto`` is ``branches`` with Neon and ``read-only`` with a database URL."""
        if self.access_mode != "auto":
            return self.access_mode
        return "branches" if self.uses_neon else "read-only"

    @property
    def audit_log_path(self) -> Path:
        """Where every write and destructive statement that ran is recorded (JSON lines)."""
        return self.home / "audit.jsonl"
