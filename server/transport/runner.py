"""Serving an ``HTTPApp`` with uvicorn until SIGTERM or SIGINT, and stopping gracefully.

On the signal the listening socket closes (no new connections), then:

1. calls in flight are answered (up to ``GRACE_SECONDS``), on whichever stream they came;
2. the event streams still open are ended (``OpenStreams.close_all``): an idle client's stream never ends by itself;
3. the app's lifespan ends the MCP sessions, then closes every tenant's pools and API client.

A second SIGINT stops at once, without step 3.
"""

from __future__ import annotations

import logging
import signal
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio

from .http import HTTPApp
from .listening import bind
from .loop import event_loop_options

if TYPE_CHECKING:
    from uvicorn import Server

__all__ = ["GRACE_SECONDS", "bind", "serve"]

logger = logging.getLogger("neon_mcp.http")

GRACE_SECONDS = 60
"""How long a stopping server waits for calls in flight."""

_SETTLE_SECONDS = 0.2
"""After the last call returned, time for its answer to be written to its stream before streams end."""


def serve(app: HTTPApp, sock: socket.socket, *, on_ready: Callable[[], None]) -> None:
    """Serve ``app`` on ``sock`` until a signal stops it; ``on_ready`` runs once requests are answered. Raises the
    ``NeonMCPError`` that kept the app from starting (the state database did not answer)."""
    anyio.run(_serve, app, sock, on_ready, backend_options=event_loop_options())


async def _serve(app: HTTPApp, sock: socket.socket, on_ready: Callable[[], None]) -> None:
    import uvicorn

    config = uvicorn.Config(
        app.asgi,
        lifespan="on",
        log_config=None,  # our handler on stderr; uvicorn's own would put access lines on stdout
        access_log=False,
        ws="none",
        timeout_graceful_shutdown=GRACE_SECONDS + 5,
    )
    server = uvicorn.Server(config)
    _keep_event_streams_open_on_signal()
    # uvicorn restores the handlers it found and raises its signal again once it has stopped: with the default ones
    # that would kill the process before the caller's clean-up (stopping local Neon) runs.
    previous = {sig: signal.signal(sig, server.handle_exit) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_announce, server, on_ready)
            tasks.start_soon(_drain_when_stopping, server, app)
            try:
                await server.serve(sockets=[sock])
            except SystemExit:  # uvicorn's way of saying the app's lifespan failed: said below, as the app said it
                if not app.failures:
                    raise
            tasks.cancel_scope.cancel()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if app.failures:
        raise app.failures[0]


def _keep_event_streams_open_on_signal() -> None:
    """sse-starlette (the SDK's event streams) ends every stream as soon as uvicorn gets a signal, answers in flight
    included; this process drains them itself (``_drain_when_stopping``)."""
    from sse_starlette.sse import AppStatus

    AppStatus.enable_automatic_graceful_drain = False  # what its untyped disable_automatic_graceful_drain() does


# uvicorn's state is plain flags, set from signal handlers among others: polled, as uvicorn's own main loop does.


async def _announce(server: Server, on_ready: Callable[[], None]) -> None:
    while not server.started:  # noqa: ASYNC110
        await anyio.sleep(0.02)
    on_ready()


async def _drain_when_stopping(server: Server, app: HTTPApp) -> None:
    while not server.should_exit:  # noqa: ASYNC110
        await anyio.sleep(0.1)
    logger.info("stopping: %d call(s) in flight, %d stream(s) open", app.tenants.calls_in_flight, app.streams.count)
    with anyio.move_on_after(GRACE_SECONDS) as waiting:
        await app.tenants.wait_for_calls()
        await anyio.sleep(_SETTLE_SECONDS)
    if waiting.cancelled_caught:
        logger.warning("stopping: %d call(s) still in flight after %d s", app.tenants.calls_in_flight, GRACE_SECONDS)
    app.streams.close_all()
