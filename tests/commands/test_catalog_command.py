"""``rsproxy catalog`` (rsproxy/commands/catalog.py) through Typer's runner, reading a real
store with no daemon running (the read-only path); the e2e test drives it against a live one.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from openapi_spec_validator import validate
from typer.testing import CliRunner

from rsproxy.cli import app
from rsproxy.pipeline.engine import Pipeline
from rsproxy.pipeline.spec import parse_spec
from rsproxy.pipeline.stage import StageContext
from rsproxy.project import Project
from rsproxy.store import SessionInfo, Store
from rsproxy.testing import make_http_event

runner = CliRunner()
SID = "c" * 32


@pytest.fixture
def project(rsproxy_home: Path) -> str:
    """A project whose store holds one session of three endpoints, the last one failing."""
    store = Store.open(Project("cli").store_path)
    store.start_session(
        SessionInfo(id=SID, project="cli", source="proxy", target=":3000", started_ms=1.0)
    )
    events = []
    for n in range(4):
        events.append(
            make_http_event(
                path=f"/api/items/{n}",
                path_template="/api/items/{itemId}",
                service="app",
                response_body=json.dumps({"id": n, "label": None if n else "first"}),
                timings={"total_ms": 10.0 + n},
                auth="bearer",
            )
        )
    events.append(
        make_http_event(
            method="POST",
            path="/api/items",
            url="http://127.0.0.1:3000/api/items",
            path_template="/api/items",
            service="app",
            status=201,
            request_body='{"label": "new"}',
            request_content_type="application/json",
            request_size=16,
            response_body='{"id": 9}',
        )
    )
    events.append(
        make_http_event(
            path="/v1/quotes",
            path_template="/v1/quotes",
            service="quotes.example.com",
            host="quotes.example.com",
            status=503,
            response_body='{"error": "maintenance"}',
        )
    )
    for event in events:
        event.session_id = SID
    spec = parse_spec("version: 1\nstages:\n  - type: catalog\n  - type: persist\n", "t")
    pipeline = Pipeline(spec, StageContext("cli", SID, store))
    pipeline.run(events)
    pipeline.close()
    store.close()
    return "cli"


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_the_table_lists_endpoints_by_service(project: str) -> None:
    code, out, _ = invoke("catalog", "--project", project)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == f"session {SID}: 3 endpoints in 2 services"
    app_header = next(i for i, line in enumerate(lines) if line.startswith("app "))
    assert "http://127.0.0.1:3000" in lines[app_header]
    row = next(line for line in lines if "/api/items/{itemId}" in line)
    assert row.split()[:5] == ["GET", "/api/items/{itemId}", "4", "100%", "11.5ms"]
    assert row.split()[-2:] == ["200x4", "bearer"]
    quotes = next(line for line in lines if "/v1/quotes" in line)
    assert "0%" in quotes and "503x1" in quotes


def test_json_is_the_catalog_report(project: str) -> None:
    code, out, _ = invoke("catalog", "--project", project, "--json", "--service", "app")
    assert code == 0, out
    answer = json.loads(out)
    assert [e["key"] for e in answer["endpoints"]] == [
        "app POST /api/items",
        "app GET /api/items/{itemId}",
    ]
    items = answer["endpoints"][1]
    assert items["contract"]["responses"]["200"]["schema"] == {
        "type": "object",
        "properties": {"id": {"type": "integer"}, "label": {"type": ["string", "null"]}},
        "required": ["id", "label"],
    }


@pytest.mark.parametrize("name", ["api.json", "api.yaml"])
def test_openapi_and_markdown_files(project: str, tmp_path: Path, name: str) -> None:
    target, docs = tmp_path / "out" / name, tmp_path / "API.md"
    code, out, err = invoke(
        "catalog", "--project", project, "--openapi", str(target), "--markdown", str(docs)
    )
    assert code == 0, err
    assert out == ""  # files written: no table
    assert f"wrote OpenAPI 3.1 (3 paths) to {target}" in err
    assert f"wrote API docs (3 endpoints) to {docs}" in err
    text = target.read_text()
    document = yaml.safe_load(text) if name.endswith(".yaml") else json.loads(text)
    validate(document)
    assert set(document["paths"]) == {"/api/items", "/api/items/{itemId}", "/v1/quotes"}
    assert "### `GET /api/items/{itemId}`" in docs.read_text()


def test_services_health_and_curl(project: str) -> None:
    code, out, _ = invoke("catalog", "services", "--project", project)
    assert code == 0, out
    assert out.splitlines()[1].split()[:4] == ["app", "2", "5", "0%"]
    assert out.splitlines()[2].split()[:4] == ["quotes.example.com", "1", "1", "100%"]

    code, out, _ = invoke("catalog", "health", "--project", project)
    assert code == 0, out
    assert out.splitlines()[0] == "1 failing, 0 degraded, 2 healthy"
    assert "failing   GET     /v1/quotes" in out.splitlines()[1]

    code, out, err = invoke("catalog", "curl", "POST /api/items", "--project", project)
    assert code == 0, err
    assert out.startswith("curl -X POST http://127.0.0.1:3000/api/items \\\n")
    assert '--data-raw \'{"label": "new"}\'' in out
    assert "app POST /api/items" in err


def test_errors_are_one_clear_line(project: str, rsproxy_home: Path) -> None:
    code, _, err = invoke("catalog", "--project", project, "--service", "nope")
    assert code == 1
    assert "rsproxy: no service 'nope'" in err and "services: app, quotes.example.com" in err
    code, _, err = invoke("catalog", "curl", "/missing", "--project", project)
    assert code == 1 and "no endpoint matches '/missing'" in err
    code, _, err = invoke("catalog", "--project", "empty-project")
    assert code == 1 and "no store at" in err
