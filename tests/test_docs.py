"""Docs stay honest: every tool, setting, option and prompt is documented or registered, links resolve, the README
stays short, and the architecture page names every package."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from server.commands import SERVE_OPTIONS
from server.mcp.assembly import build_server
from server.mcp.reference import CONFIGURATIONS
from server.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
DOCS = ROOT / "docs"
TOOLS_MD = (DOCS / "tools.md").read_text()
SETTINGS_MD = (DOCS / "settings.md").read_text()
ARCHITECTURE_MD = (DOCS / "architecture.md").read_text()

pytestmark = pytest.mark.anyio


def _server(access_mode: str = "full", *, neon: bool = False) -> object:
    if neon:  # nothing is contacted until a tool runs
        return build_server(
            Settings(neon_api_key="napi_x", neon_api_host="http://127.0.0.1:1/api/v2", access_mode=access_mode)
        )
    return build_server(Settings(database_url="postgresql://u@127.0.0.1:1/db", access_mode=access_mode))


async def _every_tool() -> set[str]:
    """The tools of every kind of server there can be (those the reference documents describe)."""
    names: set[str] = set()
    for configuration in CONFIGURATIONS:
        names |= {tool.name for tool in await build_server(configuration.settings()).list_tools()}
    return names


def test_the_readme_is_short() -> None:
    assert len(README.encode()) < 12_000, "README.md must stay under 12 KB: move detail to docs/"


async def test_the_readme_lists_every_tool_in_one_line_and_no_other() -> None:
    listed = re.findall(r"^- `([a-z_]+)` — \S.*$", README, re.MULTILINE)
    assert len(listed) == len(set(listed)), "a tool is listed twice in the README"
    assert set(listed) == await _every_tool()


async def test_every_tool_has_a_section_in_docs_tools_md() -> None:
    for name in await _every_tool():
        assert f"### `{name}`\n" in TOOLS_MD, f"tool {name} is not in docs/tools.md: run python -m server.mcp.reference"


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_every_setting_is_in_docs_settings_md(field: str) -> None:
    env = "DATABASE_URL" if field == "database_url" else f"NEON_MCP_{field.upper()}"
    assert f"| `{field}` | " in SETTINGS_MD, f"setting {field} is not in docs/settings.md"
    assert f"`{env}`" in SETTINGS_MD, f"setting {field} ({env}) is not in docs/settings.md"
    assert Settings.model_fields[field].description, f"setting {field} has no description (it is the CLI help)"


@pytest.mark.parametrize("option", SERVE_OPTIONS)
def test_every_serve_option_is_in_docs_settings_md(option: str) -> None:
    assert f"`--{option.replace('_', '-')}` (serve" in SETTINGS_MD


async def test_every_prompt_file_is_registered_and_documented() -> None:
    from mcp import Client

    files = {path.stem for path in (ROOT / "prompts").glob("*.md")}
    async with Client(_server()) as client:  # type: ignore[arg-type]
        registered = {prompt.name for prompt in (await client.list_prompts()).prompts}
    assert files and files <= registered
    for name in registered:
        assert f"### `{name}`\n" in TOOLS_MD, f"prompt {name} is not in docs/tools.md"
        assert f"`{name}`" in README, f"prompt {name} is not named in the README"


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


# --- links -----------------------------------------------------------------------------------------------------------

_PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _prose(text: str) -> str:
    """Markdown without fenced code blocks and inline code (neither holds links or headings)."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    return re.sub(r"`[^`\n]*`", "", text)


def _anchors(text: str) -> set[str]:
    """The anchors GitHub makes for a page's headings: lower case, punctuation dropped, spaces as hyphens, and a
    ``-1``, ``-2`` … suffix for repeats."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    seen: dict[str, int] = {}
    anchors = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *#*$", text, re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


@pytest.mark.parametrize("page", _PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    for target in _LINK.findall(_prose(page.read_text())):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):
            continue  # http:, https:, mailto: …
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        assert resolved.exists(), f"{page.name}: link to {target} does not resolve"
        if anchor and resolved.suffix == ".md":
            assert anchor in _anchors(resolved.read_text()), f"{page.name}: {target} names no heading"


# --- architecture ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "package",
    sorted(p.name for p in (ROOT / "server").iterdir() if p.is_dir() and (p / "__init__.py").exists()),
)
def test_the_architecture_page_names_every_package(package: str) -> None:
    assert f"`server/{package}/`" in ARCHITECTURE_MD, f"docs/architecture.md does not describe server/{package}/"


@pytest.mark.parametrize("module", sorted(p.name for p in (ROOT / "server").glob("*.py")))
def test_the_architecture_page_names_every_top_level_module(module: str) -> None:
    assert f"`server/{module}`" in ARCHITECTURE_MD, f"docs/architecture.md does not describe server/{module}"
