"""Helpers for tests: an in-process MCP client on a server built from settings, and direct SQL for setup/checks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from mcp import Client
from mcp_types import CallToolResult, ElicitRequestParams, ElicitResult

from server.mcp.assembly import build_server
from server.settings import Settings


@asynccontextmanager
async def mcp_client(settings: Settings, **client_options: Any) -> AsyncIterator[Client]:
    """An in-process MCP client connected to a server built from ``settings``."""
    async with Client(build_server(settings), **client_options) as client:
        yield client


async def sql(url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    """Run one query directly (outside the server under test), for test setup and checks."""
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


async def script(url: str, text: str) -> None:
    """Run a multi-statement setup script directly."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(text)
    finally:
        await conn.close()


def text_of(result: CallToolResult) -> str:
    """The text content of a tool result."""
    return "\n".join(block.text for block in result.content if block.type == "text")


def data_of(result: CallToolResult) -> dict[str, Any]:
    """The structured content of a successful tool result (fails the test with the text otherwise)."""
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None
    return dict(result.structured_content)


class Human:
    """An elicitation callback: answers every form as told (``yes`` in each field) and remembers the questions."""

    def __init__(self, action: str = "accept", yes: bool = True) -> None:
        self.action = action
        self.yes = yes
        self.asked: list[str] = []

    async def __call__(self, context: Any, params: ElicitRequestParams) -> ElicitResult:
        self.asked.append(params.message)
        if self.action != "accept":
            return ElicitResult(action=self.action)  # type: ignore[arg-type]
        fields = params.requested_schema["properties"]  # type: ignore[union-attr]
        return ElicitResult(action="accept", content={name: self.yes for name in fields})
