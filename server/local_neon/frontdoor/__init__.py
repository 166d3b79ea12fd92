"""Local Neon's front door, as Neon's proxy: one PostgreSQL listener with TLS for every endpoint, and SQL over HTTP
and WebSocket for ``@neondatabase/serverless``.

``proxy.FrontDoor`` is the listener; ``listener.listen`` opens its socket on the port kept in local Neon's home, so
connection strings handed out stay valid across restarts. ``addresses`` forms the hosts and URIs the API answers
with; ``routing`` finds (and wakes) the endpoint a connection names; ``scram`` and ``upstream`` authenticate it on
both sides; ``timetravel`` serves ``neon_timestamp``/``neon_lsn``; ``sql_over_http`` and ``websocket`` are the
serverless driver's transports on local Neon's API port. Nothing is imported here: ``views`` uses ``addresses``
without pulling in the rest.
"""

from __future__ import annotations
