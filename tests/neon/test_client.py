"""The Neon API client at its seam: an ``httpx2.MockTransport`` plays Neon, a fake clock and sleep play time.

Contract tests against local Neon over real HTTP live with local Neon; these pin retries, pacing, error mapping,
pagination, operation polling, the limiter and secrecy of the API key.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx2
import pytest

from server.errors import NeonAPIFailure, NeonMCPError, NeonUnreachable, OperationFailed, OperationTimeout
from server.neon.client import NeonClient
from server.neon.models import Branch, Role
from server.neon.rate_limit import RateLimiter, parse_retry_after, route_of
from server.settings import Settings

pytestmark = pytest.mark.anyio

KEY = "napi_s3cr3t-k3y-0123456789"
BASE = "https://neon.test/api/v2"
Handler = Callable[[httpx2.Request], httpx2.Response]


class FakeTime:
    """A clock that only moves when something sleeps; every sleep is recorded."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def make_client(fake_time: FakeTime) -> Callable[..., NeonClient]:
    def make(handler: Handler, **options: Any) -> NeonClient:
        return NeonClient(
            KEY,
            base_url=BASE,
            transport=httpx2.MockTransport(handler),
            clock=fake_time.clock,
            sleep=fake_time.sleep,
            **options,
        )

    return make


def error(
    status: int, message: str = "nope", code: str = "", request_id: str = "req-1", **headers: str
) -> httpx2.Response:
    body = {"code": code, "message": message, "request_id": request_id}
    return httpx2.Response(status, json=body, headers=headers)


def scripted(*answers: httpx2.Response | Exception) -> tuple[Handler, list[httpx2.Request]]:
    """A handler answering each request with the next scripted answer (the last one repeats); requests are kept."""
    seen: list[httpx2.Request] = []

    def handle(request: httpx2.Request) -> httpx2.Response:
        answer = answers[min(len(seen), len(answers) - 1)]
        seen.append(request)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return handle, seen


OK = httpx2.Response(200, json={"project": {"id": "p-1", "name": "one"}})


# --- requests and retries --------------------------------------------------------------------------------------------


async def test_requests_carry_auth_and_join_the_base_url(make_client: Callable[..., NeonClient]) -> None:
    handler, seen = scripted(OK)
    async with make_client(handler) as client:
        project = await client.get_project("p-1")
    assert project.id == "p-1" and project.name == "one"
    request = seen[0]
    assert str(request.url) == f"{BASE}/projects/p-1"
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["User-Agent"].startswith("neon-mcp/")
    assert client.request_count == 1


@pytest.mark.parametrize("method", ["GET", "POST", "PATCH", "DELETE"])
@pytest.mark.parametrize("status", [423, 429, 503])
async def test_locked_throttled_and_unavailable_are_retried_for_every_method(
    make_client: Callable[..., NeonClient], fake_time: FakeTime, status: int, method: str
) -> None:
    handler, seen = scripted(error(status), error(status), OK)
    async with make_client(handler) as client:
        body = await client.request(method, "/projects/p-1")
    assert body["project"]["id"] == "p-1"
    assert client.request_count == len(seen) == 3
    first, second = fake_time.sleeps
    assert 0.25 <= first <= 0.5 and 0.5 <= second <= 1.0


async def test_retry_after_seconds_is_honoured(make_client: Callable[..., NeonClient], fake_time: FakeTime) -> None:
    handler, _ = scripted(error(429, **{"Retry-After": "7"}), error(503, **{"Retry-After": "0"}), OK)
    async with make_client(handler) as client:
        await client.get("/projects/p-1")
    assert fake_time.sleeps == [7.0, 0.0]


async def test_retry_after_http_date_is_honoured(make_client: Callable[..., NeonClient], fake_time: FakeTime) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=5), usegmt=True)
    handler, _ = scripted(error(429, **{"Retry-After": when}), OK)
    async with make_client(handler) as client:
        await client.get("/projects/p-1")
    [waited] = fake_time.sleeps
    assert 3.5 <= waited <= 5.0


async def test_a_retry_after_beyond_a_minute_is_reported_not_waited(
    make_client: Callable[..., NeonClient], fake_time: FakeTime
) -> None:
    handler, _ = scripted(error(429, "slow down", **{"Retry-After": "3600"}), OK)
    async with make_client(handler) as client:
        with pytest.raises(NeonAPIFailure, match="slow down") as caught:
            await client.get("/projects/p-1")
    assert caught.value.status == 429
    assert fake_time.sleeps == [] and client.request_count == 1


async def test_gateway_errors_are_retried_for_get_only(make_client: Callable[..., NeonClient]) -> None:
    handler, _ = scripted(error(502), OK)
    async with make_client(handler) as client:
        await client.get("/projects/p-1")
        assert client.request_count == 2
    handler, _ = scripted(error(502), OK)
    async with make_client(handler) as client:
        with pytest.raises(NeonAPIFailure) as caught:
            await client.post("/projects/p-1/branches", json={})
    assert caught.value.status == 502 and client.request_count == 1


async def test_other_errors_are_not_retried(make_client: Callable[..., NeonClient], fake_time: FakeTime) -> None:
    handler, _ = scripted(error(500, "boom"), OK)
    async with make_client(handler) as client:
        with pytest.raises(NeonAPIFailure, match="boom"):
            await client.get("/projects/p-1")
    assert client.request_count == 1 and fake_time.sleeps == []


async def test_give_up_after_max_retries_with_the_last_error(
    make_client: Callable[..., NeonClient], fake_time: FakeTime
) -> None:
    handler, _ = scripted(error(503, "first"), error(423, "locked", code="LOCKED", request_id="req-last"))
    async with make_client(handler, max_retries=3) as client:
        with pytest.raises(NeonAPIFailure) as caught:
            await client.get("/projects/p-1/branches")
    failure = caught.value
    assert (failure.status, failure.code, failure.request_id, failure.attempts) == (423, "LOCKED", "req-last", 4)
    assert "after 4 attempts" in str(failure)
    assert client.request_count == 4 and len(fake_time.sleeps) == 3


async def test_network_error_on_get_is_retried(make_client: Callable[..., NeonClient]) -> None:
    handler, _ = scripted(httpx2.ReadError("connection reset"), httpx2.ReadTimeout("slow"), OK)
    async with make_client(handler) as client:
        body = await client.get("/projects/p-1")
    assert body["project"]["id"] == "p-1" and client.request_count == 3


async def test_network_error_on_post_is_not_retried(make_client: Callable[..., NeonClient]) -> None:
    handler, _ = scripted(httpx2.ReadError("connection reset"), OK)
    async with make_client(handler) as client:
        with pytest.raises(NeonUnreachable, match="connection broke") as caught:
            await client.post("/projects/p-1/branches", json={"branch": {"name": "dev"}})
    assert isinstance(caught.value.__cause__, httpx2.ReadError)
    assert caught.value.status is None and client.request_count == 1


async def test_post_is_retried_when_the_connection_was_never_made(make_client: Callable[..., NeonClient]) -> None:
    handler, _ = scripted(httpx2.ConnectError("refused"), OK)
    async with make_client(handler) as client:
        await client.post("/projects/p-1/branches", json={})
    assert client.request_count == 2


async def test_timeouts_give_up_with_a_clear_error(make_client: Callable[..., NeonClient]) -> None:
    handler, _ = scripted(httpx2.ReadTimeout("timed out"))
    async with make_client(handler, max_retries=2) as client:
        with pytest.raises(NeonUnreachable) as caught:
            await client.get("/projects")
    assert str(caught.value).startswith("Neon API on GET /projects: timed out (ReadTimeout")
    assert "after 3 attempts" in str(caught.value)
    assert isinstance(caught.value.__cause__, httpx2.ReadTimeout)


# --- error mapping ---------------------------------------------------------------------------------------------------


async def test_errors_carry_neons_code_message_and_request_id(make_client: Callable[..., NeonClient]) -> None:
    handler, _ = scripted(error(404, "branch not found", code="NOT_FOUND", request_id="req-42"))
    async with make_client(handler) as client:
        with pytest.raises(NeonAPIFailure) as caught:
            await client.get_branch("x", "y")
    failure = caught.value
    assert isinstance(failure, NeonMCPError)
    assert (failure.status, failure.code, failure.message, failure.request_id) == (
        404,
        "NOT_FOUND",
        "branch not found",
        "req-42",
    )
    assert (
        str(failure)
        == "Neon API 404 on GET /projects/x/branches/y: branch not found (code NOT_FOUND, request_id req-42)"
    )


async def test_request_id_from_the_header_and_text_bodies(make_client: Callable[..., NeonClient]) -> None:
    page = httpx2.Response(500, text="<html>upstream exploded</html>", headers={"X-Neon-Ret-Request-Id": "req-h"})
    handler, _ = scripted(page)
    async with make_client(handler) as client:
        with pytest.raises(NeonAPIFailure) as caught:
            await client.get("/projects")
    assert caught.value.request_id == "req-h" and caught.value.code is None
    assert "upstream exploded" in str(caught.value)


async def test_unauthorized_points_at_the_key_setting(make_client: Callable[..., NeonClient]) -> None:
    handler, _ = scripted(error(401, "authentication required"))
    async with make_client(handler) as client:
        with pytest.raises(NeonAPIFailure, match="check NEON_API_KEY"):
            await client.list_projects()


async def test_empty_answers_are_empty_objects(make_client: Callable[..., NeonClient]) -> None:
    handler, _ = scripted(httpx2.Response(204))
    async with make_client(handler) as client:
        assert await client.delete_branch("p-1", "br-gone") == []


# --- pagination ------------------------------------------------------------------------------------------------------


def paged(items: list[dict[str, Any]], key: str, cursor_field: str = "next") -> tuple[Handler, list[httpx2.Request]]:
    """Serves ``items`` in pages of ``limit``; the cursor is the index of the next item."""
    seen: list[httpx2.Request] = []

    def handle(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        limit = int(request.url.params["limit"])
        start = int(request.url.params.get("cursor", "0"))
        page = items[start : start + limit]
        return httpx2.Response(200, json={key: page, "pagination": {cursor_field: str(start + limit)}})

    return handle, seen


@pytest.mark.parametrize("cursor_field", ["next", "cursor"])
async def test_pagination_follows_the_cursor_across_three_pages(
    make_client: Callable[..., NeonClient], cursor_field: str
) -> None:
    branches = [{"id": f"br-{n}", "project_id": "p-1", "name": f"b{n}"} for n in range(5)]
    handler, seen = paged(branches, "branches", cursor_field)
    async with make_client(handler) as client:
        listed = await client.paginate("/projects/p-1/branches", "branches", params={"search": "b"}, limit=2)
    assert listed == branches
    assert [request.url.params.get("cursor") for request in seen] == [None, "2", "4"]
    assert all(request.url.params["search"] == "b" for request in seen)


async def test_pagination_stops_on_an_empty_page_or_a_repeated_cursor(make_client: Callable[..., NeonClient]) -> None:
    handler, seen = paged([{"id": "a"}, {"id": "b"}], "projects", "cursor")
    async with make_client(handler) as client:
        assert len(await client.paginate("/projects", "projects", limit=2)) == 2
    assert len(seen) == 2  # the second page is empty

    stuck = httpx2.Response(200, json={"projects": [{"id": "a"}], "pagination": {"cursor": "same"}})
    handler, seen = scripted(stuck)
    async with make_client(handler) as client:
        assert len(await client.paginate("/projects", "projects", limit=1)) == 2
    assert len(seen) == 2


async def test_typed_lists_drop_items_repeated_across_pages(make_client: Callable[..., NeonClient]) -> None:
    branch = {"id": "br-1", "project_id": "p-1", "name": "main", "default": True, "annotation": {"new": "field"}}
    pages = [
        httpx2.Response(200, json={"branches": [branch], "pagination": {"next": "c1"}}),
        httpx2.Response(200, json={"branches": [branch], "pagination": {"next": "c2"}}),
        httpx2.Response(200, json={"branches": [], "pagination": {}}),
    ]
    handler, _ = scripted(*pages)
    async with make_client(handler) as client:
        client_branches = await client.paginate("/projects/p-1/branches", "branches", limit=1)
    assert len(client_branches) == 2
    handler, _ = scripted(*pages)
    async with make_client(handler) as client:
        [only] = await client.list_branches("p-1")
    assert isinstance(only, Branch) and only.default and only.model_extra == {"annotation": {"new": "field"}}


async def test_projects_of_every_organisation_when_neon_asks_for_an_org_id(
    make_client: Callable[..., NeonClient],
) -> None:
    """A personal key of a member of several organisations: Neon answers 400 "org_id is required" (the message
    neonctl looks for); then the organisations are listed and each one's projects asked for."""
    seen: list[httpx2.Request] = []

    def handle(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        if request.url.path.endswith("/users/me/organizations"):
            orgs = [{"id": f"org-{n}", "name": f"team {n}"} for n in (1, 2)]
            return httpx2.Response(200, json={"organizations": orgs})
        org = request.url.params.get("org_id")
        if org is None:
            return error(400, "org_id is required, you can find it on your organization settings page")
        return httpx2.Response(200, json={"projects": [{"id": f"p-{org}", "name": "shop", "org_id": org}]})

    async with make_client(handle) as client:
        found = await client.list_account_projects(search="sh")
    assert [p.id for p in found] == ["p-org-1", "p-org-2"]
    assert [r.url.params.get("org_id") for r in seen] == [None, None, "org-1", "org-2"]
    assert all(r.url.params.get("search") == "sh" for r in seen if "projects" in r.url.path)


async def test_other_refusals_of_a_project_listing_are_not_taken_for_a_missing_org_id(
    make_client: Callable[..., NeonClient],
) -> None:
    handler, seen = scripted(error(400, "limit must be from 1 to 400"))
    async with make_client(handler) as client:
        with pytest.raises(NeonAPIFailure, match="limit must be"):
            await client.list_account_projects()
    assert len(seen) == 1


# --- operations ------------------------------------------------------------------------------------------------------


def operation(
    op_id: str, status: str, action: str = "create_timeline", error_text: str | None = None
) -> dict[str, Any]:
    op: dict[str, Any] = {"id": op_id, "project_id": "p-1", "action": action, "status": status}
    if error_text:
        op["error"] = error_text
    return op


def operations_served(script: dict[str, list[dict[str, Any]]]) -> tuple[Handler, list[str]]:
    """Each GET of an operation answers its next scripted state (the last one repeats)."""
    polled: list[str] = []

    def handle(request: httpx2.Request) -> httpx2.Response:
        op_id = request.url.path.rsplit("/", 1)[-1]
        states = script[op_id]
        state = states[min(polled.count(op_id), len(states) - 1)]
        polled.append(op_id)
        return httpx2.Response(200, json={"operation": state})

    return handle, polled


async def test_wait_for_operations_polls_until_finished_and_reports_progress(
    make_client: Callable[..., NeonClient], fake_time: FakeTime
) -> None:
    handler, polled = operations_served(
        {
            "op-1": [operation("op-1", "running"), operation("op-1", "finished")],
            "op-2": [
                operation("op-2", "scheduling", "start_compute"),
                operation("op-2", "running", "start_compute"),
                operation("op-2", "finished", "start_compute"),
            ],
        }
    )
    reports: list[tuple[float, float | None, str]] = []

    async def progress(done: float, total: float | None, message: str) -> None:
        reports.append((done, total, message))

    started = [operation("op-1", "scheduling"), operation("op-2", "scheduling", "start_compute")]
    async with make_client(handler) as client:
        final = await client.wait_for_operations("p-1", started, progress=progress)
    assert [op.status for op in final] == ["finished", "finished"]
    assert polled == ["op-1", "op-2", "op-1", "op-2", "op-2"]
    assert fake_time.sleeps == [0.25, 0.5, 1.0]
    assert [(done, total) for done, total, _ in reports] == [(0, 2), (0, 2), (1, 2), (2, 2)]
    assert reports[2][2] == "create_timeline finished, start_compute running"


async def test_finished_and_skipped_operations_need_no_polling(make_client: Callable[..., NeonClient]) -> None:
    handler, polled = operations_served({})
    async with make_client(handler) as client:
        done = await client.wait_for_operations("p-1", [operation("a", "finished"), operation("b", "skipped")])
    assert len(done) == 2 and polled == [] and client.request_count == 0


@pytest.mark.parametrize("status", ["failed", "error", "cancelled"])
async def test_a_failed_operation_raises_with_its_error_text(
    make_client: Callable[..., NeonClient], status: str
) -> None:
    handler, _ = operations_served(
        {"op-1": [operation("op-1", "running", "start_compute"), operation("op-1", status, "start_compute", "no room")]}
    )
    async with make_client(handler) as client:
        with pytest.raises(OperationFailed) as caught:
            await client.wait_for_operations("p-1", [operation("op-1", "scheduling", "start_compute")])
    failure = caught.value
    assert (failure.operation_id, failure.action, failure.status, failure.error) == (
        "op-1",
        "start_compute",
        status,
        "no room",
    )
    assert str(failure) == f"Neon operation start_compute (op-1) {status}: no room"


async def test_waiting_for_operations_times_out_clearly(
    make_client: Callable[..., NeonClient], fake_time: FakeTime
) -> None:
    handler, _ = operations_served({"op-1": [operation("op-1", "running")]})
    async with make_client(handler) as client:
        with pytest.raises(OperationTimeout) as caught:
            await client.wait_for_operations("p-1", [operation("op-1", "running")], timeout=5.0)
    assert fake_time.now == pytest.approx(5.0)
    assert "create_timeline (op-1) did not finish within 5 s (still running)" in str(caught.value)


# --- the limiter -----------------------------------------------------------------------------------------------------


def most_in_any_window(times: list[float], seconds: float) -> int:
    """The largest number of ``times`` inside one half-open window ``[t, t + seconds)``."""
    ordered = sorted(times)
    return max(sum(1 for u in ordered if t <= u < t + seconds) for t in ordered)


def stamping(fake_time: FakeTime) -> tuple[Handler, list[float]]:
    times: list[float] = []

    def handle(request: httpx2.Request) -> httpx2.Response:
        times.append(fake_time.now)
        return httpx2.Response(200, json={})

    return handle, times


async def test_a_burst_on_one_route_keeps_to_40_a_second(
    make_client: Callable[..., NeonClient], fake_time: FakeTime
) -> None:
    handler, times = stamping(fake_time)
    async with make_client(handler) as client:
        await asyncio.gather(*(client.get("/projects/p-1/branches") for _ in range(100)))
    assert len(times) == 100
    assert most_in_any_window(times, 1.0) == 40
    assert max(times) == pytest.approx(2.0)  # 40 at once, 40 a second later, the rest after that


async def test_many_routes_keep_to_700_a_minute(make_client: Callable[..., NeonClient], fake_time: FakeTime) -> None:
    handler, times = stamping(fake_time)
    async with make_client(handler) as client:
        await asyncio.gather(*(client.get(f"/projects/p-1/x{n % 100}") for n in range(800)))
    assert len(times) == 800
    assert most_in_any_window(times, 60.0) == 700
    assert sorted(times)[700] == pytest.approx(60.0)


async def test_the_limiter_is_fair_and_routes_do_not_block_each_other(fake_time: FakeTime) -> None:
    limiter = RateLimiter(per_minute=1000, per_route_per_second=10, clock=fake_time.clock, sleep=fake_time.sleep)
    admitted: list[tuple[str, int, float]] = []

    async def one(route: str, n: int) -> None:
        await limiter.acquire(route)
        admitted.append((route, n, fake_time.now))

    await asyncio.gather(*(one("GET /a", n) for n in range(30)), one("GET /b", 0))
    assert [n for route, n, _ in admitted if route == "GET /a"] == list(range(30))
    order = [(route, n) for route, n, _ in admitted]
    assert order.index(("GET /b", 0)) < order.index(("GET /a", 10))  # not queued behind route a's burst


@pytest.mark.parametrize(
    ("method", "path", "route"),
    [
        ("get", "/projects", "GET /projects"),
        ("GET", "/projects/shiny-wind-028834/branches", "GET /projects/{id}/branches"),
        ("POST", "/projects/p/branches/br-x/restore", "POST /projects/{id}/branches/{id}/restore"),
        (
            "GET",
            "/projects/p/branches/br-x/roles/my%20role/reveal_password",
            "GET /projects/{id}/branches/{id}/roles/{id}/reveal_password",
        ),
        ("GET", "/projects/p/operations/a07f8772-1877-4da9-a939-3a3ae62d1d8d", "GET /projects/{id}/operations/{id}"),
        ("GET", "/projects/p/connection_uri?branch_id=br-1", "GET /projects/{id}/connection_uri"),
    ],
)
def test_routes_replace_ids(method: str, path: str, route: str) -> None:
    assert route_of(method, path) == route


@pytest.mark.parametrize(
    ("header", "expected"),
    [(None, None), ("", None), ("3", 3.0), ("1.5", 1.5), ("-4", 0.0), ("soon", None)],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


def test_parse_retry_after_dates() -> None:
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Wed, 01 Jan 2025 12:00:09 GMT", now=lambda: now) == 9.0
    assert parse_retry_after("Wed, 01 Jan 2025 11:00:00 GMT", now=lambda: now) == 0.0


# --- typed helpers ---------------------------------------------------------------------------------------------------


async def test_create_branch_sends_neons_body_and_returns_what_to_wait_for(
    make_client: Callable[..., NeonClient],
) -> None:
    answer = {
        "branch": {"id": "br-new", "project_id": "p-1", "name": "dev", "parent_id": "br-main"},
        "endpoints": [
            {
                "id": "ep-1",
                "project_id": "p-1",
                "branch_id": "br-new",
                "host": "ep-1.local",
                "type": "read_write",
                "current_state": "init",
            }
        ],
        "operations": [operation("op-1", "running"), operation("op-2", "scheduling", "start_compute")],
        "roles": [{"branch_id": "br-new", "name": "owner", "password": "hunter2"}],
        "connection_uris": [{"connection_uri": "postgresql://owner:hunter2@ep-1.local/neondb"}],
    }
    handler, seen = scripted(httpx2.Response(201, json=answer))
    async with make_client(handler) as client:
        created = await client.create_branch(
            "p-1", name="dev", parent_id="br-main", parent_timestamp=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
        )
    branch, endpoints, operations = created
    assert (branch.id, endpoints[0].id, [op.id for op in operations]) == ("br-new", "ep-1", ["op-1", "op-2"])
    assert "hunter2" not in repr(created)
    sent = json.loads(seen[0].content)
    assert sent == {
        "branch": {"name": "dev", "parent_id": "br-main", "parent_timestamp": "2025-01-02T03:04:05Z"},
        "endpoints": [{"type": "read_write"}],
    }


async def test_connection_uri_and_password_come_back_secret(make_client: Callable[..., NeonClient]) -> None:
    handler, seen = scripted(
        httpx2.Response(200, json={"uri": "postgresql://owner:pw@ep-1-pooler.local/neondb"}),
        httpx2.Response(200, json={"password": "pw"}),
    )
    async with make_client(handler) as client:
        uri = await client.connection_uri("p-1", "br-1", "neondb", "owner")
        password = await client.reveal_password("p-1", "br-1", "my role/x")
    assert uri.get_secret_value().endswith("-pooler.local/neondb") and "pw" not in repr(uri)
    assert password.get_secret_value() == "pw"
    assert dict(seen[0].url.params) == {
        "branch_id": "br-1",
        "database_name": "neondb",
        "role_name": "owner",
        "pooled": "true",
    }
    assert seen[1].url.raw_path == b"/api/v2/projects/p-1/branches/br-1/roles/my%20role%2Fx/reveal_password"


def test_roles_never_keep_a_password() -> None:
    role = Role.model_validate({"branch_id": "br-1", "name": "owner", "password": "hunter2", "protected": True})
    assert role.protected and "hunter2" not in repr(role) and "hunter2" not in role.model_dump_json()


# --- the API key stays secret ----------------------------------------------------------------------------------------


async def test_the_api_key_never_appears_in_errors_reprs_or_logs(
    make_client: Callable[..., NeonClient], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    failures: list[BaseException] = []
    cases = [
        scripted(error(429), error(401, f"bad key {KEY}")),
        scripted(httpx2.ConnectError(f"could not send Authorization: Bearer {KEY}")),
        scripted(httpx2.ReadTimeout("timed out")),
    ]
    for handler, _ in cases:
        client = make_client(handler, max_retries=2)
        async with client:
            with pytest.raises(NeonAPIFailure) as caught:
                await client.get("/projects")
        failures.append(caught.value)
        assert KEY not in repr(client) and KEY not in str(client) and KEY not in repr(vars(client))
    for failure in failures:
        for text in (str(failure), repr(failure), str(failure.args)):
            assert KEY not in text
    assert caplog.records, "retries are logged"
    for record in caplog.records:
        assert KEY not in record.getMessage()


def test_the_api_key_setting_is_secret_and_read_from_neons_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEON_API_KEY", KEY)
    monkeypatch.setenv("NEON_API_HOST", "http://127.0.0.1:9/api/v2")
    settings = Settings()
    assert settings.neon_api_key is not None and settings.neon_api_key.get_secret_value() == KEY
    assert settings.neon_api_host == "http://127.0.0.1:9/api/v2"
    assert KEY not in repr(settings)


def test_a_client_needs_a_key_and_an_http_url() -> None:
    with pytest.raises(NeonMCPError, match="NEON_API_KEY"):
        NeonClient("")
    with pytest.raises(NeonMCPError, match="http"):
        NeonClient(KEY, base_url="console.neon.tech/api/v2")
