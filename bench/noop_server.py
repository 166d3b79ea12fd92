"""A bare ``MCPServer`` with one no-op tool, over stdio through a chosen transport: the cost of the transport itself.

Run: ``python bench/noop_server.py sdk|native|native-asyncio``: the SDK's own ``stdio_server`` (a worker-thread hop
per line read and per answer written), neon-mcp's native pipes (``server.transport.stdio``) on uvloop, or the same
on asyncio's own event loop. The tool ``cpu`` answers the CPU seconds this process has used.
"""

from __future__ import annotations

import sys
import time

from mcp.server.mcpserver import MCPServer

if __name__ == "__main__":
    transport = sys.argv[1]
    server = MCPServer("noop")

    @server.tool()
    async def noop() -> str:
        """Does nothing."""
        return "ok"

    @server.tool()
    async def cpu() -> float:
        """CPU seconds used by this process."""
        return time.process_time()

    if transport == "sdk":
        server.run("stdio")
    else:
        if transport == "native-asyncio":
            sys.modules["uvloop"] = None  # type: ignore[assignment]  # import uvloop now fails: asyncio's loop
        from server.transport.stdio import serve

        serve(server)
