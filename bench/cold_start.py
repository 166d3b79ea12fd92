"""Cold start: process start to the ``initialize`` answer over stdio, against a bare ``MCPServer`` (target ≤ 1.1×),
and where the import time goes (``python -X importtime``).

neon-mcp is started on a database URL and with Neon configured (an API key: it contacts nothing before the first
call), alternately with the bare server (so noise hits each alike), each sent ``initialize`` on stdin at once; the
figure is the time until its answer is read. neon-mcp starts with its tool catalog written (``server.mcp.catalog``,
as every start after the first), and, in the same rounds, without one (the first start after installing or changing
it, which builds every tool). Since a start from the catalog builds a tool when it is first called, the time to a
first answer is measured too: start, ``initialize``, ``tools/list``, then ``run_sql('select 1')`` answered. Our
packages are compiled to bytecode first, as the README's set-up command does (``compileall``): a start that compiles
them is a first start after editing, not a cold start. The import breakdown runs each once more under
``-X importtime`` (which slows imports down: read it as shares) and sums the self time of every module by top-level
package.

Run: ``.venv/bin/python bench/cold_start.py`` (its own PostgreSQL cluster unless ``BENCH_DATABASE_URL`` is set;
the server does not connect before the first tool call, but it is given a real database). With
``BENCH_COMPARE=<a checkout of another commit>`` (with its own ``.venv``), that commit's ``neon-mcp serve`` is started
in the same rounds, and each start is also given as a ratio of its.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from _common import EXE, ROOT, Stats, bench_database, cpu_seconds, log, ms, of_target, ratio, section, server_env

RUNS = int(os.environ.get("BENCH_COLD_RUNS", "20"))
INITIALIZE = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "bench", "version": "0"},
        },
    }
)
OURS = [EXE, "serve"]
COMPARE = os.environ.get("BENCH_COMPARE")
"""A checkout of another commit whose server is started beside this one's (see the module docstring)."""
BARE = [sys.executable, str(ROOT / "bench" / "bare_server.py")]
OURS_MODULE = ["-m", "server", "serve"]
OUR_PACKAGES = ("server", "tools", "prompts")
IMPORT_RUNS = 5
TARGET = 1.1
NEON = {"NEON_API_KEY": "napi_bench", "NEON_API_HOST": "http://127.0.0.1:9/api/v2", "NEON_PROJECT_ID": "bench"}
"""Neon configured: the server registers every Neon tool, and talks to the API only when a tool asks it."""


@dataclass(frozen=True)
class Start:
    wall: float
    """Seconds from process start to the ``initialize`` answer read."""
    cpu: float
    """CPU seconds the server had used then (user and system, in clock ticks: 10 ms here)."""
    stderr: str


def to_initialize(command: list[str], env: dict[str, str]) -> Start:
    """Start ``command``, send it ``initialize``, and measure until its answer is read."""
    with tempfile.TemporaryFile() as stderr:  # a file, not a pipe: -X importtime writes more than a pipe holds
        started = time.perf_counter()
        proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, env=env)
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write((INITIALIZE + "\n").encode())
        proc.stdin.flush()
        line = proc.stdout.readline()
        elapsed = time.perf_counter() - started
        cpu = cpu_seconds(proc.pid)
        proc.communicate(timeout=30)  # closes stdin: the server ends
        stderr.seek(0)
        text = stderr.read().decode(errors="replace")
    if b'"result"' not in line:
        raise RuntimeError(f"{command} did not answer initialize: {line!r} {text[-2000:]}")
    return Start(elapsed, cpu, text)


@dataclass(frozen=True)
class Imported:
    self_us: int
    cumulative_us: int
    depth: int
    name: str


def parse_importtime(stderr: str) -> list[Imported]:
    """The ``-X importtime`` lines, in the order printed (a module after the modules it imported)."""
    out = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative_us, name = line.removeprefix("import time:").split("|")
        out.append(Imported(int(self_us), int(cumulative_us), (len(name) - len(name.lstrip())) // 2, name.strip()))
    return out


def least_self_time(runs: list[list[Imported]], key: Callable[[Imported], str]) -> dict[str, float]:
    """Self time in µs summed by ``key`` within each run, then the least across runs (noise only adds; 0 where a
    run lacks it)."""
    totals: list[dict[str, int]] = []
    for imports in runs:
        total: dict[str, int] = defaultdict(int)
        for module in imports:
            total[key(module)] += module.self_us
        totals.append(total)
    names = {name for total in totals for name in total}
    return {name: min(total.get(name, 0) for total in totals) for name in names}


def _top(module: Imported) -> str:
    return module.name.split(".")[0]


def _name(module: Imported) -> str:
    return module.name


def _parent(imports: list[Imported], index: int) -> int | None:
    """The module whose import ran ``imports[index]``: the next one printed less indented."""
    depth = imports[index].depth
    return next((j for j in range(index + 1, len(imports)) if imports[j].depth < depth), None)


def first_importer(imports: list[Imported], package: str) -> str:
    """The nearest module of ours (or of the SDK) whose import first pulled ``package`` in."""
    index = next((i for i, module in enumerate(imports) if _top(module) == package), None)
    while index is not None:
        index = _parent(imports, index)
        if index is not None and _top(imports[index]) in (*OUR_PACKAGES, "mcp") and _top(imports[index]) != package:
            return imports[index].name
    return "(the entry point)"


_NEXT = [
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
    {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    {
        "jsonrpc": "2.0",
        "id": 3,
        "method": "tools/call",
        "params": {"name": "run_sql", "arguments": {"sql": "select 1"}},
    },
]


def to_first_answer(command: list[str], env: dict[str, str]) -> float:
    """Seconds from process start to the answer of a first ``run_sql('select 1')``, after ``initialize`` and
    ``tools/list`` as a client sends them."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        for message, answer_id in ((json.loads(INITIALIZE), 1), *((m, m.get("id")) for m in _NEXT)):
            proc.stdin.write((json.dumps(message) + "\n").encode())
            proc.stdin.flush()
            while answer_id is not None:
                line = proc.stdout.readline()
                if not line:
                    raise RuntimeError(f"{command} ended before answering {message['method']}")
                answer = json.loads(line)
                if answer.get("id") == answer_id:
                    if "result" not in answer or answer["result"].get("isError"):
                        raise RuntimeError(f"{command} answered {message['method']} with {line!r}")
                    break
        return time.perf_counter() - started
    finally:
        proc.communicate(timeout=30)


def _neon_env(env: dict[str, str]) -> dict[str, str]:
    return {**{k: v for k, v in env.items() if k != "DATABASE_URL"}, **NEON}


def _start_rows(label: str, ours: list[Start], bare: list[Start]) -> list[list[object]]:
    return [
        _start_row(label, [s.wall for s in ours], [s.wall for s in bare], "bare MCPServer"),
        _start_row("… its CPU time by then", [s.cpu for s in ours], [s.cpu for s in bare], "bare MCPServer's"),
    ]


def _start_row(label: str, ours: list[float], bare: list[float], baseline: str) -> list[object]:
    o, b = Stats.of(ours), Stats.of(bare)
    return [
        label,
        ms(o.median, 0),
        ms(min(ours), 0),
        f"{baseline} {ms(b.median, 0)}, {ms(min(bare), 0)}",
        f"{ratio(o.median, b.median)}, {ratio(min(ours), min(bare))}",
        f"medians: {of_target(o.median / b.median, TARGET)}; fastest: {of_target(min(ours) / min(bare), TARGET)}",
    ]


def _first_rows(answers: dict[str, list[float]]) -> list[list[object]]:
    """Time to a first answer: each way of starting beside the start from the catalog."""
    ours = answers["catalog"]
    rows = []
    for key, label in (
        ("catalog", "`neon-mcp serve` on a database URL, from its catalog"),
        ("none", "… without a catalog (first start: builds every tool, writes the catalog)"),
        ("before", f"… at {_commit(COMPARE or '')} (before: builds every tool at every start)"),
    ):
        if key not in answers:
            continue
        these = answers[key]
        rows.append(
            [label, ms(Stats.of(these).median, 0), ms(min(these), 0),
             "—" if key == "catalog" else f"from the catalog {ratio(Stats.of(ours).median, Stats.of(these).median)}, "
             f"{ratio(min(ours), min(these))}"]
        )  # fmt: skip
    return rows


def _against(other: list[Start], ours: list[Start], how: str) -> list[list[object]]:
    """The other commit's starts beside this one's, in the same rounds."""
    commit = _commit(COMPARE or "")
    o, t = Stats.of([s.wall for s in ours]), Stats.of([s.wall for s in other])
    return [
        [
            f"`neon-mcp serve` {how} at {commit} (before)",
            ms(t.median, 0),
            ms(min(s.wall for s in other), 0),
            f"this commit {ms(o.median, 0)}, {ms(min(s.wall for s in ours), 0)}",
            f"this commit {ratio(o.median, t.median)}, {ratio(min(s.wall for s in ours), min(s.wall for s in other))}",
            "—",
        ]
    ]


def _commit(checkout: str) -> str:
    done = subprocess.run(["git", "-C", checkout, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or checkout


def main() -> None:
    subprocess.run([sys.executable, "-m", "compileall", "-q", *OUR_PACKAGES], cwd=ROOT, check=True)
    with bench_database() as url, tempfile.TemporaryDirectory(prefix="neon-mcp-bench-home-") as home:
        env = server_env(url, Path(home))
        neon_env = _neon_env(env)
        log(f"cold start: {RUNS} runs each, alternating…")
        ours, ours_neon, bare, other, other_neon, built, built_neon = [], [], [], [], [], [], []
        theirs = [str(Path(COMPARE) / ".venv" / "bin" / "neon-mcp"), "serve"] if COMPARE else None
        to_initialize(OURS, env), to_initialize(OURS, neon_env)  # the catalogs written
        for run in range(RUNS):
            ours.append(to_initialize(OURS, env))
            bare.append(to_initialize(BARE, env))
            ours_neon.append(to_initialize(OURS, neon_env))
            fresh = {"NEON_MCP_CACHE_DIR": str(Path(home) / f"fresh-{run}")}
            built.append(to_initialize(OURS, {**env, **fresh}))
            built_neon.append(to_initialize(OURS, {**neon_env, **fresh}))
            if theirs is not None:
                other.append(to_initialize(theirs, {**env, "NEON_MCP_HOME": str(Path(home) / "other")}))
                other_neon.append(to_initialize(theirs, {**neon_env, "NEON_MCP_HOME": str(Path(home) / "other")}))
        log(f"time to a first answer: {RUNS} runs each, alternating…")
        answers: dict[str, list[float]] = defaultdict(list)
        for run in range(RUNS):
            answers["catalog"].append(to_first_answer(OURS, env))
            answers["none"].append(to_first_answer(OURS, {**env, "NEON_MCP_CACHE_DIR": str(Path(home) / f"new-{run}")}))
            if theirs is not None:
                answers["before"].append(to_first_answer(theirs, {**env, "NEON_MCP_HOME": str(Path(home) / "other")}))
        log("import breakdown…")
        ours_runs, bare_runs = [], []
        for _ in range(IMPORT_RUNS):
            ours_runs.append(
                parse_importtime(to_initialize([sys.executable, "-X", "importtime", *OURS_MODULE], neon_env).stderr)
            )
            bare_runs.append(
                parse_importtime(to_initialize([sys.executable, "-X", "importtime", *BARE[1:]], env).stderr)
            )

    section(
        "Cold start",
        f"Process start to the `initialize` answer over stdio, median and fastest of {RUNS} starts each, alternating "
        "with a bare `MCPServer` with no tools (`bench/bare_server.py`, the SDK's own floor); noise only adds, so the "
        "fastest starts say more of the cost itself; the CPU time the server had used by its answer varies less than "
        "the wall time on a shared machine. Bytecode compiled, as after the README's set-up command.",
        ["figure", "median", "fastest", "baseline in the same run (median, fastest)", "ratio (median, fastest)",
         f"against the target (≤ {TARGET}×)"],
        [
            *_start_rows("`neon-mcp serve` on a database URL", ours, bare),
            *_start_rows("`neon-mcp serve` with Neon configured (every Neon tool)", ours_neon, bare),
            *_start_rows("`neon-mcp serve` on a database URL, no catalog yet (first start)", built, bare),
            *_start_rows("`neon-mcp serve` with Neon configured, no catalog yet (first start)", built_neon, bare),
            *(_against(other, ours, "on a database URL") + _against(other_neon, ours_neon, "with Neon configured")
              if other else []),
        ],
    )  # fmt: skip

    section(
        "Cold start: time to a first answer",
        f"Process start to the answer of a first `run_sql('select 1')` (after `initialize` and `tools/list`, as a "
        f"client sends them), on a database URL, median and fastest of {RUNS} starts each, alternating. A start from "
        "the catalog builds `run_sql` at that call (importing its family and the engine behind it): this shows "
        "whether the time saved at the start is saved or only moved.",
        ["start", "median", "fastest", "ratio of the start from the catalog (median, fastest)"],
        _first_rows(answers),
    )

    ours_packages, bare_packages = least_self_time(ours_runs, _top), least_self_time(bare_runs, _top)
    ours_imports = ours_runs[0]
    ours_modules = least_self_time([[m for m in run if _top(m) in OUR_PACKAGES] for run in ours_runs], _name)
    heaviest = sorted(ours_modules, key=ours_modules.__getitem__, reverse=True)[:8]
    total_ours, total_bare = sum(ours_packages.values()), sum(bare_packages.values())
    ranked = sorted(ours_packages, key=lambda name: ours_packages[name] - bare_packages.get(name, 0), reverse=True)
    rows = []
    for name in ranked[:12]:
        added = ours_packages[name] - bare_packages.get(name, 0)
        if added < 1000:
            break
        importer = "ours" if name in OUR_PACKAGES else first_importer(ours_imports, name)
        rows.append(
            [f"`{name}`", ms(ours_packages[name] / 1e6, 0), ms(bare_packages.get(name, 0) / 1e6, 0),
             ms(added / 1e6, 0), f"{added / (total_ours - total_bare):.0%}", f"`{importer}`"]
        )  # fmt: skip
    rows.append(
        ["all imports", ms(total_ours / 1e6, 0), ms(total_bare / 1e6, 0), ms((total_ours - total_bare) / 1e6, 0),
         "100%", "—"]
    )  # fmt: skip
    section(
        "Cold start: where the import time goes",
        f"`python -X importtime` of each server (neon-mcp with Neon configured), {IMPORT_RUNS} runs alternating, "
        "self time summed by top-level package, the least of the runs (importtime inflates import times: read the "
        "shares); the packages neon-mcp "
        'adds most to the bare server first. "First imported by" is the '
        "module of ours (or of the SDK) whose import pulled the package in. Our own modules taking the most self "
        "time: " + ", ".join(f"`{name}` {ours_modules[name] / 1000:.0f} ms" for name in heaviest) + ".",
        ["package", "neon-mcp serve", "bare MCPServer", "added", "share of the added total", "first imported by"],
        rows,
    )


if __name__ == "__main__":
    main()
