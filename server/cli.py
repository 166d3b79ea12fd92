"""The ``neon-mcp`` command line. Arguments override environment variables, which override defaults.

Logs go to stderr only: in stdio mode stdout is the MCP channel.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["main"]


def _serve_parser(sub: Any) -> None:
    serve = sub.add_parser("serve", help="run the MCP server", description="Run the MCP server.")
    serve.add_argument("--transport", choices=["stdio"], help="MCP transport (default stdio)")
    serve.add_argument("--database-url", help="PostgreSQL URL (env DATABASE_URL)")
    serve.add_argument("--access-mode", choices=["read-only", "full"], help="what SQL may run (default read-only)")
    serve.add_argument("--max-rows", type=int, help="most rows a result returns")
    serve.add_argument("--max-bytes", type=int, help="most bytes of row data a result returns")
    serve.add_argument("--statement-timeout", type=float, metavar="SECONDS", help="statement_timeout per statement")
    serve.add_argument("--default-schema", help="schema tables belong to; unqualified names get a warning")
    serve.add_argument("--log-level", type=str.upper, choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neon-mcp", description="A safe, Neon-aware MCP server for PostgreSQL.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _serve_parser(sub)
    return parser


def _configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


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
    from .app import build_server

    try:
        server = build_server(settings)
    except NeonMCPError as exc:
        print(f"neon-mcp: {exc}", file=sys.stderr)
        return 2
    server.run(settings.transport)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``neon-mcp`` console script."""
    args = _parser().parse_args(argv)
    if args.version:
        from . import __version__

        print(f"neon-mcp {__version__}")
        return 0
    if args.command == "serve":
        return _serve(args)
    _parser().print_help(sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
