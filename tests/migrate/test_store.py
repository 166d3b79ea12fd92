"""Migration plans: both stores (files, the state database) keep the same promises — the script as tested, applied
once, refused when applied, discarded, expired, changed or held by another call — and the table keeps them across
processes: a claim is a row lock that two replicas cannot both get, that the database releases when its holder dies,
and expiry is the database's clock."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import pytest

from server.errors import ConfirmationError, StateUnavailable
from server.migrate.store import MigrationPlan, MigrationStore, PlanFiles, PlanTable, checksum
from server.state.database import StateDatabase

pytestmark = pytest.mark.anyio

SQL = "ALTER TABLE t ADD COLUMN c int;"


def _plan(store: MigrationStore, *, expires_in: float = 3600) -> MigrationPlan:
    now = datetime.now(UTC)
    return MigrationPlan(
        id=store.new_id(), sql=SQL, checksum=checksum(SQL), version="1", description="add c", project_id="p",
        branch_id="br", branch_name="production", database="neondb", role="owner", protected_because=None,
        destructive=False, schema_fingerprint="fp", plan_branch_id="br-plan", plan_branch_name="migrate/1",
        created_at=now, expires_at=now + timedelta(seconds=expires_in),
    )  # fmt: skip


class Stores:
    """Opens stores of one kind; ``tamper`` changes a stored plan's script behind the store's back."""

    def __init__(self, kind: str, tmp_path: Path, state_url: str) -> None:
        self.kind = kind
        self.tmp_path = tmp_path
        self.state_url = state_url
        self.opened: list[StateDatabase] = []

    async def open(self, tenant: str = "tenant-a") -> MigrationStore:
        if self.kind == "files":
            return PlanFiles(self.tmp_path / tenant / "migrations")
        database = StateDatabase(self.state_url, pool_size=2)
        await database.open()
        self.opened.append(database)
        return PlanTable(database, tenant=tenant, replica=f"replica-{len(self.opened)}")

    async def tamper(self, plan_id: str) -> None:
        if self.kind == "files":
            path = self.tmp_path / "tenant-a" / "migrations" / f"{plan_id}.json"
            data = json.loads(path.read_text())
            path.write_text(json.dumps({**data, "sql": "DROP TABLE t;"}))
            return
        conn = await asyncpg.connect(self.state_url)
        try:
            await conn.execute(
                "UPDATE neon_mcp_state.migration_plans SET plan = jsonb_set(plan, '{sql}', '\"DROP TABLE t;\"') "
                "WHERE id = $1",
                plan_id,
            )
        finally:
            await conn.close()


@pytest.fixture(params=["files", "table"])
async def stores(request: pytest.FixtureRequest, tmp_path: Path, state_url: str) -> AsyncIterator[Stores]:
    made = Stores(request.param, tmp_path, state_url)
    yield made
    for database in made.opened:
        await database.close()


async def test_a_plan_is_kept_as_tested_and_applied_once(stores: Stores) -> None:
    store = await stores.open()
    plan = _plan(store)
    await store.save(plan)
    assert (await store.load(plan.id)).sql == SQL and (await store.applicable(f" {plan.id} ")).id == plan.id
    async with store.claim(plan.id) as claim:
        assert claim.plan.sql == SQL and claim.plan.state == "planned"
        await claim.finish("applied")
    applied = await store.load(plan.id)
    assert applied.state == "applied" and applied.finished_at is not None
    for attempt in (store.applicable(plan.id), _claim(store, plan.id)):
        with pytest.raises(ConfirmationError, match=r"was already applied .* it cannot run again"):
            await attempt


async def _claim(store: MigrationStore, plan_id: str) -> None:
    async with store.claim(plan_id):
        pass


async def test_a_failed_apply_leaves_the_plan_planned(stores: Stores) -> None:
    store = await stores.open()
    plan = _plan(store)
    await store.save(plan)
    with pytest.raises(RuntimeError, match="the migration failed"):
        async with store.claim(plan.id) as claim:
            await claim.finish("applied")
            raise RuntimeError("the migration failed")
    assert (await store.applicable(plan.id)).state == "planned"


async def test_a_plan_held_by_one_call_is_refused_to_another(stores: Stores) -> None:
    first, second = await stores.open(), await stores.open()  # with the table: two replicas
    plan = _plan(first)
    await first.save(plan)
    async with first.claim(plan.id) as claim:
        other = first if stores.kind == "files" else second  # files are one process's: its own claims
        with pytest.raises(ConfirmationError, match=r"is being applied .* by another call right now; it runs once"):
            await _claim(other, plan.id)
        await claim.finish("applied")
    with pytest.raises(ConfirmationError, match="already applied"):
        await _claim(second if stores.kind == "table" else first, plan.id)


async def test_discarded_expired_changed_and_unknown_plans_are_refused(stores: Stores) -> None:
    store = await stores.open()
    discarded, expired, changed = _plan(store), _plan(store, expires_in=-1), _plan(store)
    for plan in (discarded, expired, changed):
        await store.save(plan)
    async with store.claim(discarded.id) as claim:
        await claim.finish("discarded")
    await stores.tamper(changed.id)
    cases: list[tuple[Callable[[], Awaitable[Any]], str]] = [
        (lambda: store.applicable(discarded.id), "was discarded; plan it again"),
        (lambda: store.applicable(expired.id), "expired at .* with its plan branch"),
        (lambda: _claim(store, expired.id), "expired at"),
        (lambda: store.load(changed.id), "does not match its checksum: it was changed after it was planned"),
        (lambda: _claim(store, changed.id), "does not match its checksum"),
        (lambda: store.load("mig_unknown"), "unknown migration id 'mig_unknown'"),
    ]
    for attempt, message in cases:
        with pytest.raises(ConfirmationError, match=message):
            await attempt()


async def test_purge_forgets_expired_plans_and_returns_them(stores: Stores) -> None:
    store = await stores.open()
    kept, expired = _plan(store), _plan(store, expires_in=-1)
    await store.save(kept)
    await store.save(expired)
    assert [plan.id for plan in await store.purge()] == [expired.id]
    assert await store.purge() == []
    assert (await store.load(kept.id)).state == "planned"
    with pytest.raises(ConfirmationError, match="unknown migration id"):
        await store.load(expired.id)


async def test_a_tenant_never_sees_another_tenants_plans(stores: Stores) -> None:
    mine, theirs = await stores.open("tenant-a"), await stores.open("tenant-b")
    plan = _plan(mine)
    await mine.save(plan)
    with pytest.raises(ConfirmationError, match="unknown migration id"):
        await theirs.load(plan.id)
    with pytest.raises(ConfirmationError, match="unknown migration id"):
        await _claim(theirs, plan.id)


# --- the table only --------------------------------------------------------------------------------------------------


@pytest.fixture
async def table(state_url: str) -> AsyncIterator[PlanTable]:
    database = StateDatabase(state_url)
    await database.open()
    yield PlanTable(database, tenant="t", replica="r")
    await database.close()


async def test_two_replicas_racing_on_one_plan_apply_it_once(state_url: str, table: PlanTable) -> None:
    replicas = [StateDatabase(state_url, pool_size=1) for _ in range(3)]
    for replica in replicas:
        await replica.open()
    plan = _plan(table)
    await table.save(plan)
    outcomes: list[str] = []

    async def apply(store: PlanTable) -> None:
        try:
            async with store.claim(plan.id) as claim:
                await anyio.sleep(0.3)  # the migration runs
                await claim.finish("applied")
            outcomes.append("applied")
        except ConfirmationError as exc:
            outcomes.append(str(exc))

    try:
        async with anyio.create_task_group() as tasks:
            for index, replica in enumerate(replicas):
                tasks.start_soon(apply, PlanTable(replica, tenant="t", replica=f"r{index}"))
    finally:
        for replica in replicas:
            await replica.close()
    assert sorted(outcomes)[0] == "applied" and outcomes.count("applied") == 1
    assert all("being applied" in o or "already applied" in o for o in outcomes if o != "applied")


async def test_the_claim_of_a_process_that_died_is_released(state_url: str, table: PlanTable) -> None:
    plan = _plan(table)
    await table.save(plan)
    with pytest.raises(StateUnavailable):
        async with table.claim(plan.id) as claim:
            admin = await asyncpg.connect(state_url)
            try:  # the holder's connection dies, as it does with its process (SIGKILL, a lost network)
                killed = await admin.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_locks "
                    "WHERE relation = 'neon_mcp_state.migration_plans'::regclass AND mode = 'RowShareLock'"
                )
            finally:
                await admin.close()
            assert killed == 1
            await claim.finish("applied")
    async with table.claim(plan.id) as claim:  # planned still, and free
        assert claim.plan.state == "planned"


async def test_plan_expiry_is_the_database_clock(state_url: str, table: PlanTable) -> None:
    plan = _plan(table, expires_in=3600)
    await table.save(plan)
    await table.applicable(plan.id)
    conn = await asyncpg.connect(state_url)
    try:
        await conn.execute(
            "UPDATE neon_mcp_state.migration_plans SET expires_at = now() - interval '1 second' WHERE id = $1", plan.id
        )
    finally:
        await conn.close()
    with pytest.raises(ConfirmationError, match="expired at"):
        await table.applicable(plan.id)
