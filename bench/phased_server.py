"""neon-mcp's benchmark server (``bench/bench_server.py``) with a clock at each phase of a ``tools/call``: where a
call's time goes inside the server, between the line read from stdin and the answer written (``bench/sdk_costs.py``).

The phases are marked by wrapping the SDK's internals (``Tool.run``, argument validation, the resolvers, the call of
the tool's function, the result's conversion) and neon-mcp's stdio transport: a measurement of where the time goes,
never something the server does. One client calling one tool at a time, as the benchmark does. The extra tool
``phases`` answers, per tool (and SQL text, for ``run_sql``: ``run_sql(select 1)``), the median of each phase in
seconds over the calls since the last ``phases`` call.

Run: ``python bench/phased_server.py`` with the usual ``DATABASE_URL`` / ``NEON_MCP_*`` environment (stdio only).
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any

import bench_server
from mcp.server.mcpserver.tools import base
from mcp.server.mcpserver.utilities import func_metadata

import server.mcp.assembly
from server.transport import stdio

PHASES = {
    "the SDK: from the line read to the tool's `run`": ("read", "run"),
    "the SDK: argument validation": ("run", "validated"),
    "resolvers (`run_sql`: the confirmation question, which plans the statement)": ("validated", "resolved"),
    "the SDK: from the resolvers to the tool's function": ("resolved", "body"),
    "the tool's function (`run_sql`: plan, run, answer)": ("body", "answered"),
    "the SDK: result conversion": ("answered", "converted"),
    "the SDK: from the conversion to the transport (the response's checks and model)": ("converted", "sending"),
    "the transport: the answer dumped to JSON": ("sending", "dumped"),
    "in the server, from the line read to the answer's write": ("read", "dumped"),
    "the write itself (a system call: the client it wakes may run on this core first)": ("dumped", "written"),
}
"""Each phase between two clock readings of a call. In order, the readings are: its line read and parsed, ``Tool.run``
entered, arguments validated, resolvers done (tools that have them), the function called, the function returned, the
result converted, the answer handed to the transport, dumped to JSON, written to the pipe. Consecutive phases (the
medians need not add up to the median of the whole), the whole until the write, the write."""

_now = time.perf_counter
_call: dict[str, Any] = {}
_done: dict[str, list[dict[str, float]]] = {}


def call_key(tool: str, arguments: Any) -> str:
    """How ``phases`` names a call: the tool, with its SQL text for ``run_sql`` (``run_sql(select 1)``)."""
    sql = arguments.get("sql") if isinstance(arguments, dict) else None
    return tool if sql is None else f"{tool}({sql})"


def _mark(name: str) -> None:
    _call[name] = _now()


class _Timed:
    """stdout's transport, with the clock read just before and just after each write."""

    def __init__(self, transport: Any) -> None:
        self._transport = transport

    def write(self, data: bytes) -> None:
        _mark("dumped")
        self._transport.write(data)
        _mark("written")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _instrument() -> None:
    receive, send = stdio._Requests.receive, stdio._Answers.send
    run, validate = base.Tool.run, func_metadata.FuncMetadata.validate_arguments
    resolve, call_fn = base.resolve_arguments, func_metadata.FuncMetadata.call_fn
    convert = func_metadata.FuncMetadata.convert_result

    async def receiving(self: Any) -> Any:
        message = await receive(self)
        _call.clear()
        _mark("read")
        return message

    async def sending(self: Any, item: Any) -> None:
        _mark("sending")
        if not isinstance(self._transport, _Timed):
            self._transport = _Timed(self._transport)
        await send(self, item)
        tool = _call.pop("tool", None)
        if tool is not None and tool != "phases":
            marks = dict(_call)
            marks.setdefault("resolved", marks.get("validated", 0.0))
            _done.setdefault(tool, []).append(marks)

    async def running(self: Any, arguments: Any, context: Any, convert_result: bool = False) -> Any:
        _call["tool"] = call_key(self.name, arguments)
        _mark("run")
        return await run(self, arguments, context, convert_result)

    def validating(self: Any, arguments: Any) -> Any:
        validated = validate(self, arguments)
        _mark("validated")
        return validated

    async def resolving(*args: Any) -> Any:
        resolved = await resolve(*args)
        _mark("resolved")
        return resolved

    async def calling(self: Any, *args: Any) -> Any:
        _mark("body")
        result = await call_fn(self, *args)
        _mark("answered")
        return result

    def converting(self: Any, result: Any) -> Any:
        converted = convert(self, result)
        _mark("converted")
        return converted

    stdio._Requests.receive = receiving  # type: ignore[method-assign]
    stdio._Answers.send = sending  # type: ignore[method-assign]
    base.Tool.run = running  # type: ignore[method-assign]
    base.resolve_arguments = resolving
    func_metadata.FuncMetadata.validate_arguments = validating  # type: ignore[method-assign]
    func_metadata.FuncMetadata.call_fn = calling  # type: ignore[method-assign]
    func_metadata.FuncMetadata.convert_result = converting  # type: ignore[method-assign]


def _with_phases(build: Any) -> Any:
    def build_server(*args: Any, **kwargs: Any) -> Any:
        mcp_server = build(*args, **kwargs)

        async def phases() -> dict[str, dict[str, float]]:
            """Per tool, the median seconds of each phase over the calls since the last call of this tool."""
            answer = {
                tool: {
                    name: statistics.median(call[end] - call[start] for call in calls)
                    for name, (start, end) in PHASES.items()
                }
                for tool, calls in _done.items()
            }
            _done.clear()
            return answer

        mcp_server.add_tool(phases)
        return mcp_server

    return build_server


if __name__ == "__main__":
    _instrument()
    build = bench_server._with_bench_tools(server.mcp.assembly.build_server)
    server.mcp.assembly.build_server = _with_phases(build)  # type: ignore[method-assign]

    from server.cli import main

    sys.exit(main(["serve"]))
