"""OpenAPI 3.1, Markdown and cURL from catalog entries (rsproxy/analysis/openapi.py).

The entries are shaped as the ``catalog`` report returns them. Every document built here must
pass ``openapi-spec-validator``; the checks pin what each part of an entry becomes.
"""

from __future__ import annotations

import shlex
from typing import Any

from openapi_spec_validator import validate

from rsproxy.analysis.openapi import (
    build_markdown,
    build_openapi,
    curl_command,
    describe_type,
    schema_fields,
)

USER = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "email": {"type": ["string", "null"], "format": "email"},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["id", "email"],
}


def entry(method: str, template: str, **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "key": f"app {method} {template}",
        "service": "app",
        "method": method,
        "path_template": template,
        "origins": ["http://127.0.0.1:3000"],
        "calls": 4,
        "success_rate": 0.75,
        "p50_ms": 3.0,
        "p95_ms": 9.5,
        "status_codes": {"200": 3, "404": 1},
        "auth": {"none": 4},
        "auth_names": {},
        "request_content_types": [],
        "contract": {
            "path_params": None,
            "query": None,
            "request": None,
            "responses": {
                "200": {
                    "count": 3,
                    "content_types": ["application/json"],
                    "schema": USER,
                    "samples": 3,
                    "media_type": "application/json",
                    "example": {"id": 1, "email": None},
                },
                "404": {"count": 1, "content_types": ["text/plain"]},
            },
        },
        "sample_request": {
            "method": method,
            "url": f"http://127.0.0.1:3000{template}",
            "headers": [["accept", "application/json"]],
            "body": None,
        },
    }
    base.update(overrides)
    return base


def document(*entries: dict[str, Any]) -> dict[str, Any]:
    doc = build_openapi(list(entries), title="Test API", version="abc123", description="d")
    validate(doc)
    return doc


def test_a_path_with_parameters_declares_each_and_types_it_from_what_was_seen() -> None:
    users = entry(
        "GET",
        "/users/{userId}/orders/{orderId}",
        contract={
            "path_params": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "userId": {"type": "integer"},
                        "orderId": {"type": "string", "format": "uuid"},
                    },
                    "required": ["userId", "orderId"],
                }
            },
            "query": {
                "schema": {
                    "type": "object",
                    "properties": {"page": {"type": "integer"}, "q": {"type": "string"}},
                    "required": ["page"],
                }
            },
            "request": None,
            "responses": {},
        },
    )
    doc = document(users)
    operation = doc["paths"]["/users/{userId}/orders/{orderId}"]["get"]
    assert operation["parameters"] == [
        {"name": "userId", "in": "path", "required": True, "schema": {"type": "integer"}},
        {
            "name": "orderId",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "format": "uuid"},
        },
        {"name": "page", "in": "query", "required": True, "schema": {"type": "integer"}},
        {"name": "q", "in": "query", "required": False, "schema": {"type": "string"}},
    ]
    # no response captured at all: OpenAPI still needs one
    assert operation["responses"] == {
        "default": {"description": "No response was captured (the request failed)."}
    }


def test_responses_per_status_with_schema_example_and_other_content_types() -> None:
    doc = document(entry("GET", "/users/{userId}"))
    operation = doc["paths"]["/users/{userId}"]["get"]
    assert operation["responses"] == {
        "200": {
            "description": "OK",
            "content": {"application/json": {"schema": USER, "example": {"id": 1, "email": None}}},
        },
        "404": {"description": "Not Found", "content": {"text/plain": {}}},
    }
    assert operation["parameters"][0]["schema"] == {"type": "string"}  # nothing learned: string
    assert operation["tags"] == ["app"]
    assert "4 calls observed" in operation["description"]
    assert doc["servers"] == [{"url": "http://127.0.0.1:3000"}]
    assert doc["info"] == {"title": "Test API", "version": "abc123", "description": "d"}


def test_request_body_is_required_only_when_every_request_had_one() -> None:
    request = {
        "schema": {"type": "object", "properties": {"name": {"type": "string"}}},
        "samples": 2,
        "media_type": "application/json",
        "required": False,
    }
    created = entry(
        "POST",
        "/users",
        request_content_types=["application/json"],
        contract={"request": request, "responses": {"201": {"count": 2, "content_types": []}}},
    )
    doc = document(created)
    body = doc["paths"]["/users"]["post"]["requestBody"]
    assert body == {
        "required": False,
        "content": {"application/json": {"schema": request["schema"]}},
    }
    assert doc["paths"]["/users"]["post"]["responses"] == {"201": {"description": "Created"}}


def test_security_schemes_follow_the_auth_patterns_and_optional_auth_lists_an_empty_one() -> None:
    doc = document(
        entry("GET", "/a", auth={"bearer": 3, "none": 1}),
        entry("GET", "/b", auth={"basic": 1}),
        entry(
            "GET", "/c", auth={"api_key_header": 2}, auth_names={"api_key_header": ["x-api-key"]}
        ),
        entry(
            "GET",
            "/d",
            auth={"api_key_query": 2},
            auth_names={"api_key_query": ["api_key"]},
            contract={
                "query": {
                    "schema": {
                        "type": "object",
                        "properties": {"api_key": {"type": "string"}, "n": {"type": "integer"}},
                        "required": ["api_key", "n"],
                    }
                },
                "responses": {},
            },
        ),
        entry("GET", "/e", auth={"cookie": 1}, auth_names={"cookie": ["sessionid"]}),
        entry(
            "GET",
            "/f",
            auth={"authorization_other": 1},
            auth_names={"authorization_other": ["Digest"]},
        ),
        entry("GET", "/g", auth={"none": 5}),
    )
    assert doc["components"]["securitySchemes"] == {
        "apiKeyHeader_x-api-key": {"type": "apiKey", "in": "header", "name": "x-api-key"},
        "apiKeyQuery_api_key": {"type": "apiKey", "in": "query", "name": "api_key"},
        "basicAuth": {"type": "http", "scheme": "basic"},
        "bearerAuth": {"type": "http", "scheme": "bearer"},
        "cookieAuth_sessionid": {"type": "apiKey", "in": "cookie", "name": "sessionid"},
        "digestAuth": {"type": "http", "scheme": "digest"},
    }
    paths = doc["paths"]
    assert paths["/a"]["get"]["security"] == [{"bearerAuth": []}, {}]
    assert paths["/b"]["get"]["security"] == [{"basicAuth": []}]
    assert paths["/c"]["get"]["security"] == [{"apiKeyHeader_x-api-key": []}]
    # the key travels as a security scheme, not as an ordinary query parameter
    assert [p["name"] for p in paths["/d"]["get"]["parameters"]] == ["n"]
    assert "security" not in paths["/g"]["get"]


def test_other_services_get_their_own_servers_and_tags() -> None:
    doc = document(
        entry("GET", "/api/cart"),
        entry(
            "POST",
            "/v1/charges",
            key="stripe POST /v1/charges",
            service="stripe",
            origins=["https://api.stripe.com"],
        ),
    )
    assert doc["servers"] == [{"url": "http://127.0.0.1:3000"}]
    assert [t["name"] for t in doc["tags"]] == ["app", "stripe"]
    charge = doc["paths"]["/v1/charges"]["post"]
    assert charge["servers"] == [{"url": "https://api.stripe.com"}]
    assert charge["operationId"] == "stripe_postV1Charges"
    assert "servers" not in doc["paths"]["/api/cart"]["get"]


def test_paths_openapi_cannot_tell_apart_are_folded_and_clashes_are_reported() -> None:
    doc = document(
        entry("GET", "/items/{itemId}"),
        entry("DELETE", "/items/{id}"),
        entry("GET", "/items/{id}", key="other GET /items/{id}", service="other", origins=[]),
        entry("BREW", "/coffee"),
        entry("GET", "/pairs/{id}/{id}"),
        entry("GET", "relative"),
    )
    paths = doc["paths"]
    assert set(paths["/items/{itemId}"]) == {"get", "delete"}
    assert paths["/items/{itemId}"]["delete"]["parameters"][0]["name"] == "itemId"
    assert "/items/{id}" not in paths
    assert "/pairs/{id}/{id2}" in paths
    assert "/relative" in paths
    assert "other GET /items/{id}" in doc["info"]["description"]
    assert "app BREW /coffee" in doc["info"]["description"]


def test_operation_ids_are_unique() -> None:
    doc = document(entry("GET", "/a-b"), entry("GET", "/a_b"), entry("GET", "/a/b"))
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids)) == 3


def test_an_empty_catalog_is_still_a_valid_document() -> None:
    doc = document()
    assert doc["paths"] == {}


# ---- Markdown -----------------------------------------------------------------------------------


def test_types_and_fields_read_plainly() -> None:
    assert describe_type(USER["properties"]["email"]) == "string (email) | null"
    assert describe_type({"type": "array", "items": {"type": "integer"}}) == "array of integer"
    assert describe_type({"type": "object", "additionalProperties": {"type": "string"}}) == (
        "map of string"
    )
    assert describe_type({}) == "any"
    assert describe_type({"anyOf": [{"type": "object"}, {"type": "null"}]}) == "object | null"
    orders = {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {"id": {"type": "integer"}, "note": {"type": "string"}},
            "required": ["id"],
        },
    }
    assert schema_fields({"type": "object", "properties": {"orders": orders}}) == [
        ("orders", "array of object", False),
        ("orders[].id", "integer", True),
        ("orders[].note", "string", False),
    ]


def test_markdown_has_a_table_per_service_and_a_section_per_endpoint() -> None:
    text = build_markdown(
        [
            entry(
                "GET",
                "/users/{userId}",
                error_samples=[{"id": "e1", "status": 404, "body": "no\n`x`|y"}],
            ),
            entry("POST", "/v1/charges", key="stripe POST /v1/charges", service="stripe"),
        ],
        title="Docs",
        intro="From a test.",
    )
    assert text.startswith("# Docs\n\nFrom a test.\n")
    assert "## Service `app`" in text and "## Service `stripe`" in text
    assert "| GET | `/users/{userId}` | 4 | 75% | 3.0 ms | 9.5 ms | none |" in text
    assert "### `GET /users/{userId}`" in text
    # a | inside a type must not end the table cell
    assert "| `email` | string (email) \\| null | yes |" in text
    assert "| `tags` | array of string | no |" in text
    assert "- 404 (event `e1`): `no 'x'|y`" in text
    assert "curl 'http://127.0.0.1:3000/users/{userId}'" in text
    assert build_markdown([], title="Empty").endswith("No endpoints were captured.\n")


# ---- cURL ----------------------------------------------------------------------------------------


def test_curl_replays_the_sample_with_shell_quoting() -> None:
    command = curl_command(
        {
            "method": "POST",
            "url": "http://127.0.0.1:3000/api/notes?tag=a&x=1",
            "headers": [
                ["authorization", "Bearer [REDACTED]"],
                ["content-type", "application/json"],
            ],
            "body": '{"text": "it\'s"}',
        }
    )
    assert shlex.split(command.replace("\\\n", " ")) == [
        "curl",
        "-X",
        "POST",
        "http://127.0.0.1:3000/api/notes?tag=a&x=1",
        "-H",
        "authorization: Bearer [REDACTED]",
        "-H",
        "content-type: application/json",
        "--data-raw",
        '{"text": "it\'s"}',
    ]
    assert curl_command({"method": "GET", "url": "http://h/a"}) == "curl http://h/a"
