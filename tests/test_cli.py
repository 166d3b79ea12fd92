"""The neon-mcp command line: settings from arguments and environment, and a real stdio subprocess session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from pydantic_settings import get_subcommand

from server.settings import Settings
from tests.helpers import script, text_of

pytestmark = pytest.mark.anyio

EXE = str(Path(sys.executable).parent / "neon-mcp")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEON_MCP_") and k != "DATABASE_URL"}
    env["NEON_MCP_HOME"] = str(tmp_path / "home")
    env.update(extra)
    return env


async def test_stdio_session_end_to_end(fresh_db: str, tmp_path: Path) -> None:
    await script(fresh_db, "CREATE SCHEMA app; CREATE TABLE app.items (id int); INSERT INTO app.items VALUES (1), (2)")
    params = StdioServerParameters(
        command=EXE,
        args=["serve", "--access-mode", "full", "--max-rows", "1", "--log-level", "debug"],
        env=_env(tmp_path, DATABASE_URL=fresh_db),
    )
    async with Client(params) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        read = await client.call_tool("run_sql", {"sql": "SELECT id FROM app.items ORDER BY id"})
        drop = await client.call_tool("run_sql", {"sql": "DROP TABLE app.items"})
        schema = await client.call_tool("describe_schema", {"schema": "app"})
    assert {"run_sql", "run_sql_transaction", "describe_schema", "confirm_operation"} <= tools
    assert read.structured_content["rows"] == [[1]] and read.structured_content["truncated"]  # type: ignore[index]
    assert drop.structured_content["status"] == "confirmation_required"  # type: ignore[index]
    assert "items" in text_of(schema)


def test_settings_come_from_the_environment_and_arguments_win(tmp_path: Path) -> None:
    from server.cli import main

    env = _env(tmp_path, NEON_MCP_MAX_ROWS="0")
    completed = subprocess.run(
        [EXE, "serve", "--database-url", "postgresql://u:secret@127.0.0.1:1/db"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 2
    assert "invalid setting max_rows" in completed.stderr
    assert completed.stdout == "", "stdout is the MCP channel: nothing else is written there"
    assert "secret" not in completed.stderr
    assert main(["--version"]) == 0


def _settings_of(monkeypatch: pytest.MonkeyPatch, argv: list[str], **env: str) -> Settings:
    """The settings ``neon-mcp ARGV`` would run with, neon-mcp's environment variables being exactly ``env``."""
    from pydantic_settings import CliApp

    from server.commands import NeonMcp, Options

    for name in os.environ:
        if name.startswith("NEON_MCP_") or name.startswith("NEON_") or name == "DATABASE_URL":
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    command = CliApp.run(NeonMcp, cli_args=argv)
    sub = get_subcommand(command, is_required=False)
    assert isinstance(sub, Options)
    return sub.settings()


def test_options_override_the_environment_which_overrides_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"NEON_MCP_MAX_ROWS": "7", "NEON_MCP_LOCK_TIMEOUT": "2", "DATABASE_URL": "postgresql://env@h/db"}
    settings = _settings_of(monkeypatch, ["serve", "--max-rows", "3", "--database-url", "postgresql://arg@h/db"], **env)
    assert settings.max_rows == 3 and settings.lock_timeout == 2 and settings.statement_timeout == 30
    assert settings.database_url is not None and settings.database_url.get_secret_value() == "postgresql://arg@h/db"
    assert _settings_of(monkeypatch, ["serve"], **env).max_rows == 7
    local = _settings_of(monkeypatch, ["local", "status", "--history-seconds", "60"], NEON_MCP_LOCAL_PORT="5")
    assert local.history_seconds == 60 and local.local_port == 5


@pytest.mark.parametrize(
    ("argv", "env", "field", "value"),
    [
        (["serve", "--neon-key-from-header"], {}, "neon_key_from_header", True),
        (
            ["serve", "--no-neon-key-from-header"],
            {"NEON_MCP_NEON_KEY_FROM_HEADER": "true"},
            "neon_key_from_header",
            False,
        ),
        (["serve"], {"NEON_MCP_NEON_KEY_FROM_HEADER": "true"}, "neon_key_from_header", True),
        (["serve", "--log-level", "debug"], {}, "log_level", "DEBUG"),
        (["serve", "--access-mode", "full"], {"NEON_MCP_ACCESS_MODE": "read-only"}, "access_mode", "full"),
        (["serve", "--statement-timeout", "1.5"], {}, "statement_timeout", 1.5),
        (["serve", "--default-schema", ""], {"NEON_MCP_DEFAULT_SCHEMA": "auslex"}, "default_schema", None),
        (["local", "run", "--local-clusters", "/tmp/c"], {}, "local_clusters", Path("/tmp/c")),
    ],
)
def test_options_are_typed_as_their_settings(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], env: dict[str, str], field: str, value: object
) -> None:
    assert getattr(_settings_of(monkeypatch, argv, **env), field) == value


def test_each_option_is_described_by_its_setting(capsys: pytest.CaptureFixture[str]) -> None:
    from server.cli import main
    from server.commands import LOCAL_OPTIONS, SERVE_OPTIONS

    helps = {}
    for command, options in {"serve": SERVE_OPTIONS, "local": LOCAL_OPTIONS}.items():
        with pytest.raises(SystemExit) as exit_:
            main([command, "--help"])
        assert exit_.value.code == 0
        helps[command] = text = " ".join(capsys.readouterr().out.split())
        for option in options:
            description = Settings.model_fields[option].description
            assert f"--{option.replace('_', '-')}" in text and description and description[:30] in text
    assert "--transport {stdio,http,sse}" in helps["serve"] and "--max-rows int" in helps["serve"]
    assert "--neon-key-from-header, --no-neon-key-from-header" in helps["serve"]
    assert "--transport" not in helps["local"] and "--neon-api-key" not in helps["serve"]


@pytest.mark.parametrize(
    ("argv", "env", "stderr"),
    [
        (["serve", "--max-rows", "0"], {}, "neon-mcp: invalid setting max_rows: "),
        (["serve", "--access-mode", "everything"], {}, "neon-mcp: invalid setting access_mode: "),
        (["serve", "--port", "http"], {}, "neon-mcp: invalid setting port: "),
        (["serve"], {"NEON_MCP_STATEMENT_TIMEOUT": "-1"}, "neon-mcp: invalid setting statement_timeout: "),
        (["local", "begin"], {}, "neon-mcp: invalid argument action: "),
        (["serve", "--neon-api-key", "napi_x"], {}, "unrecognized arguments"),
        (["serve", "--DATABASE-URL", "postgresql://u@h/db"], {}, "unrecognized arguments"),
        (["serve", "--local-port", "1"], {}, "unrecognized arguments"),
        (["local", "start", "--transport", "http"], {}, "unrecognized arguments"),
        ([], {"SERVE": "{}", "VERSION": "1"}, "usage: neon-mcp"),
    ],
)
def test_bad_command_lines_exit_2_saying_why_on_stderr_only(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    env: dict[str, str],
    stderr: str,
) -> None:
    from server.cli import main

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse's own refusals
        status = int(exc.code or 0)
    out, err = capsys.readouterr()
    assert status == 2 and stderr in err and out == ""


async def test_serve_with_an_unreachable_neon_api_answers_clearly_and_never_shows_the_key(tmp_path: Path) -> None:
    key = "napi_secret_key_value"
    env = _env(tmp_path, NEON_API_KEY=key, NEON_API_HOST="http://127.0.0.1:1/api/v2")
    params = StdioServerParameters(command=EXE, args=["serve", "--log-level", "debug"], env=env)
    errlog = tmp_path / "stderr.txt"
    with errlog.open("w") as stderr:
        async with Client(stdio_client(params, errlog=stderr)) as client:
            tools = {tool.name for tool in (await client.list_tools()).tools}
            result = await client.call_tool("run_sql", {"sql": "SELECT 1"})
    assert "list_branches" in tools
    assert result.is_error and "could not connect" in text_of(result)
    assert key not in text_of(result)
    assert key not in errlog.read_text()


async def test_serve_with_nothing_configured_serves_local_neon() -> None:
    home = Path(tempfile.mkdtemp(prefix="neon-mcp-serve-local-"))
    if os.geteuid() == 0:
        home.chmod(0o711)  # local Neon's PostgreSQL runs as nobody
    env = _env(home)
    env.pop("NEON_API_KEY", None)
    try:
        async with Client(StdioServerParameters(command=EXE, args=["serve"], env=env)) as client:
            result = await client.call_tool("run_sql", {"sql": "SELECT current_user, current_database()"})
            tools = {tool.name for tool in (await client.list_tools()).tools}
        assert not result.is_error, text_of(result)
        assert result.structured_content["branch"] == "production"  # type: ignore[index]
        assert {"list_branches", "create_branch", "compare_schemas"} <= tools
        assert result.structured_content["rows"] == [["neondb_owner", "neondb"]]  # type: ignore[index]
        status = subprocess.run([EXE, "local", "status"], env=env, capture_output=True, text=True, check=False)
        assert status.returncode == 0, "local Neon keeps running for the next client"
    finally:
        subprocess.run([EXE, "local", "stop"], env=env, capture_output=True, timeout=120, check=False)
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.parametrize("breakage", ["wrong-password", "no-server"])
async def test_connection_errors_never_carry_the_password(
    fresh_db: str, tmp_path: Path, caplog: pytest.LogCaptureFixture, breakage: str
) -> None:
    import logging

    from server.settings import Settings
    from tests.helpers import mcp_client

    password = "Sup3r-s3cret-pw"
    user_host = fresh_db.split("@", 1)[1]
    url = f"postgresql://postgres:{password}@{user_host}"
    if breakage == "no-server":
        url = f"postgresql://postgres:{password}@127.0.0.1:1/postgres"
    caplog.set_level(logging.DEBUG)
    async with mcp_client(Settings(database_url=url, home=tmp_path)) as client:
        result = await client.call_tool("run_sql", {"sql": "SELECT 1"})
    assert result.is_error
    assert "password authentication failed" in text_of(result) or "connection failed" in text_of(result)
    assert password not in text_of(result)
    assert password not in caplog.text


def test_the_demo_runs_to_the_end(tmp_path: Path) -> None:
    completed = subprocess.run(
        [EXE, "demo"], env=_env(tmp_path), capture_output=True, text=True, timeout=300, check=False
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert "all as expected" in completed.stdout
    assert "✗" not in completed.stdout
