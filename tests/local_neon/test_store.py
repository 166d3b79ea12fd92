"""The state file: records go in and come back equal, and rows written by earlier versions (``dataclasses.asdict``
with ``isoformat()`` times) still load."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from server.local_neon.records import Branch, Endpoint
from server.local_neon.store import Store


def test_records_round_trip_and_earlier_rows_load(tmp_path: Path) -> None:
    moment = datetime(2025, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
    branch = Branch(
        id="br-a",
        project_id="p",
        name="dev",
        timeline="tl-1",
        created_at=moment,
        updated_at=moment,
        state_changed_at=moment,
        parent_timestamp=moment,
        annotation={"k": "v"},
    )
    earlier = json.dumps(dataclasses.asdict(branch), default=lambda value: value.isoformat())
    assert "+00:00" in earlier
    store = Store(tmp_path / "state.db")
    try:
        store.put(branch)  # makes the tables' rows; then overwritten with the earlier form
        with sqlite3.connect(tmp_path / "state.db") as raw:
            raw.execute("UPDATE records SET data = ? WHERE kind = 'branch' AND key = 'br-a'", (earlier,))
        loaded = store.get(Branch, "br-a")
        assert loaded == branch and loaded.parent_timestamp == moment
        endpoint = Endpoint("ep-a", "p", "br-a", "read_write", 5432, moment, moment, autoscaling_limit_max_cu=2)
        store.put(endpoint)
        assert store.list(Endpoint, project_id="p", branch_id="br-a") == [endpoint]
    finally:
        store.close()
