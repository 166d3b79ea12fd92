"""``@neondatabase/serverless`` against local Neon: SQL over HTTP (``POST /sql``) and the WebSocket transport
(``/v2``), through the front door, with only the driver's endpoints pointed at local Neon. The shapes are checked
over HTTP from Python too (results, errors, transaction options), against the session's local Neon daemon."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2 as httpx
import pytest

from tests.local_neon.helpers import API
from tests.local_neon.node import node_packages, run_node

SCRIPTS = Path(__file__).parent / "js"


def api_port(neon_api: API) -> int:
    return int(neon_api.host.split(":")[2].split("/")[0])


def sql(neon_api: API, uri: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    """A request as the driver sends it (raw text values, rows as arrays), without the API key."""
    sent = {"Neon-Connection-String": uri, "Neon-Raw-Text-Output": "true", "Neon-Array-Mode": "true", **headers}
    return httpx.post(f"http://127.0.0.1:{api_port(neon_api)}/sql", json=body, headers=sent, timeout=60)


def owner_uri(project: dict[str, Any]) -> str:
    return str(project["connection_uris"][0]["connection_uri"])


def test_the_driver_runs_queries_and_transactions_over_http_and_websocket(
    neon_api: API, neon_project: dict[str, Any]
) -> None:
    root = node_packages(["@neondatabase/serverless@1", "ws@8"])
    done = run_node(root, SCRIPTS / "serverless.mjs", str(api_port(neon_api)), owner_uri(neon_project))
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["http"] == [{"greeting": "hello", "answer": 42, "ok": True}]
    assert seen["httpFull"]["rows"] == [[7, None]] and seen["httpFull"]["rowAsArray"] is True
    assert [f["dataTypeID"] for f in seen["httpFull"]["fields"]] == [23, 25]
    assert seen["transaction"] == [[], [{"n": 2}]]
    assert seen["rolledBack"]["code"] == "22012" and seen["rolledBack"]["name"] == "NeonDbError"
    assert seen["readOnly"]["code"] == "25006"
    assert seen["afterFailures"] == [{"n": 2}], "the failed transactions left nothing behind"
    assert seen["insideTransaction"] == [{"n": 3}]
    assert seen["pool"] == [{"n": 2, "who": "neondb_owner"}], "the WebSocket transaction was rolled back"


def test_results_have_neons_shape(neon_api: API, neon_project: dict[str, Any]) -> None:
    answer = sql(
        neon_api, owner_uri(neon_project), {"query": "SELECT $1::int AS n, $2::text AS t", "params": [5, None]}
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["access-control-allow-origin"] == "*"
    body = answer.json()
    assert body["rows"] == [["5", None]] and body["command"] == "SELECT" and body["rowCount"] == 1
    assert body["fields"][0] == {
        "name": "n",
        "dataTypeID": 23,
        "tableID": 0,
        "columnID": 0,
        "dataTypeSize": 4,
        "dataTypeModifier": -1,
        "format": "text",
    }
    typed = httpx.post(
        f"http://127.0.0.1:{api_port(neon_api)}/sql",
        json={"query": "SELECT true AS b, 2 AS i, '{\"a\": 1}'::jsonb AS j, 1.5::float8 AS f"},
        headers={"Neon-Connection-String": owner_uri(neon_project)},
        timeout=60,
    ).json()
    assert typed["rows"] == [{"b": True, "i": 2, "j": {"a": 1}, "f": 1.5}] and typed["rowAsArray"] is False


def test_errors_carry_postgres_fields(neon_api: API, neon_project: dict[str, Any]) -> None:
    answer = sql(neon_api, owner_uri(neon_project), {"query": "SELECT * FROM no_such_table"})
    assert answer.status_code == 400
    body = answer.json()
    assert body["code"] == "42P01" and "no_such_table" in body["message"] and body["position"] == "15"
    assert set(body) >= {"message", "code", "detail", "hint", "position", "severity", "routine"}
    several = sql(neon_api, owner_uri(neon_project), {"query": "SELECT 1; SELECT 2"})
    assert several.status_code == 400 and several.json()["code"] == "42601", "one statement per query, as on Neon"


def test_batches_are_one_transaction_with_its_options(neon_api: API, neon_project: dict[str, Any]) -> None:
    uri = owner_uri(neon_project)
    queries = {"queries": [{"query": "SHOW transaction_isolation"}, {"query": "SHOW transaction_read_only"}]}
    answer = sql(
        neon_api, uri, queries, **{"Neon-Batch-Isolation-Level": "RepeatableRead", "Neon-Batch-Read-Only": "true"}
    )
    assert answer.status_code == 200, answer.text
    assert [r["rows"] for r in answer.json()["results"]] == [[["repeatable read"]], [["on"]]]
    assert answer.headers["neon-batch-read-only"] == "true"
    bad = sql(neon_api, uri, queries, **{"Neon-Batch-Isolation-Level": "Sometimes"})
    assert bad.status_code == 400 and bad.json()["message"] == "invalid isolation level"


def test_the_password_is_checked(neon_api: API, neon_project: dict[str, Any]) -> None:
    params = neon_project["connection_uris"][0]["connection_parameters"]
    wrong = owner_uri(neon_project).replace(quote(params["password"], safe=""), "wrong")
    answer = sql(neon_api, wrong, {"query": "SELECT 1"})
    assert answer.status_code == 400 and answer.json()["code"] == "28P01"
    missing = httpx.post(f"http://127.0.0.1:{api_port(neon_api)}/sql", json={"query": "SELECT 1"}, timeout=60)
    assert missing.status_code == 400 and "Neon-Connection-String" in missing.json()["message"]


def test_a_neonctl_style_host_routes_without_options(neon_api: API, neon_project: dict[str, Any]) -> None:
    params = neon_project["connection_uris"][0]["connection_parameters"]
    host = params["host"].split("/")[0]
    uri = f"postgresql://{params['role']}:{quote(params['password'], safe='')}@{host}/{params['database']}"
    answer = sql(neon_api, uri, {"query": "SELECT current_database()"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["rows"] == [["neondb"]]


@pytest.mark.slow
def test_neons_mcp_server_runs_sql_against_local_neon(neon_api: API, neon_project: dict[str, Any]) -> None:
    if neon_api.http.get("/auth").status_code != 200:
        pytest.skip("local Neon does not answer GET /auth yet, which Neon's MCP server asks at start-up")
    root = node_packages(
        ["@neondatabase/mcp-server-neon@0.6.5"],
        overrides={"@fastify/otel": "0.8.0"},  # its Sentry pins a GitHub tarball npm cannot fetch here
    )
    done = run_node(
        root,
        SCRIPTS / "mcp_server.mjs",
        neon_api.host,
        neon_api.key,
        neon_project["project"]["id"],
        str(api_port(neon_api)),
        timeout=180,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert "neondb_owner" in seen["run_sql"]
