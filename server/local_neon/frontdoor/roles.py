"""The roles' SCRAM secrets, read from the server a connection is for, as its ``pg_authid`` holds them now.

Reading them there (rather than keeping them in local Neon's state) makes every role work through the front door:
those the API made, those made with ``CREATE ROLE`` in SQL, and passwords changed with ``ALTER ROLE``, as on Neon,
whose compute reports such changes to its control plane. One connection as the servers' superuser per server,
kept open and named ``FRONT_DOOR_APPLICATION`` so the housekeeping loop does not count it as a client (it would keep
the endpoint from suspending); it is opened again when the server was restarted. Roles that cannot log in, whose
password has expired, or whose secret is not SCRAM come back as None; so does the servers' superuser, which only
local Neon itself uses.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib

import asyncpg

from ..computes import FRONT_DOOR_APPLICATION, SUPERUSER
from .scram import Verifier

__all__ = ["RoleSecrets"]

_QUERY = (
    "SELECT rolpassword FROM pg_catalog.pg_authid WHERE rolname = $1 AND rolcanlogin "
    "AND (rolvaliduntil IS NULL OR rolvaliduntil > now())"
)
_CONNECT_TIMEOUT = 10.0


class RoleSecrets:
    """Secrets of the roles of the servers on ``host``."""

    def __init__(self, host: str) -> None:
        self._host = host
        self._connections: dict[int, asyncpg.Connection] = {}
        self._locks: collections.defaultdict[int, asyncio.Lock] = collections.defaultdict(asyncio.Lock)

    async def get(self, port: int, password: str, role: str) -> Verifier | None:
        """The secret of ``role`` on the server at ``port`` (``password``: the superuser's), or None.

        Raises ``OSError``/``asyncpg`` errors if the server cannot be asked.
        """
        if role == SUPERUSER:
            return None
        for attempt in (1, 2):
            conn = await self._connection(port, password)
            try:
                text = await conn.fetchval(_QUERY, role)
            except (asyncpg.InterfaceError, asyncpg.PostgresConnectionError, ConnectionError, OSError):
                await self._drop(port)
                if attempt == 2:
                    raise
                continue
            return Verifier.parse(text) if isinstance(text, str) else None
        return None

    async def _connection(self, port: int, password: str) -> asyncpg.Connection:
        async with self._locks[port]:
            conn = self._connections.get(port)
            if conn is None or conn.is_closed():
                conn = await asyncpg.connect(
                    host=self._host,
                    port=port,
                    user=SUPERUSER,
                    password=password,
                    database="postgres",
                    ssl=False,
                    timeout=_CONNECT_TIMEOUT,
                    server_settings={"application_name": FRONT_DOOR_APPLICATION},
                )
                self._connections[port] = conn
            return conn

    async def _drop(self, port: int) -> None:
        conn = self._connections.pop(port, None)
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.terminate()

    async def close(self) -> None:
        for port in list(self._connections):
            await self._drop(port)
