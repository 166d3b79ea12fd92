"""The ``neon-mcp`` command line. Arguments override environment variables, which override defaults.

Logs go to stderr only: in stdio mode stdout is the MCP channel.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .settings import Settings

__all__ = ["main"]


_SERVE_OPTIONS = (
    "transport",
    "host",
    "port",
    "neon_key_from_header",
    "database_url",
    "neon_project_id",
    "neon_branch",
    "neon_database",
    "neon_role",
    "production_branch",
    "access_mode",
    "max_rows",
    "max_bytes",
    "statement_timeout",
    "lock_timeout",
    "default_schema",
    "log_level",
)
"""Settings that ``neon-mcp serve`` also takes as options (all settings come from the environment too)."""


def _add_setting_options(parser: argparse.ArgumentParser, names: Sequence[str]) -> None:
    """One ``--option`` per setting, its help and choices taken from the Settings field itself."""
    from typing import Literal, get_args, get_origin

    from .settings import Settings

    for name in names:
        field = Settings.model_fields[name]
        annotation = field.annotation
        options: dict[str, Any] = {"help": field.description, "dest": name}
        if get_origin(annotation) is Literal:
            options["choices"] = list(get_args(annotation))
            if name == "log_level":
                options["type"] = str.upper
        elif annotation is bool:
            options["action"] = argparse.BooleanOptionalAction
        elif annotation is int:
            options["type"] = int
        elif annotation is float:
            options["type"] = float
            options["metavar"] = "SECONDS"
        parser.add_argument("--" + name.replace("_", "-"), **options)


def _serve_parser(sub: Any) -> None:
    serve = sub.add_parser("serve", help="run the MCP server", description="Run the MCP server.")
    _add_setting_options(serve, _SERVE_OPTIONS)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neon-mcp", description="A safe, Neon-aware MCP server for PostgreSQL.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _serve_parser(sub)
    local = sub.add_parser(
        "local",
        help="run local Neon (Neon's management API over PostgreSQL clusters on this machine)",
        description="Local Neon: start or stop it in the background, show its status, or run it in the foreground.",
    )
    local.add_argument("action", choices=["start", "stop", "status", "run"])
    _add_setting_options(local, ("local_port", "local_clusters", "history_seconds", "log_level"))
    sub.add_parser(
        "demo",
        help="walk the whole SQL core on a throwaway PostgreSQL",
        description="Start a throwaway PostgreSQL cluster and drive neon-mcp over stdio through every tool.",
    )
    return parser


def _configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # One line per HTTP request drowns the server's own log; the Neon client logs retries and failures itself.
    quiet = logging.DEBUG if level == "DEBUG" else logging.WARNING
    for name in ("httpx2", "httpcore2", "httpx", "httpcore"):
        logging.getLogger(name).setLevel(quiet)


def _serve(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from .errors import NeonMCPError
    from .settings import Settings

    overrides = {
        key: value for key, value in vars(args).items() if key not in ("command", "version") and value is not None
    }
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"])
            print(f"neon-mcp: invalid setting {field}: {error['msg']}", file=sys.stderr)
        return 2
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


def _local(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from .local_neon.daemon import local_command
    from .settings import Settings

    overrides = {key: value for key, value in vars(args).items() if key not in ("command", "version", "action")}
    try:
        settings = Settings(**{key: value for key, value in overrides.items() if value is not None})
    except ValidationError as exc:
        for error in exc.errors():
            print(f"neon-mcp: invalid setting {'.'.join(map(str, error['loc']))}: {error['msg']}", file=sys.stderr)
        return 2
    _configure_logging(settings.log_level)
    return local_command(
        args.action,
        settings.home,
        port=settings.local_port,
        clusters_root=settings.local_clusters,
        bindir=settings.pg_bindir,
        history=settings.history_seconds,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``neon-mcp`` console script."""
    args = _parser().parse_args(argv)
    if args.version:
        from . import __version__

        print(f"neon-mcp {__version__}")
        return 0
    if args.command == "serve":
        return _serve(args)
    if args.command == "local":
        return _local(args)
    if args.command == "demo":
        from .demo import run_demo

        return run_demo()
    _parser().print_help(sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
