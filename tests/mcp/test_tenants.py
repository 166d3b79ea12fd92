"""Tenants: one set of Services per Neon API key, picked from the request's headers; idle ones closed, a bounded number
open, calls in flight counted; keys never in logs. (End to end over HTTP: tests/transport/test_http.py.)"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import anyio
import pytest

from server.errors import InvalidInput
from server.mcp.tenants import KEY_HEADER, Tenants, tenant_id
from server.root import NeonServices
from server.settings import Settings

pytestmark = pytest.mark.anyio

HOST = "http://127.0.0.1:1/api/v2"  # nothing is contacted


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _settings(tmp_path: Path, **values: Any) -> Settings:
    return Settings(neon_api_host=HOST, neon_key_from_header=True, home=tmp_path / "home", **values)


def _key(name: str) -> dict[str, str]:
    return {KEY_HEADER: f"napi_{name}_0123456789"}


async def test_each_key_has_its_own_services_and_data_directory(tmp_path: Path) -> None:
    async with Tenants(_settings(tmp_path)) as tenants:
        a, b = tenants.resolve(_key("a")), tenants.resolve(_key("b"))
        assert tenants.resolve(_key("a")) is a and tenants.resolve({KEY_HEADER: " napi_a_0123456789 "}) is a
        assert a is not b and a.pending is not b.pending
        assert isinstance(a, NeonServices) and isinstance(b, NeonServices)
        assert a.neon is not b.neon
        assert a.settings.home == tmp_path / "home" / "tenants" / tenant_id("napi_a_0123456789")
        assert a.settings.neon_api_key is not None and a.settings.neon_api_key.get_secret_value() == "napi_a_0123456789"
        assert b.settings.audit_log_path != a.settings.audit_log_path
        neon_a = a.neon
    assert neon_a._http.is_closed, "leaving Tenants closes every tenant"


async def test_the_servers_own_key_is_used_without_a_header_and_is_the_same_tenant_with_one(tmp_path: Path) -> None:
    async with Tenants(_settings(tmp_path, neon_api_key="napi_own_0123456789")) as tenants:
        own = tenants.resolve(None)
        assert tenants.resolve({}) is own
        assert tenants.resolve({KEY_HEADER: "napi_own_0123456789"}) is own
        assert own.settings.home == tmp_path / "home", "the server's own key keeps the server's data directory"
        assert tenants.resolve(_key("other")) is not own


async def test_requests_without_a_usable_key_are_refused_clearly(tmp_path: Path) -> None:
    async with Tenants(_settings(tmp_path)) as tenants:
        with pytest.raises(InvalidInput, match=f"send yours in the {KEY_HEADER} header"):
            tenants.resolve({})
        with pytest.raises(InvalidInput, match="header is empty"):
            tenants.resolve({KEY_HEADER: "  "})
    plain = Settings(database_url="postgresql://u@127.0.0.1:1/db", home=tmp_path)
    async with Tenants(plain) as tenants:
        assert tenants.resolve(None) is tenants.resolve({})
        with pytest.raises(InvalidInput, match="does not take Neon API keys from requests"):
            tenants.resolve(_key("a"))


async def test_idle_tenants_are_closed_and_busy_ones_kept(tmp_path: Path) -> None:
    clock = Clock()
    async with Tenants(_settings(tmp_path), idle_seconds=600, clock=clock) as tenants:
        idle, busy = tenants.resolve(_key("idle")), tenants.resolve(_key("busy"))
        idle_neon = idle.neon
        with tenants.calling(_key("busy")):
            clock.now += 601
            assert tenants.sweep() == 1
            assert tenants.resolve(_key("busy")) is busy
        await anyio.sleep(0.05)  # the closing runs in the background
        assert idle_neon._http.is_closed
        assert tenants.resolve(_key("idle")) is not idle, "a key seen again gets fresh services"


async def test_at_most_max_tenants_are_open(tmp_path: Path) -> None:
    clock = Clock()
    async with Tenants(_settings(tmp_path), max_tenants=2, clock=clock) as tenants:
        first_neon = tenants.resolve(_key("first")).neon
        clock.now += 1
        second = tenants.resolve(_key("second"))
        clock.now += 1
        tenants.resolve(_key("third"))  # the least recently used idle tenant makes room
        await anyio.sleep(0.05)
        assert first_neon._http.is_closed
        assert tenants.resolve(_key("second")) is second
        with (
            tenants.calling(_key("second")),
            tenants.calling(_key("third")),
            pytest.raises(InvalidInput, match="at most 2 Neon API keys at once"),
        ):
            tenants.resolve(_key("fourth"))


async def test_calls_in_flight_are_counted_until_they_end(tmp_path: Path) -> None:
    async with Tenants(_settings(tmp_path)) as tenants:
        await tenants.wait_for_calls()  # none: returns at once
        done: list[str] = []

        async def call(name: str, seconds: float) -> None:
            with tenants.calling(_key(name)):
                await anyio.sleep(seconds)
            done.append(name)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(call, "a", 0.2)
            tasks.start_soon(call, "b", 0.3)
            await anyio.sleep(0.05)
            assert tenants.calls_in_flight == 2
            await tenants.wait_for_calls()
            assert sorted(done) == ["a", "b"] and tenants.calls_in_flight == 0


async def test_keys_never_reach_the_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with Tenants(_settings(tmp_path), idle_seconds=0) as tenants:
        tenants.resolve(_key("secret"))
        tenants.sweep()
    assert f"tenant {tenant_id('napi_secret_0123456789')}: opened" in caplog.text
    assert "napi_secret" not in caplog.text
