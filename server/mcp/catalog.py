"""The tool catalog: what ``tools/list`` says of an offer's tools, kept on disk, so that a start imports no tool module.

Building the tools is most of what neon-mcp adds to a start: each family's module, the engine's packages behind it,
and the SDK's argument model and schemas for every tool (on this machine 90 ms on a database URL, 240 ms with Neon's
32 tools, against 45 ms for everything else of ours). An agent calls a few of them. So a start reads the catalog of
its offer (``tools-<offer>-<installation>.json`` in the cache directory) instead: name, title, description,
annotations, input and output schema of each tool, and the family it comes from. ``tools/list`` is answered from
it, and a tool is built when it is first called: its family's module is imported and registers its tools as at a
start without a catalog, and the one called is built (its neighbours are not) and must match its entry.

The catalog is trusted no further than its fingerprint: the versions of Python, pydantic, the SDK and neon-mcp, the
offer, and the path, size and modification time of every module of ``server`` and ``tools``. Any change, and the
start builds every tool and writes the catalog again. It names families, never modules: an entry whose family is not
one of ``tools.FAMILIES`` for the offer discards the catalog. A tool that does not match its entry when built (which
the fingerprint should make impossible) is served as built, and the catalog is removed with a warning in the log. A
cache directory that cannot be written only costs the next start its speed.

Each installation (a Python environment and the directory neon-mcp's code is in) has its own catalog files: two of
them sharing a cache directory (two checkouts, two virtualenvs, a new version beside an old one) would otherwise
rewrite each other's catalog at every start and never start from one. A catalog not written for ``STALE_DAYS`` (its
installation removed, most likely) is removed when another is written.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pydantic
import pydantic_core
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp_types import ToolAnnotations
from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError

from .. import __version__
from .tooling import Offer, ToolSpec

__all__ = ["Deferred", "catalog_path", "fingerprint", "offered_tools"]

logger = logging.getLogger("neon_mcp")

_FORMAT = 1
"""Bumped when what a catalog holds changes."""
STALE_DAYS = 30
"""A catalog file not written for this long is removed when another is written."""


class _Entry(BaseModel):
    family: str
    name: str
    title: str | None
    description: str
    parameters: dict[str, Any]
    output_schema: dict[str, Any] | None
    annotations: ToolAnnotations | None


class _Catalog(BaseModel):
    fingerprint: str
    tools: list[_Entry]


def _entry(spec: ToolSpec, tool: Tool) -> _Entry:
    return _Entry(
        family=spec.family,
        name=tool.name,
        title=tool.title,
        description=tool.description,
        parameters=tool.parameters,
        output_schema=tool.output_schema,
        annotations=tool.annotations,
    )


def fingerprint(offer: Offer) -> str:
    """What a catalog for ``offer`` is valid for (see the module docstring)."""
    digest = hashlib.sha256()
    versions = (_FORMAT, offer.name, __version__, sys.version, pydantic.VERSION, pydantic_core.__version__)
    digest.update(repr((*versions, version("mcp"), version("mcp-types"))).encode())
    import tools

    for package in (Path(__file__).parents[1], *(Path(p) for p in tools.__path__)):
        for root, dirs, files in os.walk(package):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(f for f in files if f.endswith(".py")):
                stat = os.stat(os.path.join(root, name))
                digest.update(f"{os.path.join(root, name)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


@functools.cache
def _installation() -> str:
    """This installation: its Python environment and the directory that holds neon-mcp's code (hashed)."""
    where = f"{sys.prefix}\0{Path(__file__).resolve().parents[2]}"
    return hashlib.sha256(where.encode()).hexdigest()[:12]


def catalog_path(offer: Offer, directory: Path) -> Path:
    """Where this installation keeps ``offer``'s catalog in ``directory``."""
    return directory / f"tools-{offer.name}-{_installation()}.json"


def offered_tools(offer: Offer, directory: Path) -> list[Tool]:
    """``offer``'s tools: from its catalog in ``directory`` when there is a valid one (built when first called),
    else built now, and the catalog written for the next start."""
    mark = fingerprint(offer)
    path = catalog_path(offer, directory)
    if (deferred := _read(path, mark, offer)) is not None:
        return deferred
    import tools

    built, entries = [], []
    for spec in tools.registered(offer):
        built.append(tool := spec.build())
        entries.append(_entry(spec, tool))
    _write(path, _Catalog(fingerprint=mark, tools=entries))
    return built


def _read(path: Path, mark: str, offer: Offer) -> list[Tool] | None:
    try:
        catalog = _Catalog.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValidationError) as exc:
        logger.warning("the tool catalog %s cannot be read (%s): rebuilding it", path, type(exc).__name__)
        return None
    if catalog.fingerprint != mark:
        return None
    import tools

    allowed = set(tools.families(offer))
    if not catalog.tools or any(entry.family not in allowed for entry in catalog.tools):
        logger.warning("the tool catalog %s names families this server does not offer: rebuilding it", path)
        return None
    return [Deferred.of(entry, offer, path) for entry in catalog.tools]


def _write(path: Path, catalog: _Catalog) -> None:
    """Write ``catalog`` to ``path`` whole or not at all (a temporary file renamed over it: starts reading it
    meanwhile see the old one or the new one)."""
    temporary: str | None = None
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("wb", dir=path.parent, prefix=f".{path.name}.", delete=False) as out:
            temporary = out.name
            out.write(catalog.model_dump_json().encode())
        os.replace(temporary, path)
    except OSError as exc:
        logger.info("the tool catalog %s cannot be written (%s): each start builds every tool", path, exc)
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
        return
    _prune(path)


def _prune(written: Path) -> None:
    """Remove the catalogs (and temporary files of interrupted writes) beside ``written`` that nobody has written for
    ``STALE_DAYS``."""
    oldest = time.time() - STALE_DAYS * 86_400
    for pattern in ("tools-*.json", ".tools-*.json.*"):
        for found in written.parent.glob(pattern):
            with contextlib.suppress(OSError):
                if found != written and found.stat().st_mtime < oldest:
                    found.unlink()


class Deferred(Tool):
    """A tool as its catalog entry describes it; built (its family imported and registered) when first called."""

    model_config = ConfigDict(defer_build=True)  # made with model_construct only: no validator to build

    _entry: _Entry = PrivateAttr()
    _offer: Offer = PrivateAttr()
    _path: Path = PrivateAttr()
    _built: Tool | None = PrivateAttr(default=None)

    @classmethod
    def of(cls, entry: _Entry, offer: Offer, path: Path) -> Deferred:
        tool = cls.model_construct(
            fn=None,
            name=entry.name,
            title=entry.title,
            description=entry.description,
            parameters=entry.parameters,
            fn_metadata=None,
            is_async=True,
            context_kwarg=None,
            annotations=entry.annotations,
            icons=None,
            meta=None,
        )
        tool._entry, tool._offer, tool._path = entry, offer, path
        return tool

    @functools.cached_property
    def output_schema(self) -> dict[str, Any] | None:
        return self._entry.output_schema

    def built(self) -> Tool:
        """The tool as its family registers it (built at the first call; the family's other tools are not)."""
        if self._built is None:
            import tools

            spec = next((s for s in tools.registered(self._offer, self._entry.family) if s.name == self.name), None)
            if spec is None:
                self._discard()
                raise ToolError(f"{self.name} is no longer offered by this server: restart it to list its tools")
            found = spec.build()
            if _entry(spec, found) != self._entry:
                self._discard()
            self._built = found
        return self._built

    def _discard(self) -> None:
        logger.warning(
            "the tool catalog %s does not describe %s as it is built: removed; the next start rebuilds it",
            self._path,
            self.name,
        )
        with contextlib.suppress(OSError):
            self._path.unlink(missing_ok=True)

    async def run(self, arguments: dict[str, Any], context: Any, convert_result: bool = False) -> Any:
        return await self.built().run(arguments, context, convert_result=convert_result)
