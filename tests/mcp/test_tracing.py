"""OpenTelemetry: the SDK's tracing middleware stays when a tracer provider is configured (spans are recorded for every
message) and is left out otherwise (it would open no-op spans on every call). A tracer provider is global to a
process, so each case runs in a process of its own."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import anyio
    from mcp import Client
    from opentelemetry import trace

    names = []

    class Recording(trace.NoOpTracer):
        def start_span(self, name, *args, **kwargs):
            names.append(name)
            return super().start_span(name, *args, **kwargs)

    class Provider(trace.TracerProvider):
        def get_tracer(self, *args, **kwargs):
            return Recording()

    if sys.argv[1] == "configured":
        trace.set_tracer_provider(Provider())

    from server.mcp.assembly import build_server
    from server.settings import Settings

    server = build_server(Settings(database_url="postgresql://u@127.0.0.1:1/db", home=sys.argv[2]))

    async def main():
        async with Client(server) as client:
            tools = await client.list_tools()
        middleware = [type(m).__name__ for m in server.middleware]
        print(json.dumps({"middleware": middleware, "spans": names, "tools": len(tools.tools)}))

    anyio.run(main)
    """
)


def _run(case: str, home: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", SCRIPT, case, home], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_with_a_tracer_provider_every_message_is_traced(tmp_path: object) -> None:
    result = _run("configured", str(tmp_path))
    assert "OpenTelemetryMiddleware" in result["middleware"]  # type: ignore[operator]
    assert "tools/list" in result["spans"]  # type: ignore[operator]


def test_without_one_the_tracing_middleware_is_left_out(tmp_path: object) -> None:
    result = _run("plain", str(tmp_path))
    assert "OpenTelemetryMiddleware" not in result["middleware"]  # type: ignore[operator]
    assert result["spans"] == [] and result["tools"]
