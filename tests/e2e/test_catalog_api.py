"""The API catalog end to end: a real ``rsproxy start`` in front of the catalog fixture API
(fixtures/apps/catalog_api.py), traffic through the proxy, then ``rsproxy catalog`` from the CLI.

The fixture's responses vary in optional and nullable fields, integer vs fraction, arrays of
objects with differing keys and formats; the inferred contracts must be exactly the ones the
fixture states (``EXPECTED_*``), the OpenAPI export must pass ``openapi-spec-validator``, no
secret may show in any output, and the same answers must come from the store once the daemon
has stopped (the read-only path). A second test drives the API from Chromium.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from rsproxy.testing import DaemonProcess, LoopbackServer, load_fixture, run_cli

CATALOG_API = Path(__file__).resolve().parents[2] / "fixtures" / "apps" / "catalog_api.py"


api = load_fixture(CATALOG_API)


def _caught_up(answer: dict[str, Any], expected_calls: int) -> bool:
    """The stage's rows agree with the http table: every status the SQL counts, the stage
    has counted too (the stage writes when the worker is idle; the http rows come first)."""
    endpoints = answer["endpoints"]
    if sum(e["calls"] for e in endpoints) < expected_calls:
        return False
    for e in endpoints:
        counted = {code: r["count"] for code, r in e["contract"]["responses"].items()}
        if counted != {k: v for k, v in e["status_codes"].items() if k != "none"}:
            return False
    return True


def _wait_for_catalog(
    daemon: DaemonProcess, expected_calls: int, timeout: float = 20.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    with daemon.api() as client:
        while True:
            response = client.post("/api/report/catalog", json={})
            response.raise_for_status()
            answer: dict[str, Any] = response.json()
            if _caught_up(answer, expected_calls):
                return answer
            if time.monotonic() > deadline:
                raise AssertionError(f"the catalog never caught up: {json.dumps(answer)[:3000]}")
            time.sleep(0.2)


def _catalog_json(home: Path) -> dict[str, Any]:
    result = run_cli(home, "catalog", "--project", "catalog", "--json")
    assert result.returncode == 0, result.stderr
    assert api.TOKEN not in result.stdout and api.API_KEY not in result.stdout
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


def _openapi(home: Path, target: Path) -> dict[str, Any]:
    result = run_cli(home, "catalog", "--project", "catalog", "--openapi", str(target))
    assert result.returncode == 0, result.stderr
    text = target.read_text()
    assert api.TOKEN not in text and api.API_KEY not in text
    document: dict[str, Any] = json.loads(text)
    validate(document)
    return document


def _check_contracts(answer: dict[str, Any]) -> None:
    endpoints = {e["key"]: e for e in answer["endpoints"]}
    assert set(endpoints) == {
        "app GET /api/users/{userId}",
        "app GET /api/users",
        "app POST /api/orders",
        "app GET /api/stats",
        "app GET /api/health",
    }, "the page and nothing else: no static assets, no rsproxy paths"

    user = endpoints["app GET /api/users/{userId}"]
    assert user["calls"] == 5
    assert user["status_codes"] == {"200": 3, "401": 1, "404": 1}
    assert user["auth"] == {"bearer": 4, "none": 1}
    responses = user["contract"]["responses"]
    assert responses["200"]["samples"] == 3
    assert responses["200"]["schema"] == api.EXPECTED_USER
    assert responses["404"]["schema"] == {
        "type": "object",
        "properties": {"error": {"type": "string"}, "id": {"type": "integer"}},
        "required": ["error", "id"],
    }
    assert responses["401"]["schema"]["required"] == ["error"]
    assert user["contract"]["path_params"]["schema"]["properties"] == {
        "userId": {"type": "integer"}
    }
    assert [s["status"] for s in user["error_samples"]] == [401, 404]
    assert user["success_rate"] == 0.6
    assert user["p50_ms"] is not None and user["p95_ms"] >= user["p50_ms"]

    page = endpoints["app GET /api/users"]
    assert page["contract"]["responses"]["200"]["schema"] == api.EXPECTED_USER_PAGE
    assert page["contract"]["query"]["schema"] == api.EXPECTED_USERS_QUERY

    orders = endpoints["app POST /api/orders"]
    assert orders["status_codes"] == {"201": 2, "422": 1}
    assert orders["auth"] == {"api_key_header": 3}
    assert orders["auth_names"] == {"api_key_header": ["x-api-key"]}
    assert orders["contract"]["request"]["schema"] == api.EXPECTED_ORDER_REQUEST
    assert orders["contract"]["request"]["required"] is True
    assert orders["contract"]["responses"]["201"]["schema"] == api.EXPECTED_ORDER_CREATED
    assert orders["contract"]["responses"]["422"]["schema"]["properties"]["fields"] == {
        "type": "array",
        "items": {"type": "string"},
    }
    sample = orders["sample_request"]
    assert sample["status"] == 201
    assert ["x-api-key", "[REDACTED]"] in [[n.lower(), v] for n, v in sample["headers"]]

    stats = endpoints["app GET /api/stats"]
    assert stats["auth"] == {"api_key_query": 2}
    assert stats["auth_names"] == {"api_key_query": ["api_key"]}
    assert stats["status_codes"] == {"200": 1, "500": 1}
    assert stats["error_rate"] == 0.5
    assert stats["contract"]["responses"]["200"]["schema"]["properties"] == {
        "requests": {"type": "integer"},
        "error_rate": {"type": "number"},
    }
    assert endpoints["app GET /api/health"]["auth"] == {"none": 1}


def _check_openapi(document: dict[str, Any]) -> None:
    paths = document["paths"]
    assert set(paths) == {
        "/api/users/{userId}",
        "/api/users",
        "/api/orders",
        "/api/stats",
        "/api/health",
    }
    get_user = paths["/api/users/{userId}"]["get"]
    assert get_user["parameters"] == [
        {"name": "userId", "in": "path", "required": True, "schema": {"type": "integer"}}
    ]
    assert get_user["responses"]["200"]["content"]["application/json"]["schema"] == (
        api.EXPECTED_USER
    )
    assert set(get_user["responses"]) == {"200", "401", "404"}
    assert get_user["security"] == [{"bearerAuth": []}, {}]
    post = paths["/api/orders"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == (
        api.EXPECTED_ORDER_REQUEST
    )
    assert post["security"] == [{"apiKeyHeader_x-api-key": []}]
    stats = paths["/api/stats"]["get"]
    assert stats["security"] == [{"apiKeyQuery_api_key": []}]
    assert [p["name"] for p in stats["parameters"]] == ["cold"]  # the key is a security scheme
    assert document["components"]["securitySchemes"] == {
        "apiKeyHeader_x-api-key": {"type": "apiKey", "in": "header", "name": "x-api-key"},
        "apiKeyQuery_api_key": {"type": "apiKey", "in": "query", "name": "api_key"},
        "bearerAuth": {"type": "http", "scheme": "bearer"},
    }
    assert document["servers"][0]["url"].startswith("http://127.0.0.1:")


def test_the_contract_of_a_captured_api_is_inferred_exactly_and_exports_valid_openapi(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    with (
        LoopbackServer(api.app) as upstream,
        DaemonProcess(home, "--target", f":{upstream.port}", project="catalog") as daemon,
    ):
        with httpx.Client(base_url=daemon.proxy_url, trust_env=False, timeout=10) as client:
            api.drive(client)
        _wait_for_catalog(daemon, expected_calls=14)
        live = _catalog_json(home)
        _check_contracts(live)
        live_doc = _openapi(home, tmp_path / "live.json")
        _check_openapi(live_doc)
        markdown = tmp_path / "API.md"
        result = run_cli(home, "catalog", "--project", "catalog", "--markdown", str(markdown))
        assert result.returncode == 0, result.stderr
        assert "### `GET /api/users/{userId}`" in markdown.read_text()
        assert daemon.stop() == 0

    # The daemon is gone: the same reports come from the store, opened read-only.
    offline = _catalog_json(home)
    _check_contracts(offline)
    assert [e["key"] for e in offline["endpoints"]] == [e["key"] for e in live["endpoints"]]
    assert _openapi(home, tmp_path / "offline.json") == live_doc
    table = run_cli(home, "catalog", "--project", "catalog")
    assert table.returncode == 0, table.stderr
    assert "/api/users/{userId}" in table.stdout and "bearer,none" in table.stdout
    curl = run_cli(home, "catalog", "curl", "POST /api/orders", "--project", "catalog")
    assert curl.returncode == 0, curl.stderr
    assert "-h 'x-api-key: [redacted]'" in curl.stdout.lower()
    assert api.API_KEY not in curl.stdout


@pytest.mark.browser
def test_api_calls_from_a_page_in_chromium_are_catalogued(tmp_path: Path, page: Any) -> None:
    home = tmp_path / "home"
    with (
        LoopbackServer(api.app) as upstream,
        DaemonProcess(home, "--target", f":{upstream.port}", project="catalog") as daemon,
    ):
        page.goto(daemon.proxy_url + "/")
        page.wait_for_function("document.getElementById('status').textContent.startsWith('done')")
        assert page.text_content("#status") == "done 200,200,200,200,200"
        answer = _wait_for_catalog(daemon, expected_calls=5)
    endpoints = {e["key"]: e for e in answer["endpoints"]}
    # the page itself (text/html) and the probe's script are not API endpoints
    assert set(endpoints) == {
        "app GET /api/users/{userId}",
        "app GET /api/users",
        "app GET /api/health",
    }
    user = endpoints["app GET /api/users/{userId}"]
    assert user["auth"] == {"bearer": 3}
    assert user["contract"]["responses"]["200"]["schema"] == api.EXPECTED_USER
