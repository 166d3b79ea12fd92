"""The stdio transport (``server.transport.stdio``): a real server process on native pipes, driven by the SDK's own
stdio client and by hand — partial and huge lines, concurrent calls, EOF, a client that goes away, stray output of
the server's own code and children, and the fallback to the SDK's transport; on uvloop and on asyncio's own loop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, Any

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from tests.helpers import text_of

pytestmark = pytest.mark.anyio

SERVER = """
import asyncio, logging, os, subprocess, sys
if sys.argv[1] == "asyncio":
    sys.modules["uvloop"] = None  # import uvloop now fails, as where it is not installed
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
from mcp.server.mcpserver import MCPServer
from server.transport.stdio import serve

server = MCPServer("echo")

@server.tool()
async def echo(text: str, delay: float = 0) -> str:
    await asyncio.sleep(delay)
    return text

@server.tool()
async def stray() -> str:
    print("stray print", flush=True)
    os.write(1, b"stray write\\n")
    subprocess.run(["echo", "stray child"], check=True)
    return repr(os.read(0, 10))

serve(server)
"""
"""A bare MCPServer with two tools on this transport; its argument picks the event loop."""


@pytest.fixture(params=["uvloop", "asyncio"])
def loop(request: pytest.FixtureRequest) -> str:
    if request.param == "uvloop":
        pytest.importorskip("uvloop", reason="uvloop is not installed here (it is a dependency on Linux and macOS)")
    return str(request.param)


def _command(loop: str) -> list[str]:
    return [sys.executable, "-c", SERVER, loop]


@asynccontextmanager
async def _client(loop: str, errlog: IO[str]) -> AsyncIterator[Client]:
    params = StdioServerParameters(command=sys.executable, args=["-c", SERVER, loop], env=dict(os.environ))
    async with Client(stdio_client(params, errlog=errlog)) as client:
        yield client


def _request(id_: int, method: str, params: dict[str, Any] | None = None) -> bytes:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": id_, "method": method}
    if params is not None:
        message["params"] = params
    return json.dumps(message).encode()


INITIALIZE = _request(
    1,
    "initialize",
    {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "test", "version": "0"}},
)
INITIALIZED = b'{"jsonrpc": "2.0", "method": "notifications/initialized"}\n'


def _started(loop: str, stderr: IO[bytes], **streams: Any) -> subprocess.Popen[bytes]:
    options: dict[str, Any] = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, **streams}
    return subprocess.Popen(_command(loop), stderr=stderr, **options)


def _answer(stdout: IO[bytes]) -> dict[str, Any]:
    line = stdout.readline()
    assert line.endswith(b"\n"), f"one answer per line: {line[:200]!r}"
    return dict(json.loads(line))


def _stderr(path: Path) -> str:
    return path.read_text(errors="replace")


async def test_native_pipes_serve_a_real_client_on_either_loop(loop: str, tmp_path: Path) -> None:
    errlog = tmp_path / "stderr.txt"
    with errlog.open("w") as err:
        async with _client(loop, err) as client:
            result = await client.call_tool("echo", {"text": "hello"})
    assert text_of(result) == "hello"
    expected = "uvloop" if loop == "uvloop" else "asyncio"
    assert f"stdio over native pipes ({expected}" in _stderr(errlog)


async def test_messages_of_megabytes_cross_both_ways(loop: str, tmp_path: Path) -> None:
    big = "é" * 2_500_000 + "\u2028" + "x" * 2_500_000  # 7.5 MB of UTF-8, a JSON line separator inside
    with (tmp_path / "stderr.txt").open("w") as err:
        async with _client(loop, err) as client:
            result = await client.call_tool("echo", {"text": big})
            after = await client.call_tool("echo", {"text": "still in step"})
    assert text_of(result) == big
    assert result.structured_content == {"result": big}
    assert text_of(after) == "still in step"


async def test_concurrent_calls_get_their_own_answers_whole(loop: str, tmp_path: Path) -> None:
    answers: dict[int, str] = {}
    with (tmp_path / "stderr.txt").open("w") as err:
        async with _client(loop, err) as client:

            async def one(i: int) -> None:
                text = f"call {i} " + "y" * (i * 5_000)  # answers of many sizes, some beyond a pipe's buffer
                result = await client.call_tool("echo", {"text": text, "delay": (i % 7) / 100})
                answers[i] = "ok" if text_of(result) == text else text_of(result)[:50]

            async with anyio.create_task_group() as tasks:
                for i in range(60):
                    tasks.start_soon(one, i)
    assert answers == dict.fromkeys(range(60), "ok")


async def test_stray_output_of_the_server_and_its_children_misses_the_wire(loop: str, tmp_path: Path) -> None:
    errlog = tmp_path / "stderr.txt"
    with errlog.open("w") as err:
        async with _client(loop, err) as client:
            stray = await client.call_tool("stray", {})
            after = await client.call_tool("echo", {"text": "frames intact"})
    assert text_of(stray) == "b''", "fd 0 reads the null device while serving: the client's requests stay its own"
    assert text_of(after) == "frames intact"
    log = _stderr(errlog)
    assert "stray print" in log and "stray write" in log and "stray child" in log


def test_lines_in_pieces_invalid_lines_and_a_last_line_without_newline(loop: str, tmp_path: Path) -> None:
    errlog = tmp_path / "stderr.txt"
    with errlog.open("wb") as err, _started(loop, err) as server:
        assert server.stdin is not None and server.stdout is not None
        for i in range(0, len(INITIALIZE), 9):  # a line arriving in many reads
            server.stdin.write(INITIALIZE[i : i + 9])
            server.stdin.flush()
            time.sleep(0.002)
        server.stdin.write(b"\n" + INITIALIZED + b"this is not JSON\n\n")
        server.stdin.write(_request(2, "ping") + b"\n" + _request(3, "ping"))  # the last line has no newline
        server.stdin.close()  # EOF
        answers = [_answer(server.stdout) for _ in range(3)]
        rest = server.stdout.read()
        code = server.wait(timeout=30)
    assert [a.get("id") for a in answers] == [1, 2, 3]
    assert answers[0]["result"]["serverInfo"]["name"] == "echo"
    assert rest == b""
    assert code == 0
    assert "Traceback" not in _stderr(errlog)


def test_eof_ends_the_session_at_once(loop: str, tmp_path: Path) -> None:
    """As with the SDK's transport: a call still running is answered "Connection closed", and the server exits."""
    errlog = tmp_path / "stderr.txt"
    with errlog.open("wb") as err, _started(loop, err) as server:
        assert server.stdin is not None and server.stdout is not None
        call = {"name": "echo", "arguments": {"text": "late", "delay": 0.5}}
        server.stdin.write(INITIALIZE + b"\n" + INITIALIZED + _request(2, "tools/call", call) + b"\n")
        server.stdin.close()
        answers = [_answer(server.stdout) for _ in range(2)]
        code = server.wait(timeout=30)
    assert answers[1] == {"jsonrpc": "2.0", "id": 2, "error": {"code": -32000, "message": "Connection closed"}}
    assert code == 0
    assert "Traceback" not in _stderr(errlog)


def test_a_client_that_goes_away_ends_the_session_cleanly(loop: str, tmp_path: Path) -> None:
    """The answer in flight is dropped and the server exits 0 (the SDK's transport keeps running, stdin open)."""
    errlog = tmp_path / "stderr.txt"
    with errlog.open("wb") as err, _started(loop, err) as server:
        assert server.stdin is not None and server.stdout is not None
        server.stdin.write(INITIALIZE + b"\n" + INITIALIZED)
        server.stdin.flush()
        _answer(server.stdout)
        call = {"name": "echo", "arguments": {"text": "nobody reads this", "delay": 0.5}}
        server.stdin.write(_request(2, "tools/call", call) + b"\n")
        server.stdin.flush()
        server.stdout.close()  # the client stops reading, and keeps stdin open
        code = server.wait(timeout=30)
    assert code == 0, _stderr(errlog)[-3000:]
    assert "Traceback" not in _stderr(errlog)


@pytest.mark.parametrize("shape", ["stdin is a file", "stdout and stderr are one pipe"])
def test_where_native_pipes_do_not_fit_the_sdk_transport_serves(shape: str, tmp_path: Path) -> None:
    if shape == "stdin is a file":
        requests = tmp_path / "requests.jsonl"
        requests.write_bytes(INITIALIZE + b"\n")
        errlog = tmp_path / "stderr.txt"
        with requests.open("rb") as stdin, errlog.open("wb") as err:
            completed = subprocess.run(_command("asyncio"), stdin=stdin, stdout=subprocess.PIPE, stderr=err)
        output, log = completed.stdout.decode(), _stderr(errlog)
        reason = "stdin or stdout is not a pipe or a socket"
    else:
        completed = subprocess.run(
            _command("asyncio"), input=INITIALIZE + b"\n", stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        output = log = completed.stdout.decode(errors="replace")
        reason = "stdout and stderr are one file"
    assert completed.returncode == 0, log[-3000:]
    assert any(line.startswith('{"jsonrpc":"2.0","id":1,"result"') for line in output.splitlines()), output[-2000:]
    assert f"stdio through the SDK's transport: {reason}" in log
