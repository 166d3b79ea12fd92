"""neon-mcp: the engine (packages by domain) and the process (CLI, settings, the composition root).

``lazy_exports`` is how a package offers its surface without importing it: the names it exports are imported from
their modules on first use, so that importing a package (to register the tools, before ``initialize`` is answered)
loads neither asyncpg nor pglast.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping

__version__ = "0.1.0"


def lazy_exports(package: str, modules: Mapping[str, tuple[str, ...]]) -> Callable[[str], object]:
    """A package's ``__getattr__``: each name listed under a module (``{"service": ("SQLService", …)}``) is imported
    from ``package.module`` when first asked for, then kept in the package."""
    where = {name: module for module, names in modules.items() for name in names}

    def __getattr__(name: str) -> object:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
