"""Run every benchmark and write ``docs/benchmarks.md``: the machine, the date, the command, then each script's
section (its figures beside baselines measured in the same run).

The benchmark database (10,000,000 rows, 2,000 tables, a 100-row sample) is built once and shared by the scripts that
need it (``BENCH_DATABASE_URL``); the local Neon scripts start their own. A script that fails leaves its error in
the document, and the run exits 1.

Run: ``bench/run`` (installs what the benchmarks need, then this), or ``.venv/bin/python bench/report.py``.
"""

from __future__ import annotations

import asyncio
import os
import platform
import subprocess
import sys
import threading
import time
from collections import deque
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from _common import NODE_SERVER, ROOT, bench_cluster, log, prepare_database

from server.local_neon.clusters import find_pg_bindir

OUTPUT = ROOT / "docs" / "benchmarks.md"
ON_DATABASE = ["sql_core.py", "clients.py", "concurrency.py", "cold_start.py", "sdk_costs.py"]
"""Scripts run against the shared benchmark database."""
ON_LOCAL_NEON = ["local_neon.py", "neon_api.py", "migrate.py", "performance.py"]
"""Scripts that start their own local Neon or cluster."""
TITLES = {
    "neon_api.py": "Neon API efficiency",
    "migrate.py": "migrate on a 100 MB table",
    "performance.py": "Query performance tools on 2,000 tables",
}
"""Headings for the scripts whose output does not start with one."""


def _first_line(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=30)
    except OSError:
        return "—"
    return (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr).strip() else "—"


def machine() -> list[tuple[str, str]]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), "?")
    memory_kb = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if "MemTotal" in line
    )
    os_release = Path("/etc/os-release").read_text() if Path("/etc/os-release").exists() else ""
    pretty = next((line.split("=", 1)[1].strip('"') for line in os_release.splitlines() if "PRETTY_NAME" in line), "")
    versions = f"MCP SDK {metadata.version('mcp')}, asyncpg {metadata.version('asyncpg')}"
    commit = _first_line(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no", "--", ".", ":!docs/benchmarks.md"],
        capture_output=True,
        text=True,
    ).stdout
    return [
        ("CPU", f"{model}, {os.cpu_count()} cores (shared with other work: absolute times are noisy, ratios less so)"),
        ("memory", f"{memory_kb / 1024 / 1024:.1f} GiB"),
        ("OS", f"{pretty or platform.system()}, Linux {platform.release()}"),
        ("PostgreSQL", _first_line([str(find_pg_bindir() / "postgres"), "--version"])),
        ("Python", f"{platform.python_version()} ({versions})"),
        ("Node", _first_line(["node", "--version"]) if NODE_SERVER.exists() else "not installed"),
        ("commit", f"{commit}{' with uncommitted changes' if dirty.strip() else ''}"),
    ]


def _tables_apart(markdown: str) -> str:
    """A blank line before every table that follows a line of text (Markdown renders it as text otherwise)."""
    lines: list[str] = []
    for line in markdown.splitlines():
        if line.startswith("|") and lines and lines[-1].strip() and not lines[-1].startswith("|"):
            lines.append("")
        lines.append(line)
    return "\n".join(lines)


def run_script(name: str, env: dict[str, str]) -> tuple[str, float]:
    """Run ``bench/<name>``: its Markdown (with a heading), and seconds taken; its stderr is passed on as it comes."""
    log(f"== bench/{name}")
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / name)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    tail: deque[str] = deque(maxlen=20)

    def forward() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            if "HTTP Request:" not in line:  # httpx2's INFO line per request, from servers built in process
                sys.stderr.write(line)
            tail.append(line.rstrip())

    forwarding = threading.Thread(target=forward, daemon=True)
    forwarding.start()
    # Not communicate(): it would read (and close) stderr too, under the forwarding thread.
    assert process.stdout is not None
    stdout = process.stdout.read()
    process.wait()
    forwarding.join()
    elapsed = time.perf_counter() - started
    text = _tables_apart(stdout.strip())
    if not text.startswith("## "):
        text = f"## {TITLES.get(name, name)}\n\n{text}"
    if process.returncode != 0:
        text += f"\n\n**bench/{name} failed (exit {process.returncode}).** Its last lines:\n\n```text\n"
        text += "\n".join(tail) + "\n```"
    return text, elapsed


def main() -> int:
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    sections: list[str] = []
    durations: list[tuple[str, float]] = []
    env = {k: v for k, v in os.environ.items() if k != "BENCH_DATABASE_URL"}
    with bench_cluster() as cluster:
        prepared = time.perf_counter()
        asyncio.run(prepare_database(cluster.dsn()))
        durations.append(("building the benchmark database", time.perf_counter() - prepared))
        for name in ON_DATABASE:
            text, seconds = run_script(name, {**env, "BENCH_DATABASE_URL": cluster.dsn()})
            sections.append(text)
            durations.append((f"bench/{name}", seconds))
    for name in ON_LOCAL_NEON:
        if (ROOT / "bench" / name).exists():
            text, seconds = run_script(name, env)
            sections.append(text)
            durations.append((f"bench/{name}", seconds))
    total = time.perf_counter() - started

    lines = [
        "# Benchmarks",
        "",
        "Written by `bench/run` (`bench/report.py` runs every script in `bench/`); do not edit by hand. Every "
        "comparison is measured side by side in the same run, on the same machine, and given as a ratio.",
        "",
        "| | |",
        "|---|---|",
        f"| date | {started_at:%Y-%m-%d %H:%M} UTC |",
        "| command | `bench/run` |",
        *(f"| {key} | {value} |" for key, value in machine()),
        f"| duration | {total / 60:.1f} min: "
        + ", ".join(f"{what} {seconds:.0f} s" for what, seconds in durations)
        + " |",
        "",
        *(section + "\n" for section in sections),
    ]
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text("\n".join(lines).rstrip() + "\n")
    log(f"wrote {OUTPUT.relative_to(ROOT)} in {total / 60:.1f} min")
    return 1 if any("failed (exit" in section for section in sections) else 0


if __name__ == "__main__":
    sys.exit(main())
