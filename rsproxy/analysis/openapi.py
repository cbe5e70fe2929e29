"""OpenAPI 3.1, Markdown docs and cURL commands built from the API catalog.

The input is the ``catalog`` report's endpoint list (rsproxy/reports/catalog.py): per endpoint
its service, method, path template, origins, call statistics, auth patterns and the contracts
the ``catalog`` stage inferred. Nothing here reads the store, so the same functions document a
live session, a replayed HAR or a stored one.

What the OpenAPI document says, and where it comes from:

* ``servers`` — the origins of the main service (``app`` when present); an operation of another
  service (Stripe, Supabase, ...) carries its own ``servers``;
* ``paths`` — one per template; each ``{name}`` is declared as a required path parameter, typed
  from the values seen (an integer id is ``integer``);
* operations — query parameters (required when every request had them), ``requestBody`` and a
  response per status code seen, with the inferred JSON Schemas (OpenAPI 3.1 schemas are JSON
  Schema 2020-12, so they are used as inferred) and one example each;
* ``security`` — a scheme per auth pattern seen (``bearer``, ``basic``, API key in a header,
  query parameter or cookie, by the name it travelled in); an endpoint called both with and
  without credentials lists ``{}`` too, meaning auth is optional.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
from http import HTTPStatus
from pathlib import Path
from typing import Any

Schema = dict[str, Any]

OPENAPI_VERSION = "3.1.0"
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_PARAM = re.compile(r"\{([^{}]*)\}")
_SCHEME_NAME = re.compile(r"[^A-Za-z0-9._-]+")


# ---- cURL --------------------------------------------------------------------------------------


def document_text(document: dict[str, Any], path: Path) -> str:
    """The document as the file ``path`` names it: YAML for ``.yaml``/``.yml``, JSON otherwise."""
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml  # only for the YAML form

        text: str = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
        return text
    return json.dumps(document, indent=2, default=str) + "\n"


def curl_command(sample: dict[str, Any]) -> str:
    """A cURL command replaying a sample request as the catalog kept it (secrets redacted)."""
    method = str(sample.get("method") or "GET").upper()
    body = sample.get("body")
    parts = ["curl"]
    if method != "GET" or body:
        parts += ["-X", method]
    parts.append(shlex.quote(str(sample.get("url") or "")))
    lines = [" ".join(parts)]
    for name, value in sample.get("headers") or ():
        lines.append(f"-H {shlex.quote(f'{name}: {value}')}")
    if body:
        lines.append(f"--data-raw {shlex.quote(str(body))}")
    return " \\\n  ".join(lines)


# ---- OpenAPI -----------------------------------------------------------------------------------


def _status_description(code: str) -> str:
    try:
        return HTTPStatus(int(code)).phrase
    except ValueError:
        return f"Status {code}"


def _operation_id(method: str, template: str, service: str, primary: str) -> str:
    words = [w for w in re.split(r"[^A-Za-z0-9]+", template) if w]
    name = method.lower() + "".join(w[:1].upper() + w[1:] for w in words)
    if service != primary:
        name = f"{_SCHEME_NAME.sub('_', service)}_{name}"
    return name or method.lower()


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}{n}", n + 1
    taken.add(candidate)
    return candidate


def _openapi_path(template: str) -> str:
    """A valid OpenAPI path: starts with ``/``, and no parameter name twice."""
    path = template if template.startswith("/") else f"/{template}"
    seen: dict[str, int] = {}

    def rename(match: re.Match[str]) -> str:
        name = match.group(1) or "param"
        seen[name] = seen.get(name, 0) + 1
        return f"{{{name}}}" if seen[name] == 1 else f"{{{name}{seen[name]}}}"

    return _PARAM.sub(rename, path)


def _properties(schema: Schema | None) -> tuple[dict[str, Schema], set[str]]:
    if not schema or "properties" not in schema:
        return {}, set()
    return dict(schema["properties"]), set(schema.get("required") or ())


class _Security:
    """Security schemes, one per auth pattern (and name) seen, shared by operations."""

    def __init__(self) -> None:
        self.schemes: dict[str, dict[str, Any]] = {}

    def requirements(self, endpoint: dict[str, Any]) -> tuple[list[dict[str, list[str]]], bool]:
        """The operation's security requirements, and whether unauthenticated calls were seen."""
        auth = endpoint.get("auth") or {}
        names = endpoint.get("auth_names") or {}
        out: list[dict[str, list[str]]] = []
        for pattern in auth:
            for scheme_name, scheme in self._schemes_for(pattern, names.get(pattern) or []):
                self.schemes.setdefault(scheme_name, scheme)
                if {scheme_name: []} not in out:
                    out.append({scheme_name: []})
        return out, "none" in auth

    @staticmethod
    def _schemes_for(pattern: str, names: list[str]) -> list[tuple[str, dict[str, Any]]]:
        if pattern == "bearer":
            return [("bearerAuth", {"type": "http", "scheme": "bearer"})]
        if pattern == "basic":
            return [("basicAuth", {"type": "http", "scheme": "basic"})]
        where = {"api_key_header": "header", "api_key_query": "query", "cookie": "cookie"}.get(
            pattern
        )
        if where is not None:
            if not names:
                names = [{"header": "x-api-key", "query": "api_key", "cookie": "session"}[where]]
            prefix = {"header": "apiKeyHeader", "query": "apiKeyQuery", "cookie": "cookieAuth"}
            return [
                (
                    f"{prefix[where]}_{_SCHEME_NAME.sub('_', name)}",
                    {"type": "apiKey", "in": where, "name": name},
                )
                for name in names
            ]
        if pattern == "none":
            return []
        return [
            (
                f"{_SCHEME_NAME.sub('_', scheme.lower())}Auth",
                {"type": "http", "scheme": scheme.lower()},
            )
            for scheme in names
        ]


def _describe_stats(endpoint: dict[str, Any]) -> str:
    parts = [f"{endpoint.get('calls', 0)} calls observed"]
    if endpoint.get("success_rate") is not None:
        parts.append(f"{endpoint['success_rate'] * 100:.0f}% successful")
    if endpoint.get("p50_ms") is not None:
        parts.append(f"p50 {endpoint['p50_ms']:.1f} ms, p95 {endpoint['p95_ms']:.1f} ms")
    return "; ".join(parts) + " (captured by rsproxy)."


def _operation(
    endpoint: dict[str, Any], path: str, security: _Security, op_id: str
) -> dict[str, Any]:
    contract = endpoint.get("contract") or {}
    operation: dict[str, Any] = {
        "operationId": op_id,
        "summary": f"{endpoint['method']} {endpoint['path_template']}",
        "description": _describe_stats(endpoint),
        "tags": [endpoint["service"]],
    }
    parameters: list[dict[str, Any]] = []
    path_types, _ = _properties((contract.get("path_params") or {}).get("schema"))
    for name in _PARAM.findall(path):
        schema = path_types.get(name) or {"type": "string"}
        parameters.append(
            {"name": name, "in": "path", "required": True, "schema": copy.deepcopy(schema)}
        )
    key_params = {n.lower() for n in (endpoint.get("auth_names") or {}).get("api_key_query", [])}
    query_types, query_required = _properties((contract.get("query") or {}).get("schema"))
    for name, schema in query_types.items():
        if name.lower() in key_params:
            continue  # declared as a security scheme instead
        parameters.append(
            {
                "name": name,
                "in": "query",
                "required": name in query_required,
                "schema": copy.deepcopy(schema),
            }
        )
    if parameters:
        operation["parameters"] = parameters

    request = contract.get("request") or {}
    content: dict[str, Any] = {}
    if request.get("schema") is not None:
        media: dict[str, Any] = {"schema": copy.deepcopy(request["schema"])}
        if request.get("example") is not None:
            media["example"] = copy.deepcopy(request["example"])
        content[request.get("media_type") or "application/json"] = media
    for media_type in endpoint.get("request_content_types") or ():
        content.setdefault(media_type, {})
    if content:
        operation["requestBody"] = {"required": bool(request.get("required")), "content": content}

    responses: dict[str, Any] = {}
    for code, response in sorted((contract.get("responses") or {}).items()):
        if not re.fullmatch(r"[1-5]\d\d", code):
            continue
        entry: dict[str, Any] = {"description": _status_description(code)}
        body_content: dict[str, Any] = {}
        if response.get("schema") is not None:
            media = {"schema": copy.deepcopy(response["schema"])}
            if response.get("example") is not None:
                media["example"] = copy.deepcopy(response["example"])
            body_content[response.get("media_type") or "application/json"] = media
        for media_type in response.get("content_types") or ():
            body_content.setdefault(media_type, {})
        if body_content:
            entry["content"] = body_content
        responses[code] = entry
    if not responses:
        responses["default"] = {"description": "No response was captured (the request failed)."}
    operation["responses"] = responses

    requirements, anonymous = security.requirements(endpoint)
    if requirements:
        operation["security"] = [*requirements, {}] if anonymous else requirements
    return operation


def build_openapi(
    endpoints: list[dict[str, Any]],
    *,
    title: str,
    version: str,
    description: str | None = None,
) -> dict[str, Any]:
    """An OpenAPI 3.1 document for catalog endpoints (the ``catalog`` report's entries)."""
    services: list[str] = []
    for endpoint in endpoints:
        if endpoint["service"] not in services:
            services.append(endpoint["service"])
    primary = "app" if "app" in services else (services[0] if services else "app")
    servers: list[str] = []
    for endpoint in endpoints:
        if endpoint["service"] == primary:
            for origin in endpoint.get("origins") or ():
                if origin not in servers:
                    servers.append(origin)

    security = _Security()
    paths: dict[str, dict[str, Any]] = {}
    shapes: dict[str, str] = {}  # /users/{} -> the path first declared with that shape
    op_ids: set[str] = set()
    skipped: list[str] = []
    for endpoint in endpoints:
        method = str(endpoint["method"]).lower()
        label = f"{endpoint['service']} {endpoint['method']} {endpoint['path_template']}"
        if method not in _METHODS:
            skipped.append(f"{label} (OpenAPI has no {endpoint['method']} operation)")
            continue
        path = _openapi_path(str(endpoint["path_template"]))
        # /users/{userId} and /users/{id} are the same path to OpenAPI: keep the first names.
        path = shapes.setdefault(_PARAM.sub("{}", path), path)
        item = paths.setdefault(path, {})
        if method in item:
            skipped.append(f"{label} (same method and path as another service's endpoint)")
            continue
        op_id = _unique(
            _operation_id(method, str(endpoint["path_template"]), endpoint["service"], primary),
            op_ids,
        )
        operation = _operation(endpoint, path, security, op_id)
        if endpoint["service"] != primary and endpoint.get("origins"):
            operation["servers"] = [{"url": origin} for origin in endpoint["origins"]]
        item[method] = operation

    text = description or "API observed by rsproxy."
    if skipped:
        text += "\n\nNot representable in OpenAPI: " + "; ".join(skipped) + "."
    document: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "version": version, "description": text},
    }
    if servers:
        document["servers"] = [{"url": origin} for origin in servers]
    document["tags"] = [{"name": service} for service in services]
    document["paths"] = dict(sorted(paths.items()))
    if security.schemes:
        document["components"] = {"securitySchemes": dict(sorted(security.schemes.items()))}
    return document


# ---- Markdown ----------------------------------------------------------------------------------


def describe_type(schema: Schema | None) -> str:
    """A schema's type in a few words: ``string (email) | null``, ``array of object``."""
    if not schema:
        return "any"
    if "anyOf" in schema:
        return " | ".join(describe_type(branch) for branch in schema["anyOf"])
    kind = schema.get("type")
    names = [kind] if isinstance(kind, str) else list(kind or [])
    out = []
    for name in names:
        if name == "string" and schema.get("format"):
            out.append(f"string ({schema['format']})")
        elif name == "array":
            items = schema.get("items")
            out.append(f"array of {describe_type(items)}" if items else "array")
        elif name == "object" and "additionalProperties" in schema:
            values = schema["additionalProperties"]
            out.append(f"map of {describe_type(values if isinstance(values, dict) else None)}")
        else:
            out.append(str(name))
    return " | ".join(out) or "any"


def schema_fields(
    schema: Schema | None, prefix: str = "", depth: int = 0, limit: int = 80
) -> list[tuple[str, str, bool]]:
    """(field path, type, required) rows for a schema's object fields, nested ones as
    ``items[].name``; at most ``limit`` rows and four levels."""
    rows: list[tuple[str, str, bool]] = []

    def walk(node: Schema | None, at: str, level: int) -> None:
        if not node or level > 4 or len(rows) >= limit:
            return
        branches = node.get("anyOf", [node])
        for branch in branches:
            if "properties" in branch:
                required = set(branch.get("required") or ())
                for name, child in branch["properties"].items():
                    if len(rows) >= limit:
                        return
                    path = f"{at}.{name}" if at else name
                    rows.append((path, describe_type(child), name in required))
                    walk(child, path, level + 1)
            items = branch.get("items")
            if isinstance(items, dict):
                walk(items, f"{at}[]" if at else "[]", level + 1)

    walk(schema, prefix, depth)
    return rows


def _cell(text: str) -> str:
    """Table cell text: a ``|`` (as in ``string | null``) would end the cell."""
    return text.replace("|", "\\|")


def _samples(n: int) -> str:
    return f"{n} sample" if n == 1 else f"{n} samples"


def _field_table(schema: Schema | None) -> list[str]:
    rows = schema_fields(schema)
    if not rows:
        return [f"Type: {describe_type(schema)}", ""]
    lines = ["| Field | Type | Required |", "|---|---|---|"]
    lines += [
        f"| `{path}` | {_cell(kind)} | {'yes' if req else 'no'} |" for path, kind, req in rows
    ]
    return [*lines, ""]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def build_markdown(endpoints: list[dict[str, Any]], *, title: str, intro: str = "") -> str:
    """API documentation in Markdown: a summary table per service, then each endpoint."""
    lines = [f"# {title}", ""]
    if intro:
        lines += [intro, ""]
    by_service: dict[str, list[dict[str, Any]]] = {}
    for endpoint in endpoints:
        by_service.setdefault(endpoint["service"], []).append(endpoint)
    if not by_service:
        lines.append("No endpoints were captured.")
        return "\n".join(lines) + "\n"
    for service, group in by_service.items():
        origins = sorted({o for e in group for o in e.get("origins") or ()})
        lines += [f"## Service `{service}`", ""]
        if origins:
            lines += ["Origins: " + ", ".join(f"`{o}`" for o in origins), ""]
        lines += [
            "| Method | Path | Calls | Success | p50 | p95 | Auth |",
            "|---|---|---|---|---|---|---|",
        ]
        for e in group:
            auth = ", ".join(e.get("auth") or {}) or "-"
            lines.append(
                f"| {e['method']} | `{e['path_template']}` | {e.get('calls', 0)} | "
                f"{_rate(e.get('success_rate'))} | {_ms(e.get('p50_ms'))} | "
                f"{_ms(e.get('p95_ms'))} | {auth} |"
            )
        lines.append("")
        for e in group:
            lines += _endpoint_section(e)
    return "\n".join(lines).rstrip() + "\n"


def _endpoint_section(e: dict[str, Any]) -> list[str]:
    contract = e.get("contract") or {}
    lines = [f"### `{e['method']} {e['path_template']}`", ""]
    codes = ", ".join(f"{code}: {n}" for code, n in (e.get("status_codes") or {}).items())
    lines += [
        f"Calls {e.get('calls', 0)} · success {_rate(e.get('success_rate'))} · "
        f"p50 {_ms(e.get('p50_ms'))} · p95 {_ms(e.get('p95_ms'))}"
        + (f" · statuses {codes}" if codes else ""),
        "",
    ]
    auth = e.get("auth") or {}
    if auth:
        names = e.get("auth_names") or {}
        described = [
            f"{pattern}" + (f" ({', '.join(names[pattern])})" if names.get(pattern) else "")
            for pattern in auth
        ]
        lines += ["Auth: " + ", ".join(described), ""]
    path_props, _ = _properties((contract.get("path_params") or {}).get("schema"))
    params = _PARAM.findall(str(e["path_template"]))
    if params:
        lines += ["**Path parameters**", "", "| Name | Type |", "|---|---|"]
        lines += [
            f"| `{p}` | {_cell(describe_type(path_props.get(p) or {'type': 'string'}))} |"
            for p in params
        ]
        lines.append("")
    query_props, query_required = _properties((contract.get("query") or {}).get("schema"))
    if query_props:
        lines += ["**Query parameters**", "", "| Name | Type | Required |", "|---|---|---|"]
        lines += [
            f"| `{n}` | {_cell(describe_type(s))} | {'yes' if n in query_required else 'no'} |"
            for n, s in query_props.items()
        ]
        lines.append("")
    request = contract.get("request") or {}
    if request.get("schema") is not None:
        lines += [
            f"**Request body** (`{request.get('media_type') or 'application/json'}`, "
            f"{_samples(request.get('samples', 0))})",
            "",
            *_field_table(request["schema"]),
        ]
    responses = contract.get("responses") or {}
    if responses:
        lines += ["**Responses**", ""]
        for code, response in responses.items():
            types = ", ".join(f"`{t}`" for t in response.get("content_types") or ()) or "no body"
            lines += [f"`{code}` {_status_description(code)} — {types}", ""]
            if response.get("schema") is not None:
                lines += _field_table(response["schema"])
    errors = e.get("error_samples") or []
    if errors:
        lines += ["**Error samples**", ""]
        for sample in errors:
            detail = " ".join(str(sample.get("body") or sample.get("error") or "").split())
            detail = detail.replace("`", "'")
            lines.append(
                f"- {sample.get('status') or 'no response'} (event `{sample['id']}`)"
                + (f": `{detail}`" if detail else "")
            )
        lines.append("")
    if e.get("sample_request"):
        lines += ["**Example request** (secrets redacted)", "", "```bash"]
        lines += [curl_command(e["sample_request"]), "```", ""]
    return lines
