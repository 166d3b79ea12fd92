"""The generated reference documents (docs/tools.md, docs/settings.md) are what the generator makes now."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.mcp import reference


@pytest.fixture(scope="module")
def generated() -> dict[str, str]:
    return reference.documents()


@pytest.mark.parametrize("path", ["docs/tools.md", "docs/settings.md"])
def test_the_committed_document_is_what_the_generator_makes(path: str, generated: dict[str, str]) -> None:
    committed = (reference.ROOT / path).read_text(encoding="utf-8")
    assert committed == generated[path], f"{path} is out of date: run python -m server.mcp.reference"


def test_the_documents_do_not_depend_on_the_environment(
    generated: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEON_MCP_ACCESS_MODE", "full")
    monkeypatch.setenv("NEON_MCP_MAX_ROWS", "3")
    monkeypatch.setenv("NEON_MCP_DEFAULT_SCHEMA", "elsewhere")
    monkeypatch.setenv("DATABASE_URL", "postgresql://someone@db.example/other")
    monkeypatch.setenv("XDG_DATA_HOME", "/nowhere")
    assert reference.documents() == generated


def test_the_tool_reference_shows_annotations_that_differ_by_access_mode(generated: dict[str, str]) -> None:
    run_sql = generated["docs/tools.md"].split("### `run_sql`\n", 1)[1].split("\n### ", 1)[0]
    assert "Annotations (URL read-only, Neon read-only): read-only, not destructive" in run_sql
    assert "Annotations (URL full, Neon branches, Neon full): not read-only, destructive" in run_sql


def test_the_settings_reference_names_environment_options_and_defaults(generated: dict[str, str]) -> None:
    rows = {line.split(" | ")[0].strip("| `"): line for line in generated["docs/settings.md"].splitlines()}
    assert "`DATABASE_URL`, `NEON_MCP_DATABASE_URL`" in rows["database_url"]
    assert "`--max-rows` (serve)" in rows["max_rows"] and "`500`" in rows["max_rows"]
    assert "`--log-level` (serve, local)" in rows["log_level"]
    assert "`$XDG_DATA_HOME/neon-mcp`" in rows["home"]


def test_main_writes_the_documents_and_check_finds_stale_ones(
    tmp_path: Path, generated: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "docs").mkdir()
    monkeypatch.setattr(reference, "ROOT", tmp_path)
    assert reference.main(["--check"]) == 1  # missing
    assert reference.main([]) == 0
    assert {path: (tmp_path / path).read_text(encoding="utf-8") for path in generated} == generated
