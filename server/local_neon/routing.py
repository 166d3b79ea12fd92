"""Each API endpoint said once: on the handler method that answers it.

A part of local Neon (projects, branches, …) marks a method with ``@route(name, METHOD, path, status=…)``; the HTTP
layer serves every marked method at ``/api/v2`` + path, and tests call the same methods directly. ``name`` is the
route's name in request counts and tests. A handler takes its arguments by name, the way ``call`` binds a request:

- a parameter named like a path parameter (``project_id``, …) gets it from the path;
- ``body`` gets the JSON body (``{}`` when there is none);
- every other parameter comes from the query string, converted to its annotation (``str``, ``int``, ``bool``, or
  one of them ``| None``): optional when it has a default, else a missing or empty value is a 400.

A handler answers the body Neon sends with the route's status, or ``None`` for 204 No Content (Neon's answer to
deleting something already gone).
"""

from __future__ import annotations

import functools
import inspect
import re
import types
import typing
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from .errors import bad_request

__all__ = ["Answer", "Handler", "Route", "call", "handlers_of", "route", "routes_of"]

Answer = dict[str, Any] | None
"""What a handler returns: the response body, or ``None`` for 204."""

Handler = Callable[..., Awaitable[Answer]]
H = TypeVar("H", bound=Handler)

_MARK = "__local_neon_routes__"
_PATH_PARAMETER = re.compile(r"\{(\w+)\}")
_TRUE = frozenset({"true", "1", "yes"})


@dataclass(frozen=True, slots=True)
class Route:
    """One API endpoint: its name, HTTP method, path under ``/api/v2`` (as the spec writes it), success status, and
    the name of the method that answers it on its part."""

    name: str
    method: str
    path: str
    status: int
    attribute: str

    @property
    def path_parameters(self) -> frozenset[str]:
        return frozenset(_PATH_PARAMETER.findall(self.path))


def route(name: str, method: str, path: str, *, status: int = 200) -> Callable[[H], H]:
    """Mark a handler method as the answer to ``method path`` (a method may answer several routes)."""

    def mark(handler: H) -> H:
        routes = getattr(handler, _MARK, ())
        setattr(handler, _MARK, (*routes, Route(name, method, path, status, handler.__name__)))
        return handler

    return mark


def _marked(part: type) -> list[Route]:
    return [r for member in vars(part).values() for r in getattr(member, _MARK, ())]


def routes_of(parts: Iterable[type]) -> list[Route]:
    """Every route the classes ``parts`` mark, literal path segments before parameters at each position (so that
    ``/projects/shared`` is matched before ``/projects/{project_id}``)."""
    found = [r for part in parts for r in _marked(part)]
    names = [r.name for r in found]
    if len(names) != len(set(names)):
        raise RuntimeError(f"route names must be unique: {sorted(n for n in names if names.count(n) > 1)}")
    return sorted(found, key=lambda r: [segment.startswith("{") for segment in r.path.split("/")])


def handlers_of(parts: Iterable[object]) -> dict[str, Handler]:
    """Route name → the bound method that answers it, for ``parts`` (instances of classes marking routes). Raises
    ``TypeError`` for a handler whose parameters a request cannot fill (checked here, not at its first request)."""
    marked = [(part, r) for part in parts for r in _marked(type(part))]
    handlers = {r.name: getattr(part, r.attribute) for part, r in marked}
    for _, r in marked:
        _readers(getattr(handlers[r.name], "__func__", handlers[r.name]), r.path_parameters)
    return handlers


async def call(
    handler: Handler, route: Route, path: dict[str, str], query: dict[str, str], body: dict[str, Any]
) -> Answer:
    """Answer one request with ``handler`` (a bound method marked for ``route``); 400 for an unusable query."""
    arguments: dict[str, Any] = {}
    for name, read in _readers(getattr(handler, "__func__", handler), route.path_parameters):
        arguments[name] = read(path, query, body)
    return await handler(**{k: v for k, v in arguments.items() if v is not _ABSENT})


_ABSENT = object()
Reader = Callable[[dict[str, str], dict[str, str], dict[str, Any]], Any]


@functools.cache
def _readers(function: Callable[..., Any], path_parameters: frozenset[str]) -> tuple[tuple[str, Reader], ...]:
    """How to read each parameter of ``function`` from a request (computed once per handler and route)."""
    hints = typing.get_type_hints(function)
    readers: list[tuple[str, Reader]] = []
    for parameter in list(inspect.signature(function).parameters.values())[1:]:  # after self
        name = parameter.name
        if name in path_parameters:
            readers.append((name, _path_reader(name)))
        elif name == "body":
            readers.append((name, _body))
        else:
            required = parameter.default is inspect.Parameter.empty
            readers.append((name, _query_reader(name, _scalar(hints[name]), required=required)))
    return tuple(readers)


def _path_reader(name: str) -> Reader:
    return lambda path, query, body: path[name]


def _body(path: dict[str, str], query: dict[str, str], body: dict[str, Any]) -> Any:
    return body


def _scalar(hint: Any) -> type:
    """``int`` for ``int`` and ``int | None``, and so on."""
    if isinstance(hint, types.UnionType):
        (hint,) = [arg for arg in hint.__args__ if arg is not type(None)]
    if hint not in (str, int, bool):
        raise TypeError(f"query parameters are str, int or bool, not {hint!r}")
    return typing.cast(type, hint)


def _query_reader(name: str, kind: type, *, required: bool) -> Reader:
    def read(path: dict[str, str], query: dict[str, str], body: dict[str, Any]) -> Any:
        value = query.get(name)
        if not value and required:
            raise bad_request(f"query parameter {name} is required")
        if value is None:
            return _ABSENT
        if kind is bool:
            return value.lower() in _TRUE
        if kind is int:
            try:
                return int(value)
            except ValueError:
                raise bad_request(f"query parameter {name} must be an integer") from None
        return value

    return read
