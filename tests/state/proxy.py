"""A round-robin HTTP load balancer for tests: each request goes to the next replica in turn, with no session affinity,
and one that refuses the connection (stopped, killed) is skipped, as a load balancer's health check would.

It runs in a thread of its own (uvicorn on loopback) and remembers which replica answered each request, and what the
request was (the JSON-RPC method, with the tool's name for ``tools/call``), so a test can say that a call was asked
through one replica and confirmed through another.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx2 as httpx
from starlette.types import Message, Receive, Scope, Send

__all__ = ["RoundRobin", "Served"]

_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding",
     "upgrade"}
)  # fmt: skip
_NOT_FORWARDED = _HOP_BY_HOP | {"host", "content-length"}
"""Request headers the balancer sets itself (the replica's host, the body's length)."""


@dataclass(frozen=True)
class Served:
    """One request the balancer passed on: to which replica (its index), and what it was."""

    replica: int
    method: str
    what: str


@dataclass
class RoundRobin:
    """Balances requests over ``replicas`` (base URLs, e.g. ``http://127.0.0.1:8765``); use as a context manager."""

    replicas: list[str]
    served: list[Served] = field(default_factory=list)
    turn: int = 0
    url: str = ""
    """The balancer's own base URL, once started."""
    _client: httpx.AsyncClient | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> RoundRobin:
        import uvicorn

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        config = uvicorn.Config(self, lifespan="on", log_config=None, access_log=False, ws="none")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise AssertionError("the round-robin proxy did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *_: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def next_replica(self) -> int:
        """The replica the next request goes to (if it is up)."""
        return self.turn % len(self.replicas)

    def calls(self, tool: str) -> list[int]:
        """The replicas that answered ``tools/call`` of ``tool``, in order."""
        return [s.replica for s in self.served if s.method == "tools/call" and s.what == tool]

    # --- ASGI ---------------------------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        assert scope["type"] == "http" and self._client is not None
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in scope["headers"]
            if k.decode().lower() not in _NOT_FORWARDED
        ]
        with self._lock:
            first = self.turn
            self.turn += 1
        path = scope["raw_path"].decode() + (f"?{scope['query_string'].decode()}" if scope["query_string"] else "")
        for attempt in range(len(self.replicas)):
            index = (first + attempt) % len(self.replicas)
            request = self._client.build_request(
                scope["method"], self.replicas[index] + path, headers=headers, content=body
            )
            try:
                response = await self._client.send(request, stream=True)
            except httpx.ConnectError:
                continue  # down: the next one
            method, what = _what(body)
            self.served.append(Served(index, method, what))
            try:
                await send(
                    {
                        "type": "http.response.start",
                        "status": response.status_code,
                        "headers": [
                            (k.encode("latin-1"), v.encode("latin-1"))
                            for k, v in response.headers.multi_items()
                            if k.lower() not in _HOP_BY_HOP
                        ],
                    }
                )
                async for chunk in response.aiter_raw():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            finally:
                await response.aclose()
            return
        await send({"type": "http.response.start", "status": 502, "headers": []})
        await send({"type": "http.response.body", "body": b"no replica answers", "more_body": False})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        message: Message = await receive()
        assert message["type"] == "lifespan.startup"
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None))
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        await self._client.aclose()
        await send({"type": "lifespan.shutdown.complete"})


def _what(body: bytes) -> tuple[str, str]:
    try:
        message: Any = json.loads(body) if body else None
    except ValueError:
        return "?", ""
    if not isinstance(message, dict):
        return "?", ""
    params = message.get("params") or {}
    return str(message.get("method", "")), str(params.get("name", "")) if isinstance(params, dict) else ""
