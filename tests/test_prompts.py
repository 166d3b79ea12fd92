"""Prompts render with their arguments and the settings; agent.md is what the generator makes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from mcp import Client
from pydantic import SecretStr

from prompts.agent_md import agent_md, neon_tool_names
from server.mcp.assembly import build_server
from server.settings import Settings

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent
NEON = {"neon_api_key": SecretStr("x"), "neon_api_host": "http://127.0.0.1:1/api/v2"}


@pytest.mark.parametrize(
    ("name", "argument"),
    [
        ("safe-migration", "change"),
        ("optimize-query", "sql"),
        ("diagnose-connection", "symptom"),
        ("design-schema", "requirements"),
    ],
)
async def test_workflow_prompts_render_their_argument_and_the_settings(name: str, argument: str) -> None:
    settings = Settings(**NEON, production_branch="live", default_schema="auslex")
    value = "the {production_branch} text stays as the caller wrote it"
    async with Client(build_server(settings)) as client:
        prompts = {p.name: p for p in (await client.list_prompts()).prompts}
        result = await client.get_prompt(name, {argument: value})
    assert [a.name for a in prompts[name].arguments or []] == [argument]
    text = result.messages[0].content.text  # type: ignore[union-attr]
    assert value in text
    assert "{" + argument + "}" not in text
    assert "auslex" in text and "live" in text
    assert "{default_schema}" not in text and "{production_branch}" not in text.replace(value, "")


async def test_the_expert_prompt_names_the_settings_and_says_when_neon_is_missing() -> None:
    async with Client(build_server(Settings(**NEON, production_branch="live", default_schema="auslex"))) as client:
        neon = (await client.get_prompt("neon-db-expert", {})).messages[0].content.text  # type: ignore[union-attr]
    plain = Settings(database_url="postgresql://u@127.0.0.1:1/db")
    async with Client(build_server(plain)) as client:
        url = (await client.get_prompt("neon-db-expert", {})).messages[0].content.text  # type: ignore[union-attr]
    assert "**live**" in neon and "`auslex.users`" in neon and "access mode **branches**" in neon
    assert "never assume it is called `main`" in neon
    assert url.startswith("Note: this server is connected to a plain PostgreSQL database")


def test_agent_md_is_generated_from_the_prompt_and_the_server_tools() -> None:
    shipped = (ROOT / "agent.md").read_text()
    assert shipped == agent_md(), "regenerate: .venv/bin/python -m prompts.agent_md > agent.md"
    front = shipped.split("---\n")[1]
    fields = dict(line.split(": ", 1) for line in front.strip().splitlines())
    assert fields["name"] == "neon-db-expert" and fields["model"] == "sonnet"
    assert "<example>" in json.loads(fields["description"])
    tools = [name.strip() for name in fields["tools"].split(",")]
    assert tools == [f"mcp__neon__{name}" for name in neon_tool_names()]
    assert all(re.fullmatch(r"mcp__neon__[a-z_]+", name) for name in tools)
