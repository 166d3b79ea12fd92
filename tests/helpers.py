"""Helpers for tests: an in-process MCP client on a server built from settings, and direct SQL for setup/checks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from mcp import Client
from mcp_types import CallToolResult

from server.app import build_server
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
