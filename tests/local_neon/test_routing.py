"""Routes said once, on their handlers: how a request fills a handler's parameters, and what is refused early."""

from __future__ import annotations

from typing import Any

import pytest

from server.local_neon import NeonAPIError
from server.local_neon.routing import call, handlers_of, route, routes_of

pytestmark = pytest.mark.anyio


class _Part:
    @route("get_thing", "GET", "/things/{thing_id}")
    async def get(self, thing_id: str, *, limit: int = 10, deep: bool = False, name: str | None = None) -> Any:
        return {"thing_id": thing_id, "limit": limit, "deep": deep, "name": name}

    @route("list_shared_things", "GET", "/things/shared")
    async def shared(self, *, db_name: str) -> Any:
        return {"db_name": db_name}

    @route("put_thing", "POST", "/things/{thing_id}", status=201)
    async def put(self, thing_id: str, body: dict[str, Any]) -> Any:
        return None if body.get("gone") else {"thing_id": thing_id, "body": body}


async def test_a_request_fills_the_handlers_parameters_by_name() -> None:
    handlers = handlers_of([_Part()])
    routes = {r.name: r for r in routes_of([_Part])}
    get, put, shared = routes["get_thing"], routes["put_thing"], routes["list_shared_things"]
    answer = await call(handlers["get_thing"], get, {"thing_id": "t1"}, {"limit": "3", "deep": "true"}, {})
    assert answer == {"thing_id": "t1", "limit": 3, "deep": True, "name": None}
    defaults = await call(handlers["get_thing"], get, {"thing_id": "t1"}, {"unknown": "x"}, {})
    assert defaults == {"thing_id": "t1", "limit": 10, "deep": False, "name": None}
    assert await call(handlers["put_thing"], put, {"thing_id": "t2"}, {}, {"a": 1}) == {
        "thing_id": "t2",
        "body": {"a": 1},
    }
    assert await call(handlers["put_thing"], put, {"thing_id": "t2"}, {}, {"gone": True}) is None
    for query, message in (({"limit": "x"}, "limit must be an integer"), ({"limit": ""}, "limit must be an integer")):
        with pytest.raises(NeonAPIError, match=message):
            await call(handlers["get_thing"], get, {"thing_id": "t1"}, query, {})
    for query in ({}, {"db_name": ""}):
        with pytest.raises(NeonAPIError, match="query parameter db_name is required") as info:
            await call(handlers["list_shared_things"], shared, {}, query, {})
        assert info.value.status == 400


def test_literal_paths_come_before_parameters_and_names_are_unique() -> None:
    assert routes_of([_Part])[0].path == "/things/shared"

    class Twice:
        @route("same", "GET", "/a")
        async def a(self) -> Any: ...

        @route("same", "GET", "/b")
        async def b(self) -> Any: ...

    with pytest.raises(RuntimeError, match="unique"):
        routes_of([Twice])


def test_a_handler_a_request_cannot_fill_is_refused_when_the_parts_are_bound() -> None:
    class Odd:
        @route("odd", "GET", "/odd")
        async def odd(self, ratio: float = 1.0) -> Any: ...

    with pytest.raises(TypeError, match="str, int or bool"):
        handlers_of([Odd()])
