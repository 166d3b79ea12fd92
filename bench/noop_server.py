"""A bare ``MCPServer`` with one no-op tool, over stdio through a chosen transport: the cost of the transport itself,
and of what only the SDK can remove (``bench/sdk_costs.py``).

Run: ``python bench/noop_server.py MODE``:

- ``sdk``: the SDK's own ``stdio_server`` (a worker-thread hop per line read and per answer written);
- ``native``: neon-mcp's native pipes (``server.transport.stdio``), on uvloop; ``native-asyncio``: on asyncio's loop;
- ``native-no-otel``, ``native-no-relay``, ``native-bare``: ``native`` with the SDK's OpenTelemetry middleware taken
  off the (public) middleware list, with the opening request's replay relay replaced by a relay-free stream, or
  both. The relay is replaced by patching the SDK's internals: a measurement of what an upstream change would
  gain, never something the server does.

The tool ``cpu`` answers the CPU seconds this process has used.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

from mcp.server.mcpserver import MCPServer


class _Replayed:
    """The read stream after its opening frames: those first, then the stream itself, with no task between."""

    def __init__(self, lead: list[Any], inner: Any) -> None:
        self._lead = lead
        self._inner = inner
        self.last_context = None

    async def receive(self) -> Any:
        if self._lead:
            self.last_context, item = self._lead.pop(0)
            return item
        item = await self._inner.receive()
        self.last_context = getattr(self._inner, "last_context", None)
        return item

    def __aiter__(self) -> _Replayed:
        return self

    async def __anext__(self) -> Any:
        import anyio

        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> _Replayed:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _without_replay_relay() -> None:
    import contextvars

    import anyio
    from mcp.server import runner
    from mcp.shared.message import SessionMessage
    from mcp_types import JSONRPCRequest

    @contextlib.asynccontextmanager
    async def replay(read_stream: Any) -> AsyncIterator[tuple[Any, Any]]:
        lead: list[Any] = []
        opening = None
        try:
            async for item in read_stream:
                lead.append((contextvars.copy_context(), item))
                if isinstance(item, SessionMessage) and isinstance(item.message, JSONRPCRequest):
                    opening = item.message
                    break
        except anyio.ClosedResourceError:
            pass
        yield opening, _Replayed(lead, read_stream)

    runner._replay_from_opening_request = replay  # type: ignore[assignment]


if __name__ == "__main__":
    mode = sys.argv[1]
    server = MCPServer("noop")

    @server.tool()
    async def noop() -> str:
        """Does nothing."""
        return "ok"

    @server.tool()
    async def cpu() -> float:
        """CPU seconds used by this process."""
        return time.process_time()

    if mode == "sdk":
        server.run("stdio")
    else:
        if mode == "native-asyncio":
            sys.modules["uvloop"] = None  # type: ignore[assignment]  # import uvloop now fails: asyncio's loop
        if mode in ("native-no-otel", "native-bare"):
            server.middleware[:] = [m for m in server.middleware if type(m).__name__ != "OpenTelemetryMiddleware"]
        if mode in ("native-no-relay", "native-bare"):
            _without_replay_relay()
        from server.transport.stdio import serve

        serve(server)
