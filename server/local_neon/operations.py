"""Operations: the background work a mutation starts, run step by step, with the locks that give Neon's 423.

A mutation submits its steps (each an ``Operation`` record and a coroutine) together with the branches it locks. The
records are stored at once (first ``running``, the rest ``scheduling``) and returned to the caller, who answers with
them; a task then runs the steps in order, marking each ``finished`` or ``failed`` (with its ``error``). After a
failure the remaining steps are ``cancelled`` and the mutation's cleanup runs. While a mutation runs, another that
needs one of its branches is refused with 423, as Neon refuses it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace

from ..errors import NeonMCPError
from . import ids
from .errors import NeonAPIError, locked
from .records import Operation
from .store import Store

__all__ = ["Operations", "Step"]

logger = logging.getLogger("neon_mcp.local_neon")

Step = tuple[Operation, Callable[[], Awaitable[None]]]
Cleanup = Callable[[], Awaitable[None]]


class Operations:
    """Runs submitted operations as tasks of the running event loop."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._locks: dict[str, str] = {}  # branch id → what holds it
        self._projects: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._task_of: dict[str, asyncio.Task[None]] = {}

    @staticmethod
    def new(project_id: str, action: str, *, branch_id: str | None = None, endpoint_id: str | None = None) -> Operation:
        """An operation record (not yet stored)."""
        moment = ids.now()
        return Operation(
            id=ids.operation_id(),
            project_id=project_id,
            action=action,
            created_at=moment,
            updated_at=moment,
            branch_id=branch_id,
            endpoint_id=endpoint_id,
        )

    def check(self, keys: Iterable[str]) -> None:
        """Raise 423 if a running mutation holds any of ``keys`` (branch ids)."""
        for key in keys:
            if (holder := self._locks.get(key)) is not None:
                raise locked(f"{holder} on {key}")

    def done(self, operation: Operation) -> Operation:
        """Store an operation whose work was done when it was requested: ``finished`` at once, holding no lock."""
        record = replace(operation, status="finished")
        self._store.put(record)
        return record

    def busy(self, project_id: str) -> bool:
        """Whether any operation of the project is still running."""
        return self._projects.get(project_id, 0) > 0

    def submit(
        self, project_id: str, keys: Iterable[str], steps: list[Step], *, cleanup: Cleanup | None = None
    ) -> list[Operation]:
        """Store the steps' operations, lock ``keys`` and start running; returns the operations as stored.

        Raises 423 (nothing stored, nothing started) if a key is locked. With no steps, nothing happens.
        """
        keys = set(keys)
        self.check(keys)
        if not steps:
            return []
        records = [replace(op, status="running" if index == 0 else "scheduling") for index, (op, _) in enumerate(steps)]
        with self._store.transaction():
            for record in records:
                self._store.put(record)
        for key in keys:
            self._locks[key] = f"operation {records[0].id} ({records[0].action})"
        self._projects[project_id] = self._projects.get(project_id, 0) + 1
        work = [(record, run) for record, (_, run) in zip(records, steps, strict=True)]
        task = asyncio.get_running_loop().create_task(self._run(project_id, keys, work, cleanup))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        for record in records:
            self._task_of[record.id] = task
        task.add_done_callback(lambda _: [self._task_of.pop(record.id, None) for record in records])
        return [replace(record) for record in records]

    async def wait(self, operations: Iterable[Operation]) -> None:
        """Wait until the mutations that ``operations`` belong to have ended (however they ended)."""
        tasks = {task for op in operations if (task := self._task_of.get(op.id)) is not None}
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    @contextmanager
    def reserve(self, keys: Iterable[str], what: str) -> Iterator[None]:
        """Hold ``keys`` for internal work that is not an operation (``what`` names it in 423 messages).

        Raises 423 at once if a key is held; while inside, mutations that need a key get 423.
        """
        keys = set(keys)
        self.check(keys)
        for key in keys:
            self._locks[key] = what
        try:
            yield
        finally:
            for key in keys:
                self._locks.pop(key, None)

    async def drain(self) -> None:
        """Wait until every submitted operation has ended."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def cancel(self) -> None:
        """Cancel the operations still running (they stay ``running`` in the store; the next open fails them)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, project_id: str, keys: set[str], work: list[Step], cleanup: Cleanup | None) -> None:
        try:
            failed = False
            for record, run in work:
                if failed:
                    self._finish(record, "cancelled", "cancelled: an earlier operation of the same request failed")
                    continue
                started = time.monotonic()
                if record.status != "running":
                    self._set(record, "running")
                try:
                    await run()
                except Exception as exc:
                    failed = True
                    self._finish(record, "failed", _describe(exc), started)
                else:
                    self._finish(record, "finished", None, started)
            if failed and cleanup is not None:
                try:
                    await cleanup()
                except Exception:
                    logger.exception("local Neon: cleaning up after a failed operation failed too")
        finally:
            for key in keys:
                self._locks.pop(key, None)
            self._projects[project_id] -= 1

    def _set(self, record: Operation, status: str) -> None:
        record.status = status
        record.updated_at = ids.now()
        self._store.put(record)

    def _finish(self, record: Operation, status: str, error: str | None, started: float | None = None) -> None:
        record.error = error
        if status == "failed":
            record.failures_count += 1
        if started is not None:
            record.total_duration_ms = int((time.monotonic() - started) * 1000)
        self._set(record, status)


def _describe(exc: Exception) -> str:
    """The error text an operation reports; unexpected exceptions are logged with their traceback too."""
    if isinstance(exc, NeonAPIError):
        return exc.message
    if isinstance(exc, NeonMCPError):
        return str(exc)
    logger.error("local Neon: an operation failed unexpectedly", exc_info=exc)
    return f"{type(exc).__name__}: {exc}"
