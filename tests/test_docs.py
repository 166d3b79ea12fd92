"""Docs stay honest: every tool, setting, option and prompt is documented or registered."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from server.cli import _SERVE_OPTIONS
from server.mcp.assembly import build_server
from server.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()

pytestmark = pytest.mark.anyio


def _server(access_mode: str = "full", *, neon: bool = False) -> object:
    if neon:  # nothing is contacted until a tool runs
        return build_server(
            Settings(neon_api_key="napi_x", neon_api_host="http://127.0.0.1:1/api/v2", access_mode=access_mode)
        )
    return build_server(Settings(database_url="postgresql://u@127.0.0.1:1/db", access_mode=access_mode))


@pytest.mark.parametrize("neon", [False, True], ids=["database-url", "neon"])
async def test_every_tool_is_in_the_readme(neon: bool) -> None:
    from mcp import Client

    async with Client(_server(neon=neon)) as client:  # type: ignore[arg-type]
        names = [tool.name for tool in (await client.list_tools()).tools]
    assert names
    for name in names:
        assert f"`{name}(" in README, f"tool {name} is not documented in README.md"


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_every_setting_is_in_the_readme(field: str) -> None:
    env = "DATABASE_URL" if field == "database_url" else f"NEON_MCP_{field.upper()}"
    assert f"`{env}`" in README, f"setting {field} ({env}) is not in the README's settings table"
    assert Settings.model_fields[field].description, f"setting {field} has no description (it is the CLI help)"


@pytest.mark.parametrize("option", _SERVE_OPTIONS)
def test_every_serve_option_is_in_the_readme(option: str) -> None:
    assert f"`--{option.replace('_', '-')}`" in README


async def test_every_prompt_file_is_registered() -> None:
    from mcp import Client

    files = {path.stem for path in (ROOT / "prompts").glob("*.md")}
    async with Client(_server()) as client:  # type: ignore[arg-type]
        registered = {prompt.name for prompt in (await client.list_prompts()).prompts}
    assert files and files <= registered


async def test_agent_md_names_only_tools_the_server_has() -> None:
    from mcp import Client

    text = (ROOT / "agent.md").read_text()
    front = text.split("---")[1]
    listed = re.search(r"^tools:\s*(.+)$", front, re.MULTILINE)
    assert listed is not None
    names = {name.strip().removeprefix("mcp__neon__") for name in listed.group(1).split(",")}
    async with Client(_server(neon=True)) as client:  # type: ignore[arg-type]
        tools = {tool.name for tool in (await client.list_tools()).tools}
    assert names <= tools, names - tools


def test_the_readme_commands_are_what_ci_runs() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "tests/run" in ci
    assert "\ntests/run\n" in README
    assert "neon-mcp demo" in README
