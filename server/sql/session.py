"""What a call may leave on the session it ran on, and the server's own SQL that ends a call without leaving it.

A pooled connection serves one call after another, from any client. User SQL, and the functions, triggers and views
it reaches, can change the session itself: ``SET``/``set_config(…, false)`` (search_path, timeouts, any setting),
``SET ROLE`` or a function that runs it, ``SET SESSION AUTHORIZATION``, temporary tables that shadow real ones,
``LISTEN``, ``PREPARE`` (also through ``EXECUTE`` in PL/pgSQL), ``DECLARE … WITH HOLD``, session advisory locks and
sequence state (``lastval``). Transactions do not bound all of it: ``COMMIT`` keeps every one of these, ``ROLLBACK``
still keeps advisory locks, SQL-level prepared statements and sequence state, and ``RESET ALL`` resets neither the
role nor anything but settings.

``DISCARD ALL`` is not usable here: it cannot run inside a transaction block, so it would cost a round trip of its
own after each call, and it deallocates asyncpg's own cached statements (every next call would parse again). So each
call ends with one batch of its own, in the same round trip as its ``COMMIT`` or ``ROLLBACK``, that does what
``DISCARD ALL`` does except ``DEALLOCATE ALL`` (measured: about 0.05 ms of PostgreSQL CPU):

- after a write, before its ``COMMIT`` (so that a failure leaves nothing committed): deferred constraint triggers
  are fired first (``SET CONSTRAINTS ALL IMMEDIATE``: nothing of the user's runs after the clean-up), then
  ``SET SESSION AUTHORIZATION DEFAULT`` (which resets the role too), ``RESET ALL``, ``CLOSE ALL``, ``UNLISTEN *``,
  ``pg_advisory_unlock_all()``, ``DISCARD TEMP``, ``DISCARD SEQUENCES``;
- after a read, or a call that failed: ``ROLLBACK`` (which undoes settings, role, ``LISTEN``, cursors and temporary
  tables made in it), then ``pg_advisory_unlock_all()``, and ``DISCARD SEQUENCES`` unless the transaction was
  read-only (where ``nextval`` and ``setval`` are refused).

SQL-level prepared statements are the one thing left. On a direct connection the batch ends with a probe whose
command tag says whether one exists (``SELECT 1``): the connection is then closed rather than pooled (the policy
refuses ``PREPARE``, so only a function can do this, and closing is total). Behind a transaction-mode pooler the
server connection is not ours to close, so the batch deallocates them by name (``DO`` block; not ``DEALLOCATE ALL``,
which would drop the pooler's own protocol-level statements).

On a direct connection a read needs no transaction of its own (``Databases``: one round trip per read): the guards
are the session's own settings, with ``default_transaction_read_only`` on (``Guards.arm``), and the read runs as one
implicit read-only transaction, which commits whatever it did to the session. So before that connection serves
again, ``STATE`` is read (a cached prepared statement, in the background after the answer) and compared with what it
read when the connection was armed: the role, the guards, ``search_path`` and the settings that change what a
statement means or may use, ``LISTEN``, held cursors, SQL-level prepared statements (its advisory locks it releases
itself). Any difference and the connection is reset and armed again (``reset_session``). A read-only transaction
cannot create temporary objects or move sequences; what a function could still change unseen is a planner or
format setting through ``set_config``, so a statement that names ``set_config`` is not read this way.

Every statement here also runs on a hot standby (checked on PostgreSQL 15).
"""

from __future__ import annotations

__all__ = ["STATE", "end_of_read", "end_of_write", "left_prepared", "reset_session"]

_RESET = (
    "SET SESSION AUTHORIZATION DEFAULT; RESET ALL; CLOSE ALL; UNLISTEN *; "
    "SELECT pg_catalog.pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES"
)
_DEALLOCATE = (
    "DO $neon_mcp$DECLARE s record; BEGIN "
    "FOR s IN SELECT name FROM pg_catalog.pg_prepared_statements WHERE from_sql LOOP "
    "EXECUTE pg_catalog.format('DEALLOCATE %I', s.name); END LOOP; END$neon_mcp$"
)
# The set-returning function itself, not the view over it: about 0.02 ms less to parse and plan every time.
_PROBE = "SELECT 1 FROM pg_catalog.pg_prepared_statement() AS s WHERE s.from_sql LIMIT 1"
_LEFT_BEHIND = "SELECT 1"
_WATCHED = (
    "search_path",
    "statement_timeout",
    "lock_timeout",
    "idle_in_transaction_session_timeout",
    "idle_session_timeout",
    "default_transaction_read_only",
    "default_transaction_isolation",
    "default_transaction_deferrable",
    "session_replication_role",
    "row_security",
    "transform_null_equals",
    "standard_conforming_strings",
    "check_function_bodies",
    "client_encoding",
    "DateStyle",
    "IntervalStyle",
    "TimeZone",
    "extra_float_digits",
    "bytea_output",
    "application_name",
    "work_mem",
    "maintenance_work_mem",
    "temp_buffers",
)
_SETTINGS = ", ".join(f"pg_catalog.current_setting('{name}')" for name in _WATCHED)
STATE = (
    "SELECT pg_catalog.pg_advisory_unlock_all()::text, current_user::text, session_user::text, "  # noqa: S608
    f"{_SETTINGS}, (SELECT count(*) FROM pg_catalog.pg_listening_channels()), "
    "(SELECT count(*) FROM pg_catalog.pg_cursors WHERE is_holdable), "
    "(SELECT count(*) FROM pg_catalog.pg_prepared_statement() AS s WHERE s.from_sql)"
)
"""A session's state as far as a read could change it (releasing its advisory locks on the way)."""


def reset_session(*, pooled: bool, arm: str = "") -> str:
    """The batch that clears everything a call can leave in a session, then sets ``arm`` (session settings)."""
    parts = [_RESET]
    if arm:
        parts.append(arm)
    parts.append(_DEALLOCATE if pooled else _PROBE)
    return "; ".join(parts)


def end_of_write(*, pooled: bool, arm: str = "") -> str:
    """The batch that commits a write and leaves the session clean (one round trip).

    The clean-up runs inside the transaction, after its deferred triggers, so if any part fails nothing is
    committed (the caller rolls back). On a direct connection its command tag is ``left_prepared``'s to read.
    """
    parts = ["SET CONSTRAINTS ALL IMMEDIATE", _RESET]
    if arm:
        parts.append(arm)
    if pooled:
        parts.append(_DEALLOCATE)
    parts.append("COMMIT")
    if not pooled:
        parts.append(_PROBE)
    return "; ".join(parts)


def end_of_read(*, pooled: bool, read_only: bool = True) -> str:
    """The batch that rolls a call back (a read, a failed call, a block that must leave nothing) and clears what a
    rollback keeps; on a direct connection its command tag is ``left_prepared``'s to read. ``read_only``: the
    transaction was read-only (sequences cannot have moved)."""
    # ROLLBACK first: the transaction may be aborted, where nothing else runs. A pooler hands the server connection
    # back only after the whole batch, so the rest still runs on the session the call used.
    sequences = "" if read_only else "DISCARD SEQUENCES; "
    prepared = _DEALLOCATE if pooled else _PROBE
    return f"ROLLBACK; SELECT pg_catalog.pg_advisory_unlock_all(); {sequences}{prepared}"


def left_prepared(status: str) -> bool:
    """Whether the command tag of a direct connection's end batch says a SQL-level prepared statement is left."""
    return status == _LEFT_BEHIND
