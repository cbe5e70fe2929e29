"""The ``export_har`` report (rsproxy/reports/export.py) over a real capture through Chromium.

A fixture shop runs behind a real ``rsproxy start``; Chromium loads its page (which loads an
image), fetches a list whose response sets two cookies and a duplicated header, POSTs JSON with
an ``Authorization`` header and a password, gets a 500 and a connection the server drops, then
navigates to a second page. The export, taken live through the daemon and again from the store
after the daemon stopped, must carry exactly that traffic with the secrets redacted, the image
in base64, each entry tied to the page view it belongs to, valid timings, and it must validate
against the HAR 1.2 JSON Schemas of the npm ``har-schema`` package (fixtures/har_schema,
installed with ``npm ci`` from its lockfile).
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from aiohttp import web
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT6

from rsproxy.client import open_reader
from rsproxy.errors import ReportError
from rsproxy.project import Project
from rsproxy.testing import DaemonProcess, LoopbackServer, npm_install

PROJECT = "harcap"
HAR_SCHEMA = Path(__file__).resolve().parents[2] / "fixtures" / "har_schema"
SECRETS = ("SECRET-TOKEN-123", "hunter2", "server-secret-cookie", "theme-secret-value")
PAGE = (
    # An empty icon, so Chromium asks for no /favicon.ico and the traffic is exactly the page's.
    '<!doctype html><html><head><title>HAR export fixture</title><link rel="icon" href="data:,">'
    "</head>"
    '<body><h1>shop</h1><img id="logo" src="/logo.png" alt="logo"></body></html>'
)
SECOND = (
    '<!doctype html><html><head><title>Second</title><link rel="icon" href="data:,"></head>'
    "<body>two</body></html>"
)
TRAFFIC = """async () => {
  const out = {};
  const list = await fetch('/api/items?q=a&q=b');
  out.list = list.status; await list.json();
  const made = await fetch('/api/items', {
    method: 'POST',
    headers: {'Content-Type': 'application/json', 'Authorization': 'Bearer SECRET-TOKEN-123'},
    body: JSON.stringify({name: 'widget', password: 'hunter2'}),
  });
  out.made = made.status; await made.json();
  out.fail = (await fetch('/api/fail')).status;
  try { out.broken = (await fetch('/api/broken')).status; } catch (e) { out.broken = 'failed'; }
  return out;
}"""


def png() -> bytes:
    """A valid 1x1 PNG: binary (it holds NUL bytes), small enough for the capture to keep."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


LOGO = png()


def shop() -> web.Application:
    app = web.Application()

    async def index(_request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    async def second(_request: web.Request) -> web.Response:
        return web.Response(text=SECOND, content_type="text/html")

    async def logo(_request: web.Request) -> web.Response:
        return web.Response(body=LOGO, content_type="image/png")

    async def items(request: web.Request) -> web.Response:
        if request.method == "POST":
            sent = await request.json()
            return web.json_response({"id": 7, "name": sent["name"]}, status=201)
        response = web.json_response({"items": [{"id": 1}, {"id": 2}]})
        # Duplicate headers must survive as separate name/value pairs, in order.
        response.headers.add("Set-Cookie", "sid=server-secret-cookie; Path=/; HttpOnly")
        response.headers.add("Set-Cookie", "theme=theme-secret-value; Path=/")
        response.headers.add("X-Dup", "one")
        response.headers.add("X-Dup", "two")
        return response

    async def fail(_request: web.Request) -> web.Response:
        return web.json_response({"error": "boom"}, status=500)

    async def broken(request: web.Request) -> web.Response:
        # The connection dies before any response: the proxy records an exchange that failed.
        assert request.transport is not None
        request.transport.abort()
        await asyncio.sleep(0)
        return web.Response(text="never sent")

    app.router.add_get("/", index)
    app.router.add_get("/second", second)
    app.router.add_get("/logo.png", logo)
    app.router.add_route("*", "/api/items", items)
    app.router.add_get("/api/fail", fail)
    app.router.add_get("/api/broken", broken)
    return app


# ---- the HAR 1.2 schema -----------------------------------------------------------------------


def install_har_schema() -> Path:
    """fixtures/har_schema's ``har-schema`` package: its schema folder."""
    lib = npm_install(HAR_SCHEMA, "har schema tests") / "har-schema" / "lib"
    if not (lib / "har.json").exists():
        pytest.fail(f"{lib / 'har.json'} is missing after `npm ci`")
    return lib


def har_validator(lib: Path) -> jsonschema.protocols.Validator:
    """A validator for ``har.json`` with every sibling schema resolvable by its ``$id``."""
    schemas = {p.name: json.loads(p.read_text()) for p in lib.glob("*.json")}
    assert {s["$schema"] for s in schemas.values()} == {"http://json-schema.org/draft-06/schema#"}
    registry: Registry[Any] = Registry().with_resources(
        (name, Resource.from_contents(schema, default_specification=DRAFT6))
        for name, schema in schemas.items()
    )
    return jsonschema.Draft6Validator(
        schemas["har.json"],
        registry=registry,
        format_checker=jsonschema.Draft6Validator.FORMAT_CHECKER,
    )


# ---- the capture ------------------------------------------------------------------------------


def _export(**params: Any) -> Any:
    reader = open_reader(Project.resolve(PROJECT))
    try:
        return reader.report("export_har", **params)
    finally:
        reader.close()


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[dict[str, Any]]:
    """One real capture; its exports live (daemon running) and stored (daemon stopped)."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RSPROXY_HOME", str(home))
        with (
            LoopbackServer(shop) as upstream,
            DaemonProcess(home, "--target", f":{upstream.port}", project=PROJECT) as daemon,
        ):
            context = browser.new_context()
            page = context.new_page()
            page.set_default_timeout(15_000)
            page.goto(daemon.proxy_url + "/")
            outcome = page.evaluate(TRAFFIC)
            page.goto(daemon.proxy_url + "/second")
            wanted = {"/", "/logo.png", "/api/items", "/api/fail", "/api/broken", "/second"}
            daemon.wait_for_events(
                lambda evs: (
                    wanted <= {e["data"]["path"] for e in evs}
                    and sum(e["data"]["path"] == "/api/items" for e in evs) == 2
                ),
                kind="http",
            )
            views = daemon.wait_for_events(lambda evs: len(evs) >= 2, kind="page_view")
            context.close()
            live = _export()
            live_no_bodies = _export(include_bodies=False)
            first_two = _export(limit=2)
        stored = _export()
        with pytest.raises(ReportError, match="no session 'nope'"):
            _export(session="nope")
        yield {
            "outcome": outcome,
            "views": views,
            "live": live,
            "live_no_bodies": live_no_bodies,
            "first_two": first_two,
            "stored": stored,
        }


def _entries(har: dict[str, Any], path: str, method: str = "GET") -> list[dict[str, Any]]:
    return [
        e
        for e in har["log"]["entries"]
        if e["request"]["url"].split("?")[0].endswith(path)
        and e["request"]["method"] == method
        and (path != "/" or e["request"]["url"].split("//", 1)[1].count("/") == 1)
    ]


def _one(har: dict[str, Any], path: str, method: str = "GET") -> dict[str, Any]:
    found = _entries(har, path, method)
    assert len(found) == 1, (path, method, [e["request"]["url"] for e in found])
    return found[0]


def _header_values(message: dict[str, Any], name: str) -> list[str]:
    return [h["value"] for h in message["headers"] if h["name"].lower() == name]


# ---- the tests --------------------------------------------------------------------------------


@pytest.mark.browser
def test_the_export_validates_against_the_har_1_2_schema(capture: dict[str, Any]) -> None:
    validator = har_validator(install_har_schema())
    for har in (capture["live"], capture["stored"], capture["live_no_bodies"]):
        errors = sorted(validator.iter_errors(har), key=str)
        assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]]
    # The validator is not vacuous: an entry without its request's method fails it.
    broken = copy.deepcopy(capture["live"])
    del broken["log"]["entries"][0]["request"]["method"]
    assert not validator.is_valid(broken)


@pytest.mark.browser
def test_the_entries_are_the_traffic_the_page_made(capture: dict[str, Any]) -> None:
    har = capture["live"]
    log = har["log"]
    # The proxy answers the dropped connection with a 502 of its own; the exchange with the
    # server got no response, and the export says so (status 0, as browsers export it).
    assert capture["outcome"] == {"list": 200, "made": 201, "fail": 500, "broken": 502}
    assert log["version"] == "1.2" and log["creator"]["name"] == "rsproxy"
    seen = [
        (e["request"]["method"], e["request"]["url"].split("/", 3)[3], e["response"]["status"])
        for e in log["entries"]
    ]
    expected = {
        ("GET", "", 200),
        ("GET", "logo.png", 200),
        ("GET", "api/items?q=a&q=b", 200),
        ("POST", "api/items", 201),
        ("GET", "api/fail", 500),
        ("GET", "api/broken", 0),
        ("GET", "second", 200),
    }
    assert sorted(seen) == sorted(expected)
    starts = [e["startedDateTime"] for e in log["entries"]]
    assert starts == sorted(starts)
    assert log["_rsproxy"] == {
        "session": log["_rsproxy"]["session"],
        "entries": len(seen),
        "truncated": False,
    }

    listed = _one(har, "/api/items")
    assert listed["request"]["queryString"] == [
        {"name": "q", "value": "a"},
        {"name": "q", "value": "b"},
    ]
    assert _header_values(listed["response"], "x-dup") == ["one", "two"]
    assert len(_header_values(listed["response"], "set-cookie")) == 2
    assert [(c["name"], c["value"]) for c in listed["response"]["cookies"]] == [
        ("sid", "[REDACTED]"),
        ("theme", "[REDACTED]"),
    ]
    assert listed["response"]["cookies"][0]["httpOnly"] is True
    assert json.loads(listed["response"]["content"]["text"]) == {"items": [{"id": 1}, {"id": 2}]}
    assert listed["_rsproxy"]["service"] and listed["_rsproxy"]["path_template"] == "/api/items"

    made = _one(har, "/api/items", "POST")
    post = made["request"]["postData"]
    assert post["mimeType"] == "application/json"
    assert json.loads(post["text"])["name"] == "widget"
    assert made["request"]["bodySize"] == len(
        json.dumps({"name": "widget", "password": "hunter2"}, separators=(",", ":"))
    )
    # After the list set it, the browser sends the session cookie back (redacted).
    assert ("sid", "[REDACTED]") in {(c["name"], c["value"]) for c in made["request"]["cookies"]}

    failed = _one(har, "/api/broken")
    assert failed["response"]["status"] == 0 and failed["response"]["_error"]
    assert failed["response"]["headers"] == []
    assert _one(har, "/api/fail")["response"]["statusText"] == "Internal Server Error"


@pytest.mark.browser
def test_secrets_stay_redacted_and_the_probe_is_not_in_the_document(
    capture: dict[str, Any],
) -> None:
    har = capture["live"]
    text = json.dumps(har)
    for secret in SECRETS:
        assert secret not in text, secret
    made = _one(har, "/api/items", "POST")
    assert _header_values(made["request"], "authorization") == ["Bearer [REDACTED]"]
    assert json.loads(made["request"]["postData"]["text"])["password"] != "hunter2"

    document = _one(har, "/")["response"]["content"]
    assert document["text"] == PAGE  # exactly what the server sent: no probe tag injected
    assert "__rsproxy" not in document["text"]


@pytest.mark.browser
def test_the_binary_image_is_base64(capture: dict[str, Any]) -> None:
    content = _one(capture["live"], "/logo.png")["response"]["content"]
    assert content["encoding"] == "base64" and content["mimeType"] == "image/png"
    assert base64.b64decode(content["text"]) == LOGO
    assert content["size"] == len(LOGO)


@pytest.mark.browser
def test_pages_come_from_the_page_views_and_entries_point_at_them(
    capture: dict[str, Any],
) -> None:
    har = capture["live"]
    pages = har["log"]["pages"]
    views = {v["data"]["url"].rsplit("/", 1)[1]: v["page_id"] for v in capture["views"]}
    assert [p["id"] for p in pages] == [views[""], views["second"]]
    assert [p["title"] for p in pages] == ["HAR export fixture", "Second"]
    first, second = pages
    # A page starts with its document request, and the probe's view came at DOMContentLoaded.
    assert first["startedDateTime"] == _one(har, "/")["startedDateTime"]
    assert first["pageTimings"]["onContentLoad"] >= 0
    for path, method in [
        ("/", "GET"),
        ("/logo.png", "GET"),  # an <img>: tied by its Referer
        ("/api/items", "GET"),  # fetches: tied by the probe's correlation header
        ("/api/items", "POST"),
        ("/api/fail", "GET"),
        ("/api/broken", "GET"),
    ]:
        assert _one(har, path, method).get("pageref") == first["id"], path
    assert _one(har, "/second")["pageref"] == second["id"]


@pytest.mark.browser
def test_timings_are_valid_har_timings(capture: dict[str, Any]) -> None:
    for entry in capture["live"]["log"]["entries"]:
        t = entry["timings"]
        assert set(t) == {"blocked", "dns", "connect", "ssl", "send", "wait", "receive"}
        assert all(t[k] >= 0 for k in ("send", "wait", "receive")), t
        assert all(v == -1 or v >= 0 for v in t.values()), t
        phases = sum(v for k, v in t.items() if k != "ssl" and v > 0)
        assert entry["time"] == pytest.approx(phases, abs=0.01)
    assert _one(capture["live"], "/api/items", "POST")["time"] > 0


@pytest.mark.browser
def test_the_store_gives_the_same_export_without_a_daemon(capture: dict[str, Any]) -> None:
    assert capture["stored"] == capture["live"]


@pytest.mark.browser
def test_bodies_can_be_left_out(capture: dict[str, Any]) -> None:
    har = capture["live_no_bodies"]
    assert len(har["log"]["entries"]) == len(capture["live"]["log"]["entries"])
    for entry in har["log"]["entries"]:
        assert "text" not in entry["response"]["content"]
        assert "text" not in entry["request"].get("postData", {})
    assert _one(har, "/logo.png")["response"]["content"]["size"] == len(LOGO)


@pytest.mark.browser
def test_a_limit_keeps_the_earliest_entries_and_says_it_truncated(
    capture: dict[str, Any],
) -> None:
    log = capture["first_two"]["log"]
    assert log["entries"] == capture["live"]["log"]["entries"][:2]
    assert log["_rsproxy"]["truncated"] is True
    assert capture["live"]["log"]["_rsproxy"]["truncated"] is False
