"""The commands of the ``neon-mcp`` command line, as pydantic-settings (``CliApp``) models; ``server.cli`` runs them.

``serve`` and ``local`` take settings as options: each option is typed, described, constrained and validated by its
``Settings`` field, and a given option overrides the environment, which overrides the default.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic_settings import (
    BaseSettings,
    CliPositionalArg,
    CliSubCommand,
    CliToggleFlag,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from .settings import Settings

__all__ = ["LOCAL_OPTIONS", "SERVE_OPTIONS", "Demo", "Local", "NeonMcp", "Options", "Serve"]


SERVE_OPTIONS = (
    "transport",
    "host",
    "port",
    "neon_key_from_header",
    "state_url",
    "database_url",
    "neon_project_id",
    "neon_branch",
    "neon_database",
    "neon_role",
    "production_branch",
    "access_mode",
    "max_rows",
    "max_bytes",
    "statement_timeout",
    "lock_timeout",
    "default_schema",
    "require_least_privilege",
    "allowed_hosts",
    "allowed_origins",
    "log_level",
)
LOCAL_OPTIONS = ("local_port", "local_clusters", "history_seconds", "log_level")
"""The settings ``neon-mcp serve`` and ``neon-mcp local`` take as options (all come from the environment too)."""


class Options(BaseModel):
    """Settings given on the command line (only those; the environment comes in through ``settings``)."""

    # Options are named after the fields alone: the environment's aliases (DATABASE_URL, NEON_API_KEY…) are no options.
    model_config = ConfigDict(validate_by_alias=False, validate_by_name=True, frozen=True)

    def settings(self) -> Settings:
        """The settings in force: the options given, over the environment, over the defaults."""
        given = self.model_fields_set & Settings.model_fields.keys()
        return Settings(**{name: getattr(self, name) for name in given})


def _options(names: Sequence[str]) -> type[Options]:
    """``Options`` with the settings ``names`` as fields, each exactly as ``Settings`` declares it: type, description,
    default, constraints and validators, which become the option's metavar, help and checks."""
    fields: dict[str, Any] = {
        name: (Settings.model_fields[name].annotation, Settings.model_fields[name]) for name in names
    }
    return create_model("Options", __base__=Options, **fields)


# The bases are made at import from Settings' fields, which mypy cannot follow.
class Serve(_options(SERVE_OPTIONS)):  # type: ignore[misc]
    """Run the MCP server."""


class Local(_options(LOCAL_OPTIONS)):  # type: ignore[misc]
    """Local Neon: start or stop it in the background, show its status, or run it in the foreground."""

    action: CliPositionalArg[Literal["start", "stop", "status", "run"]] = Field(
        description="start, stop, status or run"
    )


class Demo(BaseModel):
    """Start a throwaway PostgreSQL cluster and drive neon-mcp over stdio through every tool."""


class NeonMcp(BaseSettings):
    """A safe, Neon-aware MCP server for PostgreSQL."""

    model_config = SettingsConfigDict(
        cli_prog_name="neon-mcp",
        case_sensitive=True,
        cli_kebab_case=True,
        cli_implicit_flags=True,
        cli_hide_none_type=True,
        cli_avoid_json=True,
    )

    version: CliToggleFlag[bool] = Field(default=False, description="print the version and exit")
    serve: CliSubCommand[Serve] = Field(description="run the MCP server")
    local: CliSubCommand[Local] = Field(
        description="run local Neon (Neon's management API over PostgreSQL clusters on this machine)"
    )
    demo: CliSubCommand[Demo] = Field(description="walk the whole SQL core on a throwaway PostgreSQL")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The command line alone (CliApp adds it): an environment variable named like a command must not select it.
        return (init_settings,)
