"""MCP over the process's stdin and stdout without thread hops.

The SDK's ``stdio_server`` reads stdin and writes stdout through ``anyio.wrap_file``: each line read and each answer
written and flushed is a hop to a worker thread (half of a no-op call's server CPU: ``bench/sdk_costs.py``). Here the
event loop watches both descriptors itself (``connect_read_pipe``, ``connect_write_pipe``), and the two streams handed
to the SDK's server (its ``Server.run(read_stream, write_stream, …)``) are the pipes themselves: a line is parsed where
it is read and an answer written where it is sent, with no task or memory stream between (handing pipe-backed files
to the SDK's ``stdio_server(stdin=…, stdout=…)`` would keep its reader and writer tasks and their memory streams).

What the SDK's transport does, this one does too:

- While serving, fd 0 reads the null device and fd 1 writes to stderr, so a child process or a stray ``print`` can
  neither take the client's requests nor tear its frames; both are put back on exit.
- A line may arrive in pieces and be megabytes long (the reader's limit bounds only its read-ahead); a last line
  without its newline still counts at EOF; invalid UTF-8 is replaced, and a line that is not a JSON-RPC message
  reaches the server as an exception (which it logs and answers nothing to). Each answer is one write of one line.
- EOF on stdin ends the session. A client that goes away (stdout closed) ends it too: answers still in flight are
  dropped and the server stops normally (the SDK's transport keeps running until stdin closes).

Where the descriptors are not pipes or sockets (a terminal, a file), stdin and stdout are one file, stdout shares its
file with stderr (non-blocking writes would reach the log too), on Windows, or if the SDK changed what this relies
on: the SDK's own transport, unchanged.

``serve`` runs on uvloop where it is installed (``server.transport.loop``), else on asyncio's own loop.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import stat
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import anyio
from mcp.shared.message import SessionMessage
from mcp_types import jsonrpc_message_adapter
from pydantic import ValidationError

from .loop import event_loop_options

if TYPE_CHECKING:
    from mcp.server.lowlevel import Server
    from mcp.server.mcpserver import MCPServer

__all__ = ["serve"]

logger = logging.getLogger("neon_mcp.stdio")

_READ_AHEAD = 1 << 16
"""Bytes the reader holds before it stops reading stdin (a longer line is read in pieces of this size)."""

_FLUSH_SECONDS = 5.0
"""At exit, how long answers still buffered may take to reach a client that does not read them."""


def serve(server: MCPServer[Any]) -> None:
    """Serve ``server`` over stdin and stdout until the client closes stdin or goes away."""
    anyio.run(_serve, server, backend_options=event_loop_options())


async def _serve(server: MCPServer[Any]) -> None:
    # MCPServer runs stdio only through the SDK's transport; its low-level server takes any pair of streams (the SDK's
    # own in-process client reaches it the same way).
    lowlevel: Server[Any] | None = getattr(server, "_lowlevel_server", None)
    if lowlevel is None:
        await server.run_stdio_async()
        return
    async with _stdio() as streams:
        if streams is None:
            await server.run_stdio_async()
        else:
            await lowlevel.run(streams.read, streams.write, lowlevel.create_initialization_options())


# --- the descriptors ------------------------------------------------------------------------------------------------


def _refusal() -> str | None:
    """Why stdin and stdout cannot be served as native pipes here, or None."""
    if sys.platform == "win32":
        return "Windows"
    try:
        kinds = [os.fstat(fd).st_mode for fd in (0, 1)]
        if not all(stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) for mode in kinds):
            return "stdin or stdout is not a pipe or a socket"
        if os.path.sameopenfile(0, 1):
            return "stdin and stdout are one file"
    except OSError as exc:
        return f"stdin or stdout cannot be examined: {exc}"
    with suppress(OSError):  # no stderr: nothing to share
        if os.path.sameopenfile(1, 2):
            return "stdout and stderr are one file"
    return None


@dataclass
class _Claim:
    """A standard descriptor taken for the transport: ``fd`` is diverted, the client's pipe is kept in ``wire``."""

    fd: int
    wire: int

    @classmethod
    def take(cls, fd: int, diversion: Callable[[], int]) -> _Claim:
        """Duplicate ``fd`` above the standard range, then point ``fd`` at ``diversion()``; raises ``OSError`` (and
        then changed nothing)."""
        import fcntl

        wire = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
        try:
            target = diversion()
            try:
                os.dup2(target, fd)
            finally:
                os.close(target)
        except OSError:
            os.close(wire)
            raise
        return cls(fd, wire)

    def open(self, mode: Literal["r", "w"]) -> io.FileIO:
        """A file on a duplicate of the wire, for a transport to own and close when it likes (at EOF, say)."""
        return io.FileIO(os.dup(self.wire), mode)

    def release(self) -> None:
        """Point ``fd`` at the client's pipe again, and clear the non-blocking flag the event loop set on it."""
        try:
            os.dup2(self.wire, self.fd)
            os.set_blocking(self.fd, True)
        finally:
            os.close(self.wire)


def _null_input() -> int:
    return os.open(os.devnull, os.O_RDONLY)


def _stderr_output() -> int:
    try:
        return os.dup(2)
    except OSError:
        return os.open(os.devnull, os.O_WRONLY)


# --- the streams --------------------------------------------------------------------------------------------------


class _Output(asyncio.Protocol):
    """The protocol of stdout's transport: flow control for ``drain``, and who to tell when the client is gone."""

    def __init__(self, on_lost: Callable[[], None]) -> None:
        self._on_lost = on_lost
        self._paused = False
        self._waiters: list[asyncio.Future[None]] = []
        self.lost = False
        self.closed = asyncio.get_running_loop().create_future()
        """Done once the transport has let the descriptor go."""

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._wake()
        if not self.closed.done():
            self.closed.set_result(None)
        self._on_lost()

    def _wake(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    async def drain(self) -> None:
        """Return once the transport's buffer is below its high-water mark; raises ``BrokenResourceError`` if the
        client has gone."""
        if self._paused and not self.lost:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                with suppress(ValueError):
                    self._waiters.remove(waiter)
        if self.lost:
            raise anyio.BrokenResourceError


class _Requests:
    """What the SDK's server reads (its ``ReadStream``): one message per line of stdin, or the exception that line
    raised; ``EndOfStream`` at EOF or once the client has gone."""

    def __init__(self, reader: asyncio.StreamReader, output: _Output, transport: asyncio.ReadTransport) -> None:
        self._reader = reader
        self._output = output
        self._transport = transport

    async def receive(self) -> SessionMessage | Exception:
        line = await self._line()
        if line is None or self._output.lost:
            raise anyio.EndOfStream
        try:
            message = jsonrpc_message_adapter.validate_json(line.decode("utf-8", errors="replace"), by_name=False)
        except ValidationError as exc:
            return exc
        return SessionMessage(message)

    async def _line(self) -> bytes | None:
        """The next line, however long, or None at EOF."""
        pieces: list[bytes] = []
        while True:
            try:
                pieces.append(await self._reader.readuntil(b"\n"))
            except asyncio.LimitOverrunError as exc:  # longer than the read-ahead: take what is there, read on
                pieces.append(await self._reader.readexactly(exc.consumed))
                continue
            except asyncio.IncompleteReadError as exc:  # EOF: a last line without its newline still counts
                pieces.append(exc.partial)
                line = b"".join(pieces)
                return line if line.strip() else None
            return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    async def aclose(self) -> None:
        self._transport.close()

    def __aiter__(self) -> _Requests:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> _Requests:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class _Answers:
    """What the SDK's server writes (its ``WriteStream``): each message as one line, in one write, on stdout."""

    def __init__(self, transport: asyncio.WriteTransport, output: _Output) -> None:
        self._transport = transport
        self.output = output
        self._closed = False

    async def send(self, item: SessionMessage, /) -> None:
        if self._closed:
            raise anyio.ClosedResourceError
        if self.output.lost:
            raise anyio.BrokenResourceError
        frame = item.message.model_dump_json(by_alias=True, exclude_unset=True)
        self._transport.write(frame.encode() + b"\n")  # one write per frame: concurrent answers never interleave
        await self.output.drain()

    async def aclose(self) -> None:
        self._closed = True  # the transport itself is closed, after its last bytes, when the session ends

    async def flush_and_close(self) -> None:
        self._closed = True
        self._transport.close()
        with anyio.move_on_after(_FLUSH_SECONDS, shield=True) as waiting:
            await self.output.closed
        if waiting.cancelled_caught:
            self._transport.abort()

    async def __aenter__(self) -> _Answers:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


@dataclass(frozen=True)
class _Streams:
    read: _Requests
    write: _Answers

    async def close(self) -> None:
        """Stop reading; close stdout once its buffer is written, or after ``_FLUSH_SECONDS`` if the client reads
        nothing."""
        await self.read.aclose()
        await self.write.flush_and_close()


@asynccontextmanager
async def _stdio() -> AsyncIterator[_Streams | None]:
    """The process's stdin and stdout as streams for the SDK's server, or None where they cannot be (then nothing
    was changed, and the caller uses the SDK's transport)."""
    refusal = _refusal()
    claims: list[_Claim] = []
    streams = None
    if refusal is None:
        try:
            claims.append(_Claim.take(0, _null_input))
            claims.append(_Claim.take(1, _stderr_output))
            streams = await _connect(*claims)
        except (OSError, ValueError, NotImplementedError) as exc:
            refusal = f"the pipes could not be connected: {exc}"
            for claim in claims:
                claim.release()
    if streams is None:
        logger.debug("stdio through the SDK's transport: %s", refusal)
        yield None
        return
    logger.debug("stdio over native pipes (%s)", type(asyncio.get_running_loop()).__module__)
    try:
        yield streams
    finally:
        await streams.close()
        for claim in claims:
            claim.release()


async def _connect(stdin: _Claim, stdout: _Claim) -> _Streams:
    """Streams over transports of the event loop on the wires of ``stdin`` and ``stdout``; raises ``OSError`` or
    ``ValueError`` if the loop cannot watch them."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=_READ_AHEAD)
    read_file = stdin.open("r")
    try:
        read_transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), read_file)
    except BaseException:
        read_file.close()
        raise
    write_file = stdout.open("w")
    try:
        write_transport, output = await loop.connect_write_pipe(lambda: _Output(read_transport.close), write_file)
    except BaseException:
        write_file.close()
        read_transport.close()
        raise
    return _Streams(_Requests(reader, output, read_transport), _Answers(write_transport, output))
