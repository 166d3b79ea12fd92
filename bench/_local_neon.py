"""Run a benchmark against its own local Neon: started in a temporary data directory, stopped and removed after."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

EXE = str(Path(sys.executable).parent / "neon-mcp")


def with_local_neon(run: Callable[[str, str, Path], Awaitable[None]], *, prefix: str) -> None:
    """``run(api_host, api_key, data_dir)`` with a fresh local Neon; the data directory is gone afterwards."""
    base = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        base.chmod(0o711)  # PostgreSQL runs as nobody, which must reach the clusters
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEON_MCP_")}
    env["NEON_MCP_HOME"] = str(base)
    try:
        started = subprocess.run([EXE, "local", "start"], env=env, capture_output=True, text=True, check=True)
        lines = dict(line.split("=", 1) for line in started.stdout.strip().splitlines())
        asyncio.run(run(lines["NEON_API_HOST"], lines["NEON_API_KEY"], base / "server"))
    finally:
        subprocess.run([EXE, "local", "stop"], env=env, capture_output=True, check=False)
        shutil.rmtree(base, ignore_errors=True)
