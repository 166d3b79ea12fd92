"""Neon's own JavaScript clients for the tests: npm packages installed once into ``.venv/npm/<digest>/``.

``node_packages`` skips the calling test (with the reason) when node or npm is missing or the install fails: the
registry is the only way to get them, and the README's test command must pass on a machine without them.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

__all__ = ["node_packages", "run_node"]

_ROOT = Path(__file__).resolve().parents[2] / ".venv" / "npm"


def node_packages(packages: list[str], *, overrides: dict[str, str] | None = None) -> Path:
    """A directory with ``packages`` installed under ``node_modules`` (``overrides``: npm's, for broken pins)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are not installed: Neon's JavaScript clients cannot run here")
    spec = json.dumps({"packages": packages, "overrides": overrides or {}}, sort_keys=True)
    root = _ROOT / hashlib.sha256(spec.encode()).hexdigest()[:16]
    marker = root / ".installed"
    if marker.exists():
        return root
    root.mkdir(parents=True, exist_ok=True)
    manifest = {"name": "neon-mcp-test-clients", "private": True, "type": "module", "overrides": overrides or {}}
    (root / "package.json").write_text(json.dumps(manifest), encoding="utf-8")
    done = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error", *packages],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"npm could not install {' '.join(packages)}: {done.stderr.strip().splitlines()[-1:]}")
    marker.write_text(spec, encoding="utf-8")
    return root


def run_node(root: Path, script: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``script`` with node from inside ``root`` (ES modules resolve packages from the script's directory)."""
    node = shutil.which("node")
    assert node is not None
    target = root / script.name
    shutil.copyfile(script, target)
    return subprocess.run(
        [node, str(target), *args], cwd=root, capture_output=True, text=True, timeout=timeout, check=False
    )
