"""The ``neon-mcp`` command line: its commands (``server.commands``, parsed by pydantic-settings' ``CliApp``), run.

``serve`` and ``local`` take settings as options: each option is typed, described, constrained and validated by its
``Settings`` field, and a given option overrides the environment, which overrides the default. Invalid settings exit
with status 2 and one ``neon-mcp: invalid setting …`` line per error on stderr. ``neon-mcp serve`` with no option
(how MCP clients start it) takes its settings from the environment without building the parser (about 17 ms of a
start here).

Logs go to stderr only: in stdio mode stdout is the MCP channel.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from .settings import Settings

__all__ = ["main"]


def _invalid(exc: ValidationError, commands: Sequence[str] = ()) -> int:
    """Report each error as ``neon-mcp: invalid setting FIELD: MESSAGE`` (the value is never shown) and return 2."""
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        if loc and loc[0] in commands:  # raised while reading a command's options: drop the command
            loc = loc[1:]
        kind = "setting" if loc and loc[0] in Settings.model_fields else "argument"
        print(f"neon-mcp: invalid {kind} {'.'.join(loc)}: {error['msg']}", file=sys.stderr)
    return 2


class _RedactingFormatter(logging.Formatter):
    """Log lines with password literals redacted (``server.redaction``): a request logged at DEBUG, or a traceback,
    may quote SQL such as ``ALTER ROLE … PASSWORD '…'``."""

    def format(self, record: logging.LogRecord) -> str:
        from .redaction import redact_text

        return redact_text(super().format(record))


def _configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # One line per HTTP request drowns the server's own log; the Neon client logs retries and failures itself.
    quiet = logging.DEBUG if level == "DEBUG" else logging.WARNING
    for name in ("httpx2", "httpcore2", "httpx", "httpcore"):
        logging.getLogger(name).setLevel(quiet)


def _serve(settings: Settings) -> int:
    from .errors import NeonMCPError

    _configure_logging(settings.log_level)
    refusal = _transport_refusal(settings)
    if refusal is not None:
        print(f"neon-mcp: {refusal}", file=sys.stderr)
        return 2
    started_local_neon: int | None = None
    if settings.database_url is None and settings.neon_api_key is None and not settings.neon_key_from_header:
        settings, started_local_neon = _with_local_neon(settings)
        if settings.neon_api_key is None:
            return 2
    try:
        refused = _least_privilege_refusal(settings)
        if refused is not None:
            print(f"neon-mcp: {refused}", file=sys.stderr)
            return 2
        if settings.transport == "stdio":
            # Local Neon keeps running after a stdio session, even one that started it: each client session starts
            # its own server, and the next one (or one running beside it) attaches to it.
            return _serve_stdio(settings)
        return _serve_http(settings)
    except NeonMCPError as exc:
        print(f"neon-mcp: {exc}", file=sys.stderr)
        return 2
    finally:
        if started_local_neon is not None and settings.transport != "stdio":
            _stop_local_neon(settings, started_local_neon)


def _transport_refusal(settings: Settings) -> str | None:
    """Why the transport settings cannot be served, or None."""
    if settings.transport == "stdio":
        if settings.neon_key_from_header:
            return "--neon-key-from-header needs --transport http or sse (stdio requests carry no headers)"
        return None
    from .transport.http import is_loopback  # not before: it imports the HTTP stack, which stdio never needs

    if settings.http_token is None and not is_loopback(settings.host):
        return (
            f"refusing to listen on {settings.host}, which is not a loopback address, with a generated token: set "
            "NEON_MCP_HTTP_TOKEN (at least 16 characters) to the token clients will send as "
            "'Authorization: Bearer <token>', or listen on 127.0.0.1"
        )
    if not settings.allowed_hosts and not is_loopback(settings.host):
        return (
            f"refusing to listen on {settings.host}, which is not a loopback address, without --allowed-hosts: name "
            "the Host header values clients reach this server by (e.g. --allowed-hosts mcp.example.com,10.0.0.5:*); "
            "add --allowed-origins for browser clients"
        )
    return None


def _least_privilege_refusal(settings: Settings) -> str | None:
    """With --require-least-privilege, why the server's own database role cannot be used, or None.

    Connections are otherwise made on a tool's first call; with this flag the default place is connected to at start
    (on Neon that wakes the default branch's compute), so that a powerful role stops the server before it serves. A
    server taking Neon keys from requests has no role of its own: each tenant's roles are checked on first use.
    """
    if not settings.require_least_privilege or (settings.database_url is None and settings.neon_api_key is None):
        return None
    import anyio

    from .errors import NeonMCPError
    from .root import build_services

    async def check() -> None:
        services = build_services(settings)
        try:
            await services.places.place()
        finally:
            await services.aclose()

    try:
        anyio.run(check)
    except NeonMCPError as exc:
        return str(exc)
    return None


def _serve_stdio(settings: Settings) -> int:
    from .mcp.assembly import build_server
    from .transport.stdio import serve

    serve(build_server(settings))
    return 0


def _serve_http(settings: Settings) -> int:
    import secrets

    from .transport.http import create_app
    from .transport.runner import bind, serve

    assert settings.transport != "stdio"
    token = settings.http_token.get_secret_value() if settings.http_token is not None else secrets.token_urlsafe(32)
    app = create_app(settings, transport=settings.transport, token=token)
    try:
        sock = bind(settings.host, settings.port)
    except OSError as exc:
        print(f"neon-mcp: cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    url = f"http://{host}:{sock.getsockname()[1]}{app.path}"
    kind = "streamable HTTP" if settings.transport == "http" else "SSE"

    def ready() -> None:
        # stderr, never stdout; the token is printed only when it was generated (the operator knows their own).
        if settings.http_token is None:
            print(
                f"neon-mcp: bearer token for this run (set NEON_MCP_HTTP_TOKEN to choose one): {token}",
                file=sys.stderr,
            )
        print(f"neon-mcp: serving MCP over {kind} at {url} (health: /healthz)", file=sys.stderr, flush=True)

    serve(app, sock, on_ready=ready)
    return 0


def _with_local_neon(settings: Settings) -> tuple[Settings, int | None]:
    """Settings that serve local Neon (started or attached to) as Neon, and the pid of local Neon if this process
    started it; the settings are unchanged if that failed."""
    import anyio

    from .errors import NeonMCPError
    from .local_neon.attach import attach
    from .local_neon.daemon import LocalNeonPaths

    paths = LocalNeonPaths(settings.home / "local-neon")
    was_running = paths.running() is not None
    try:
        host, key, project_id = anyio.run(attach, settings.home, settings.neon_project_id)
    except NeonMCPError as exc:
        print(f"neon-mcp: no --database-url or NEON_API_KEY, and local Neon could not be used: {exc}", file=sys.stderr)
        return settings, None
    from pydantic import SecretStr

    info = paths.running()
    started = int(info["pid"]) if info is not None and not was_running else None
    updated = settings.model_copy(
        update={"neon_api_key": SecretStr(key), "neon_api_host": host, "neon_project_id": project_id}
    )
    return updated, started


def _stop_local_neon(settings: Settings, pid: int, timeout: float = 60.0) -> None:
    """Stop the local Neon this process started, unless another one runs there now.

    It is this process's child (``ensure_running`` spawned it): once stopped it must be reaped here, or it would stay
    a zombie that still looks alive.
    """
    import logging
    import os
    import signal
    import time

    from .local_neon.daemon import LocalNeonPaths

    info = LocalNeonPaths(settings.home / "local-neon").running()
    if info is None or int(info["pid"]) != pid:
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                break
        except ChildProcessError:  # not ours after all: wait until it is gone
            try:
                os.kill(pid, 0)
            except OSError:
                break
        time.sleep(0.05)
    else:
        print(f"neon-mcp: local Neon (pid {pid}) did not stop within {timeout:g} s", file=sys.stderr)
        return
    logging.getLogger("neon_mcp").info("stopped local Neon (this server had started it)")


def _local(action: str, settings: Settings) -> int:
    from .local_neon.daemon import local_command

    _configure_logging(settings.log_level)
    return local_command(
        action,
        settings.home,
        port=settings.local_port,
        clusters_root=settings.local_clusters,
        bindir=settings.pg_bindir,
        history=settings.history_seconds,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``neon-mcp`` console script; returns the exit status (argparse exits 2 on a bad option)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["serve"]:
        try:
            settings = Settings()
        except ValidationError as exc:
            return _invalid(exc)
        return _serve(settings)
    from pydantic_settings import CliApp, get_subcommand

    from .commands import Demo, Local, NeonMcp, Options, Serve

    try:
        cli = CliApp.run(NeonMcp, cli_args=args)
    except ValidationError as exc:
        return _invalid(exc, tuple(NeonMcp.model_fields))
    if cli.version:
        from . import __version__

        print(f"neon-mcp {__version__}")
        return 0
    command = get_subcommand(cli, is_required=False)
    if isinstance(command, Demo):
        from .demo import run_demo

        return run_demo()
    if not isinstance(command, Options):
        CliApp.print_help(NeonMcp, file=sys.stderr)
        return 2
    try:
        settings = command.settings()
    except ValidationError as exc:
        return _invalid(exc)
    if isinstance(command, Serve):
        return _serve(settings)
    assert isinstance(command, Local)
    return _local(command.action, settings)


if __name__ == "__main__":
    sys.exit(main())
