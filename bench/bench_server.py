"""neon-mcp's own command line, whose server has two extra tools for benchmarks: ``noop`` (the MCP round trip without
any of neon-mcp's work: the SDK's floor on the same server and transport) and ``memory``.

Run: ``python bench/bench_server.py [serve [--transport http …]]`` with the usual ``NEON_MCP_*`` / ``DATABASE_URL``
environment (no arguments: ``serve`` over stdio). The tools are added by wrapping
``server.mcp.assembly.build_server`` before the command line (and the HTTP app, which imports it) is loaded: the server
has no hook for extra tools, and a benchmark must not need one.
"""

from __future__ import annotations

import sys
from typing import Any

import _common

import server.mcp.assembly


def _with_bench_tools(build: Any) -> Any:
    def build_server(*args: Any, **kwargs: Any) -> Any:
        mcp_server = build(*args, **kwargs)

        async def noop() -> str:
            """Does nothing: the MCP round trip without any of neon-mcp's work."""
            return "ok"

        async def memory() -> dict[str, float]:
            """This process's memory in kB (rss, pss, peak) and the CPU seconds it has used (cpu)."""
            return {**_common.process_memory(), "cpu": _common.cpu_seconds()}

        mcp_server.add_tool(noop)
        mcp_server.add_tool(memory)
        return mcp_server

    return build_server


if __name__ == "__main__":
    server.mcp.assembly.build_server = _with_bench_tools(server.mcp.assembly.build_server)  # type: ignore[method-assign]

    from server.cli import main

    sys.exit(main(sys.argv[1:] or ["serve"]))
