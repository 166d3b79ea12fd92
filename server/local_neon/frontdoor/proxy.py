"""The front door: one listener per local Neon, speaking PostgreSQL's protocol with TLS, in front of every endpoint.

A session, as Neon's proxy runs it: negotiate TLS (``SSLRequest`` or direct), read the startup packet, find the
endpoint it names (see ``routing``: SNI host name, ``options=endpoint=…``, ``-pooler``, time travel), wake it if
suspended, authenticate the client with SCRAM against the role's secret (with channel binding over TLS), log in to
the server as the client with the keys that exchange yielded (see ``scram``, ``upstream``), then relay bytes both
ways. Clients without TLS are refused, as Neon refuses them. Clients that name no endpoint can use Neon's password
hack: the password ``endpoint=<id>;<password>``. Cancel requests reach the server whose BackendKeyData the client got.

The WebSocket transport (see ``websocket``) runs the same session over a WebSocket, with a cleartext password instead
of SCRAM, as Neon does for ``@neondatabase/serverless``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from typing import Protocol

from ..endpoints import Endpoints
from ..runtime import Runtime
from . import wire
from .connection import Cancel, ClientGone, Startup, TcpClient
from .roles import RoleSecrets
from .routing import NoEndpointNamed, Refusal, Request, Router, Server, parse_request
from .scram import Keys, PasswordChecks, ScramError, ServerExchange, Verifier, mock_verifier
from .sessions import SqlSessions
from .timetravel import IDLE_SECONDS, Copies
from .tls import Certificate
from .upstream import Upstream, UpstreamRefused, UpstreamUnreachable, login

__all__ = ["Client", "FrontDoor"]

logger = logging.getLogger("neon_mcp.local_neon")

_STARTUP_TIMEOUT = 30.0
_AUTH_TIMEOUT = 60.0
_REAP_INTERVAL = 5.0
_FORWARDED = ("application_name", "replication")
"""Startup parameters passed on besides user, database and options (Neon's proxy passes the same short list)."""


class Client(Protocol):
    """A client connection as a session sees it (TCP with TLS, or a WebSocket)."""

    sni: str | None
    password_auth: bool

    @property
    def secure(self) -> bool: ...

    @property
    def end_point(self) -> bytes | None: ...

    async def startup(self) -> Startup | Cancel | None: ...

    async def read(self) -> tuple[bytes, bytes]: ...

    def write(self, data: bytes) -> None: ...

    async def relay(self, upstream: Upstream) -> None: ...

    def close(self) -> None: ...


class FrontDoor:
    """The listener and its sessions; ``endpoints`` starts suspended computes (through their operations)."""

    def __init__(self, rt: Runtime, endpoints: Endpoints, certificate: Certificate) -> None:
        self._rt = rt
        self._context = certificate.server_context()
        self._end_point = certificate.end_point
        self._copies = Copies(rt)
        self.router = Router(rt, endpoints, self._copies)
        self.secrets = RoleSecrets(rt.host)
        self.passwords = PasswordChecks()
        self.sql = SqlSessions()
        self._server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[None]] = set()
        self._cancels: dict[bytes, tuple[str, int]] = {}
        self._reaper: asyncio.Task[None] | None = None

    async def start(self, sock: socket.socket) -> None:
        """Serve on the listening socket ``sock``."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: TcpClient(self._context, self._end_point, self._session_task), sock=sock
        )
        self._reaper = loop.create_task(self._reap())

    async def close(self) -> None:
        """Stop listening, end every session, remove the copies made for time travel."""
        if self._server is not None:
            self._server.close()
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        for task in list(self._sessions):
            task.cancel()
        await asyncio.gather(*self._sessions, return_exceptions=True)
        self.sql.close()
        await self.secrets.close()
        await self._copies.close()

    def time_travel_copies(self) -> list[str]:
        """The directory names (under the clusters root) of the read-only copies kept for time travel now."""
        return self._copies.names()

    async def reap_copies(self, *, idle: float = IDLE_SECONDS) -> None:
        """Remove the time-travel copies no connection used for ``idle`` seconds (the reaper does this every few)."""
        await self._copies.reap(idle=idle)

    async def _session_task(self, client: TcpClient) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        try:
            await self.serve(client)
        finally:
            self._sessions.discard(task)

    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(_REAP_INTERVAL)
            try:
                self.sql.prune()
                await self._copies.reap()
            except Exception:
                logger.exception("local Neon: removing idle time-travel copies failed")

    # --- a session -------------------------------------------------------------------------------------------------

    async def serve(self, client: Client) -> None:
        """Run one client's session to its end; every failure becomes an ErrorResponse to the client."""
        try:
            first = await asyncio.wait_for(client.startup(), _STARTUP_TIMEOUT)
            if isinstance(first, Cancel):
                await self._cancel(first.key)
            elif first is not None:
                await self._session(client, first)
        except Refusal as exc:
            client.write(wire.error_response(exc.message, exc.code))
        except UpstreamRefused as exc:
            client.write(exc.raw)
        except UpstreamUnreachable as exc:
            client.write(wire.error_response(f"could not connect to the endpoint's server: {exc}", "08006"))
        except wire.ProtocolViolation as exc:
            client.write(wire.error_response(str(exc), "08P01"))
        except (ClientGone, ConnectionError, TimeoutError):
            pass
        except Exception:
            logger.exception("local Neon: front door session failed")
            client.write(wire.error_response("internal error in local Neon's front door; see its log", "XX000"))
        finally:
            client.close()

    async def _session(self, client: Client, startup: Startup) -> None:
        version, params = startup.version, startup.params
        if version >> 16 != 3:
            raise Refusal(f"unsupported frontend protocol {version >> 16}.{version & 0xFFFF}", "0A000")
        if not client.secure:
            raise Refusal("connection is insecure (try using `sslmode=require`)", "28000")
        if version & 0xFFFF or any(name.startswith("_pq_.") for name in params):
            client.write(_negotiate_protocol([name for name in params if name.startswith("_pq_.")]))
        user = params.get("user")
        if not user:
            raise Refusal("no PostgreSQL user name specified in startup packet", "28000")
        password: str | None = None
        try:
            request = parse_request(sni=client.sni, options=params.get("options"))
        except NoEndpointNamed:
            fallback, password = await self._password_hack(client)
            request = parse_request(sni=client.sni, options=params.get("options"), fallback=fallback)
        if client.password_auth and password is None:
            password = await self._read_password(client)
        async with self.router.open(request) as server:
            verifier = await self.secret(server, user)
            if password is not None:
                keys, _ = await self.check_password(server, user, password, verifier)
            else:
                keys = await asyncio.wait_for(self._scram(client, verifier or mock_verifier(user), user), _AUTH_TIMEOUT)
            if verifier is None:  # unreachable: a mock secret never authenticates
                raise Refusal(f'password authentication failed for user "{user}"', "28P01")
            upstream = await self.login(server, request, params, keys, verifier)
            client.write(wire.auth_message(wire.AUTH_OK) + upstream.greeting)
            if upstream.cancel_key is not None:
                self._cancels[upstream.cancel_key] = (server.host, server.port)
            try:
                await client.relay(upstream)
            finally:
                if upstream.cancel_key is not None:
                    self._cancels.pop(upstream.cancel_key, None)
                upstream.close()

    async def secret(self, server: Server, user: str) -> Verifier | None:
        """The role's secret on the server (None: no such role, or it cannot log in); if it has none while an
        operation holds the branch (the role may be in the making), once that is over."""
        found = await self.secrets.get(server.server_port, server.password, user)
        if found is None and await self.router.settle(server.branch_id):
            found = await self.secrets.get(server.server_port, server.password, user)
        return found

    async def check_password(
        self, server: Server, user: str, password: str, verifier: Verifier | None
    ) -> tuple[Keys, Verifier]:
        """The keys ``password`` yields against the role's secret; raises ``Refusal`` (28P01) if it is wrong."""
        keys = self.passwords.check(verifier or mock_verifier(user), password)
        if keys is None or verifier is None:
            raise Refusal(f'password authentication failed for user "{user}"', "28P01")
        return keys, verifier

    async def login(
        self, server: Server, request: Request, params: dict[str, str], keys: Keys, verifier: Verifier
    ) -> Upstream:
        """Log in to ``server`` as the client (``params``: its startup parameters) with ``keys``.

        Raises ``UpstreamRefused``, ``UpstreamUnreachable``, ``Refusal``.
        """
        forward = {"user": params["user"], "database": params.get("database") or params["user"]}
        for name in _FORWARDED:
            if name in params:
                forward[name] = params[name]
        if request.params_compat:
            forward.update({k: v for k, v in params.items() if k not in ("options",) and not k.startswith("_pq_.")})
        if request.options and not server.pooler:  # PgBouncer refuses the options parameter
            forward["options"] = request.options
        for attempt in (1, 2):
            try:
                return await login(server.host, server.port, forward, keys, verifier)
            except UpstreamRefused as exc:
                # A database an operation is still creating: wait for it once, then try again.
                if exc.code == "3D000" and attempt == 1 and await self.router.settle(server.branch_id):
                    continue
                raise
            except ScramError as exc:
                raise Refusal(f'password authentication failed for user "{params["user"]}"', "28P01") from exc
        raise AssertionError("unreachable")

    async def _scram(self, client: Client, verifier: Verifier, user: str) -> Keys:
        exchange = ServerExchange(verifier, end_point=client.end_point)
        names = b"".join(m.encode() + b"\0" for m in exchange.mechanisms) + b"\0"
        client.write(wire.auth_message(wire.AUTH_SASL, names))
        try:
            mechanism, data = _sasl_initial(await _expect_password_message(client))
            client.write(wire.auth_message(wire.AUTH_SASL_CONTINUE, exchange.first(mechanism, data)))
            final, keys = exchange.final(await _expect_password_message(client))
        except ScramError as exc:
            if str(exc) == "wrong password":
                raise Refusal(f'password authentication failed for user "{user}"', "28P01") from exc
            raise Refusal(str(exc), "28000") from exc
        client.write(wire.auth_message(wire.AUTH_SASL_FINAL, final))
        return keys

    async def _read_password(self, client: Client) -> str:
        client.write(wire.auth_message(wire.AUTH_CLEARTEXT))
        payload = await _expect_password_message(client)
        return payload.rstrip(b"\0").decode("utf-8", errors="surrogateescape")

    async def _password_hack(self, client: Client) -> tuple[str, str]:
        """Neon's way for clients that can name no endpoint: the password ``endpoint=<id>;<password>``."""
        text = await self._read_password(client)
        for separator in (";", "$"):
            head, sep, rest = text.partition(separator)
            key, eq, name = head.partition("=")
            if sep and eq and key in ("endpoint", "project") and name:
                return name, rest
        raise NoEndpointNamed

    async def _cancel(self, key: bytes) -> None:
        target = self._cancels.get(key)
        if target is None:
            return
        with contextlib.suppress(OSError, TimeoutError):
            _, writer = await asyncio.wait_for(asyncio.open_connection(*target), 5)
            writer.write(struct.pack("!ii", 16, wire.CANCEL_REQUEST) + key)
            await writer.drain()
            writer.close()


async def _expect_password_message(client: Client) -> bytes:
    kind, payload = await client.read()
    if kind != b"p":
        raise wire.ProtocolViolation(f"expected a password message, got {kind!r}")
    return payload


def _sasl_initial(payload: bytes) -> tuple[str, bytes]:
    mechanism, sep, rest = payload.partition(b"\0")
    if not sep or len(rest) < 4:
        raise wire.ProtocolViolation("malformed SASLInitialResponse")
    (length,) = struct.unpack_from("!i", rest)
    data = rest[4:] if length < 0 else rest[4 : 4 + length]
    return mechanism.decode("ascii", errors="replace"), data


def _negotiate_protocol(unsupported: list[str]) -> bytes:
    body = struct.pack("!ii", 0, len(unsupported)) + b"".join(name.encode() + b"\0" for name in unsupported)
    return wire.message(b"v", body)
