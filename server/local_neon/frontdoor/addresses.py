"""How local Neon's answers address the front door: endpoint hosts and connection URIs.

Host names do not help offline: nothing like ``<endpoint id>.localhost`` resolves without a resolver that knows
the name (systemd-resolved does, glibc's files and DNS do not), and the front door has one address for every
endpoint. So the two forms local Neon hands out both reach ``127.0.0.1:<front door port>`` and name the endpoint
in a way stock clients pass on:

- Connection URIs (``connection_uri``, ``connection_uris``) name it in the startup options, as Neon documents for
  clients without SNI: ``postgresql://role:password@127.0.0.1:PORT/db?sslmode=require&channel_binding=require&
  options=endpoint%3D<id>`` (``<id>-pooler`` for the pooled URI). libpq, asyncpg, node-postgres and
  ``@neondatabase/serverless`` all send ``options``.
- An endpoint's ``host`` is ``<id>.localhost:PORT/?hostaddr=127.0.0.1``: a host name carrying the endpoint id, as on
  Neon, so neonctl's ``connection-string`` can insert ``-pooler`` after the id (pooled) or put the branch id in its
  place (time travel), and a query naming the address, so libpq (psql) connects without resolving the name and sends
  it as SNI, which routes the connection. neonctl builds its URI as ``postgresql://<host>`` and adds
  ``sslmode``/``channel_binding``/``options`` after the ``hostaddr`` this carries. Clients that ignore ``hostaddr``
  need the name to resolve (it does where ``*.localhost`` resolves to loopback).
"""

from __future__ import annotations

from urllib.parse import quote

__all__ = ["POOLER_SUFFIX", "connection_uri", "endpoint_host", "pooler_host"]

POOLER_SUFFIX = "-pooler"
_DOMAIN = "localhost"


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def endpoint_host(endpoint_id: str, *, host: str, port: int) -> str:
    """An endpoint's ``host`` as the API answers it: ``<id>.localhost:<port>/?hostaddr=<host>``."""
    return f"{endpoint_id}.{_DOMAIN}:{port}/?hostaddr={host}"


def pooler_host(endpoint_id: str, *, host: str, port: int) -> str:
    """The host of the endpoint's pooler, formed as neonctl and Neon's docs form it (``-pooler`` after the id)."""
    return endpoint_host(endpoint_id + POOLER_SUFFIX, host=host, port=port)


def connection_uri(
    *, host: str, port: int, endpoint_id: str, pooled: bool, role: str, password: str, database: str
) -> str:
    """``postgresql://role:password@host:port/database?sslmode=require&channel_binding=require&options=endpoint%3D…``,
    every part URL-quoted; ``pooled`` names the endpoint's pooler."""
    auth = f"{quote(role, safe='')}:{quote(password, safe='')}"
    name = endpoint_id + (POOLER_SUFFIX if pooled else "")
    query = f"sslmode=require&channel_binding=require&options={quote('endpoint=' + name, safe='')}"
    return f"postgresql://{auth}@{_address(host, port)}/{quote(database, safe='')}?{query}"
