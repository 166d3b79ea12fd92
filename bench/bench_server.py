"""The neon-mcp server with two extra tools for benchmarks: ``noop`` (the SDK's own floor) and ``memory``.

Run: ``python bench/bench_server.py`` with the usual ``NEON_MCP_*`` / ``DATABASE_URL`` environment.
"""

from __future__ import annotations

import resource

from server.app import build_server
from server.settings import Settings


def main() -> None:
    server = build_server(Settings())

    async def noop() -> str:
        """Does nothing: the MCP round trip without any of neon-mcp's work."""
        return "ok"

    async def memory() -> dict[str, float]:
        """This process's current and peak resident memory in kB, and the CPU seconds it has used."""
        fields: dict[str, float] = {}
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":")
                    fields[key] = int(value.split()[0])
        usage = resource.getrusage(resource.RUSAGE_SELF)
        fields["maxrss"] = usage.ru_maxrss
        fields["cpu"] = usage.ru_utime + usage.ru_stime
        return fields

    server.add_tool(noop)
    server.add_tool(memory)
    server.run("stdio")


if __name__ == "__main__":
    main()
