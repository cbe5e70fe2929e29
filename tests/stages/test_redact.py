"""The ``redact`` stage (rsproxy/stages/redact.py): planted secrets never survive it.

Each test plants a secret where real traffic carries one and asserts that the secret string is
absent from ``json.dumps(event.data)`` afterwards, and that the harmless values around it stay,
so a stage that blanked everything would fail as surely as one that leaked.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from rsproxy.events import Event
from rsproxy.pipeline.engine import Pipeline
from rsproxy.pipeline.spec import default_pipeline_path, load_spec, parse_spec
from rsproxy.pipeline.stage import StageContext
from rsproxy.stages.redact import Redact, RedactConfig
from rsproxy.store import Store

MASK = "[REDACTED]"
SECRET = "s3cr3t-VALUE-9f8e7d"


def _redact(event: Event, **config: Any) -> Event:
    stage = Redact(RedactConfig(**config), StageContext(project="test", session_id="s1"))
    out = stage.handle(event)
    assert out is event  # redact changes events in place and always passes them on
    return out


def _http(**data: Any) -> Event:
    base: dict[str, Any] = {
        "method": "GET",
        "url": "http://127.0.0.1:3000/api/items",
        "host": "127.0.0.1",
        "path": "/api/items",
        "query": "",
        "status": 200,
        "request_headers": [["host", "127.0.0.1:3000"], ["accept", "application/json"]],
        "response_headers": [["content-type", "application/json"]],
    }
    base.update(data)
    return Event(kind="http", data=base, session_id="s1")


def _dumped(event: Event) -> str:
    return json.dumps(event.data)


def _header(event: Event, side: str, name: str) -> str:
    values = [v for n, v in event.data[f"{side}_headers"] if n.lower() == name.lower()]
    assert len(values) == 1, values
    return values[0]


def _post(body: str, content_type: str | None = "application/json", **extra: Any) -> Event:
    return _http(
        method="POST",
        request_body=body,
        request_body_encoding="text",
        request_content_type=content_type,
        **extra,
    )


# ---- headers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["Bearer", "Basic", "Token", "Digest"])
def test_authorization_keeps_its_scheme(scheme: str) -> None:
    event = _redact(
        _http(request_headers=[["Authorization", f"{scheme} {SECRET}"], ["Accept", "text/html"]])
    )
    assert _header(event, "request", "authorization") == f"{scheme} {MASK}"
    assert _header(event, "request", "accept") == "text/html"
    assert SECRET not in _dumped(event)


def test_authorization_without_a_scheme_is_masked_whole() -> None:
    event = _redact(_http(request_headers=[["authorization", SECRET]]))
    assert _header(event, "request", "authorization") == MASK


def test_proxy_authorization_keeps_its_scheme() -> None:
    event = _redact(_http(request_headers=[["Proxy-Authorization", f"Basic {SECRET}"]]))
    assert _header(event, "request", "proxy-authorization") == f"Basic {MASK}"


def test_cookie_keeps_names_and_loses_values() -> None:
    event = _redact(_http(request_headers=[["Cookie", f"sid={SECRET}; theme=dark; csrf=abc123"]]))
    assert _header(event, "request", "cookie") == f"sid={MASK}; theme={MASK}; csrf={MASK}"
    assert SECRET not in _dumped(event)


def test_set_cookie_keeps_name_and_attributes() -> None:
    value = f"session={SECRET}; Path=/; Expires=Wed, 21 Oct 2099 07:28:00 GMT; HttpOnly; Secure"
    event = _redact(_http(response_headers=[["Set-Cookie", value], ["set-cookie", "plain"]]))
    cookies = [v for n, v in event.data["response_headers"] if n.lower() == "set-cookie"]
    assert cookies[0] == (
        f"session={MASK}; Path=/; Expires=Wed, 21 Oct 2099 07:28:00 GMT; HttpOnly; Secure"
    )
    assert cookies[1] == MASK  # a value without a name is masked whole
    assert SECRET not in _dumped(event)


@pytest.mark.parametrize(
    "name",
    [
        "x-api-key",
        "X-API-KEY",
        "X-Auth-Token",
        "x-csrf-token",
        "X-Client-Secret",
        "X-Refresh-Token",
        "x-upstream-password",
    ],
)
def test_configured_headers_and_headers_naming_a_body_key(name: str) -> None:
    event = _redact(_http(request_headers=[[name, SECRET], ["X-Request-Id", "req-77"]]))
    assert _header(event, "request", name) == MASK
    assert _header(event, "request", "x-request-id") == "req-77"
    assert SECRET not in _dumped(event)


def test_custom_header_list() -> None:
    event = _redact(
        _http(request_headers=[["X-Tenant", SECRET], ["X-Trace", "t-1"]]), headers=["x-tenant"]
    )
    assert _header(event, "request", "x-tenant") == MASK
    assert _header(event, "request", "x-trace") == "t-1"


def test_header_names_keep_their_case() -> None:
    event = _redact(_http(request_headers=[["Authorization", f"Bearer {SECRET}"]]))
    assert event.data["request_headers"][0][0] == "Authorization"


# ---- query parameters --------------------------------------------------------------------------------


def test_query_parameters_in_url_and_query() -> None:
    event = _redact(
        _http(
            url=f"http://127.0.0.1:3000/api/items?page=2&token={SECRET}&sort=name#top",
            query=f"page=2&token={SECRET}&sort=name",
        )
    )
    assert SECRET not in _dumped(event)
    assert event.data["url"].startswith("http://127.0.0.1:3000/api/items?page=2&token=")
    assert event.data["url"].endswith("&sort=name#top")
    assert "page=2" in event.data["query"] and "sort=name" in event.data["query"]


@pytest.mark.parametrize(
    "param",
    [
        "api_key",
        "apiKey",
        "API-KEY",
        "access_token",
        "accessToken",
        "sig",
        "code",
        "password",
        "api%5Fkey",
    ],
)
def test_query_parameter_names_are_normalised(param: str) -> None:
    event = _redact(_http(url=f"http://h/p?{param}={SECRET}&keep=yes", query=f"{param}={SECRET}"))
    assert SECRET not in _dumped(event)
    assert "keep=yes" in event.data["url"]


def test_query_parameters_match_exactly_not_by_substring() -> None:
    event = _redact(_http(url="http://h/p?monkey=banana&keyboard=qwerty"))
    assert event.data["url"] == "http://h/p?monkey=banana&keyboard=qwerty"


def test_query_parameters_in_referer_and_location() -> None:
    event = _redact(
        _http(
            request_headers=[["Referer", f"http://127.0.0.1:3000/login?next=/home&token={SECRET}"]],
            response_headers=[
                ["Location", f"/callback?code={SECRET}&state=xyz"],
                ["Content-Location", f"/doc?api_key={SECRET}"],
            ],
        )
    )
    assert SECRET not in _dumped(event)
    assert "next=/home" in _header(event, "request", "referer")
    assert _header(event, "response", "location").startswith("/callback?code=")
    assert "state=xyz" in _header(event, "response", "location")


def test_custom_query_params() -> None:
    event = _redact(_http(url=f"http://h/p?session={SECRET}&token=kept"), query_params=["session"])
    assert SECRET not in _dumped(event)
    assert "token=kept" in event.data["url"]


def test_secrets_in_an_oauth_fragment() -> None:
    url = f"http://app.test/callback#access_token={SECRET}&token_type=bearer&state=xyz"
    event = _redact(Event(kind="page_view", data={"url": url, "title": "Signed in"}))
    assert SECRET not in _dumped(event)
    assert "state=xyz" in event.data["url"]


def test_secrets_in_a_hash_router_query() -> None:
    url = f"http://app.test/#/reset-password?token={SECRET}"
    event = _redact(Event(kind="page_view", data={"url": url, "title": "Reset"}))
    assert SECRET not in _dumped(event)


def test_url_with_several_parameters_under_any_key() -> None:
    event = _redact(Event(kind="custom", data={"next": f"http://x.test/cb?token={SECRET}&a=1"}))
    assert SECRET not in _dumped(event)
    assert "a=1" in event.data["next"]


def test_url_with_one_secret_parameter_under_any_key() -> None:
    event = _redact(Event(kind="custom", data={"next": f"http://x.test/cb?token={SECRET}"}))
    assert SECRET not in _dumped(event)


# ---- JSON bodies ---------------------------------------------------------------------------------------


def test_json_body_keys_at_any_depth() -> None:
    body = {
        "user": "alice",
        "password": SECRET,
        "profile": {"nickname": "al", "credentials": {"api_key": SECRET + "1"}},
        "devices": [
            {"name": "phone", "token": SECRET + "2"},
            {"name": "laptop", "refresh_token": SECRET + "3"},
        ],
        "matrix": [[{"client_secret": SECRET + "4"}]],
        "count": 3,
    }
    event = _redact(_post(json.dumps(body)))
    assert SECRET not in _dumped(event)
    redacted = json.loads(event.data["request_body"])
    assert redacted["user"] == "alice"
    assert redacted["password"] == MASK
    assert redacted["profile"]["nickname"] == "al"
    assert redacted["profile"]["credentials"]["api_key"] == MASK
    assert [d["name"] for d in redacted["devices"]] == ["phone", "laptop"]
    assert redacted["count"] == 3


@pytest.mark.parametrize(
    "key",
    [
        "apiKey",
        "API-KEY",
        "api_key",
        "Api_Key",
        "newPassword",
        "X-Access-Token",
        "PASSWORD",
        "clientSecret",
    ],
)
def test_json_keys_match_ignoring_case_dashes_and_underscores(key: str) -> None:
    event = _redact(_post(json.dumps({key: SECRET, "keep": "me"})))
    assert SECRET not in _dumped(event)
    assert json.loads(event.data["request_body"]) == {key: MASK, "keep": "me"}


def test_response_json_body_is_redacted_too() -> None:
    event = _redact(
        _http(
            response_body=json.dumps({"access_token": SECRET, "expires_in": 3600}),
            response_body_encoding="text",
            response_content_type="application/json",
        )
    )
    assert SECRET not in _dumped(event)
    assert json.loads(event.data["response_body"])["expires_in"] == 3600


def test_top_level_json_array_body() -> None:
    event = _redact(_post(json.dumps([{"id": 1, "secret": SECRET}, {"id": 2}])))
    assert SECRET not in _dumped(event)
    assert [item["id"] for item in json.loads(event.data["request_body"])] == [1, 2]


def test_json_body_without_a_json_content_type() -> None:
    event = _redact(_post(json.dumps({"token": SECRET, "a": 1}), content_type=None))
    assert SECRET not in _dumped(event)


def test_body_without_secret_keys_is_left_byte_for_byte() -> None:
    body = '{"name":   "alice",\n "tags": ["a", "b"]}'
    event = _redact(_post(body))
    assert event.data["request_body"] == body


@pytest.mark.parametrize(
    "body",
    [
        '{"user": "bob", "password": "' + SECRET,  # cut inside the value
        '{"user": "bob", "password": "' + SECRET + '", "next": "x',  # cut after it
        '{"user": "bob", "apiKey":"' + SECRET,
        '{"n": [1, 2], "refresh_token": "' + SECRET + '", "more": [{"a": ',
        '{"user": "bob", "pin": 1, "token": ' + "123456789",  # a number value
    ],
)
def test_truncated_json_still_loses_its_secret(body: str) -> None:
    secret = SECRET if SECRET in body else "123456789"
    event = _redact(_post(body, request_body_truncated=True))
    assert secret not in _dumped(event)
    assert (
        '"user": "bob"' in event.data["request_body"]
        or '"n": [1, 2]' in (event.data["request_body"])
    )


def test_truncated_json_cut_inside_an_escape() -> None:
    body = '{"user": "bob", "password": "' + SECRET + "\\"
    event = _redact(_post(body, request_body_truncated=True))
    assert SECRET not in _dumped(event)


def test_truncated_json_with_an_array_under_a_secret_key() -> None:
    body = '{"user": "bob", "api_keys": ["' + SECRET + '", "' + SECRET + '2"'
    event = _redact(_post(body, request_body_truncated=True))
    assert SECRET not in _dumped(event)


def test_json_key_with_unicode_escapes() -> None:
    event = _redact(_post('{"user": "bob", "p\\u0061ssword": "' + SECRET + '"}'))
    assert SECRET not in _dumped(event)


def test_a_body_that_reflects_request_headers() -> None:
    # An echo endpoint answers with the headers it was sent, as keys of a JSON object.
    body = json.dumps(
        {
            "headers": {
                "Authorization": f"Bearer {SECRET}",
                "Cookie": f"sid={SECRET}",
                "X-Api-Key": SECRET,
                "Accept": "*/*",
            }
        }
    )
    event = _redact(
        _http(
            response_body=body,
            response_body_encoding="text",
            response_content_type="application/json",
        )
    )
    assert SECRET not in _dumped(event)
    assert json.loads(event.data["response_body"])["headers"]["Accept"] == "*/*"


def test_json_and_forms_inside_string_values() -> None:
    body = json.dumps(
        {
            "logged_body": json.dumps({"user": "bob", "password": SECRET}),
            "raw_form": f"user=bob&client_secret={SECRET}",
            "note": "short",
        }
    )
    event = _redact(_post(body))
    assert SECRET not in _dumped(event)
    redacted = json.loads(event.data["request_body"])
    assert json.loads(redacted["logged_body"])["user"] == "bob"
    assert "user=bob" in redacted["raw_form"]
    assert redacted["note"] == "short"


# ---- form bodies ----------------------------------------------------------------------------------------


def test_urlencoded_form_body() -> None:
    body = f"username=alice&password={SECRET}&remember=on&new_password={SECRET}2"
    event = _redact(_post(body, content_type="application/x-www-form-urlencoded"))
    assert SECRET not in _dumped(event)
    redacted = event.data["request_body"]
    assert "username=alice" in redacted and "remember=on" in redacted


def test_form_like_body_without_content_type() -> None:
    event = _redact(_post(f"user=alice&token={SECRET}", content_type=None))
    assert SECRET not in _dumped(event)
    assert "user=alice" in event.data["request_body"]


def test_multipart_form_body() -> None:
    boundary = "----WebKitFormBoundary7MA4YWxkTrZu0gW"
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="username"\r\n\r\n'
        "alice\r\n"
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="password"\r\n\r\n'
        f"{SECRET}\r\n"
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="avatar"; filename="token.txt"\r\n'
        "Content-Type: text/plain\r\n\r\n"
        "just a picture\r\n"
        f"--{boundary}--\r\n"
    )
    event = _redact(_post(body, content_type=f"multipart/form-data; boundary={boundary}"))
    assert SECRET not in _dumped(event)
    redacted = event.data["request_body"]
    assert "alice" in redacted
    assert "just a picture" in redacted  # a file *named* token.txt is not a secret field
    assert redacted.count(f"--{boundary}") == 4


def test_truncated_multipart_body() -> None:
    body = (
        '--XyZ\r\nContent-Disposition: form-data; name="user"\r\n\r\nalice\r\n'
        f'--XyZ\r\nContent-Disposition: form-data; name="password"\r\n\r\n{SECRET}'
    )
    event = _redact(
        _post(body, content_type="multipart/form-data; boundary=XyZ", request_body_truncated=True)
    )
    assert SECRET not in _dumped(event)


# ---- bodies left alone -----------------------------------------------------------------------------------


def test_base64_bodies_are_untouched() -> None:
    raw = base64.b64encode(b'\x00\x01{"password": "not really"}').decode()
    event = _redact(
        _http(
            response_body=raw,
            response_body_encoding="base64",
            response_content_type="application/octet-stream",
            request_body=raw,
            request_body_encoding="base64",
        )
    )
    assert event.data["response_body"] == raw
    assert event.data["request_body"] == raw


def test_plain_text_that_mentions_a_key_is_untouched() -> None:
    body = "Forgot your password? We will email you a reset link."
    event = _redact(_post(body, content_type="text/plain"))
    assert event.data["request_body"] == body


# ---- other kinds --------------------------------------------------------------------------------------------


def test_page_view_urls() -> None:
    event = _redact(
        Event(
            kind="page_view",
            data={
                "url": f"http://app.test/welcome?token={SECRET}&tab=home",
                "referrer": f"http://idp.test/authorize?client_id=app&code={SECRET}",
                "title": "Welcome",
                "navigation": "load",
            },
        )
    )
    assert SECRET not in _dumped(event)
    assert event.data["url"].startswith("http://app.test/welcome?token=")
    assert "tab=home" in event.data["url"]
    assert "client_id=app" in event.data["referrer"]
    assert event.data["title"] == "Welcome"


def test_custom_event_with_nested_secret_keys() -> None:
    event = _redact(
        Event(
            kind="custom",
            data={
                "name": "signup",
                "detail": {
                    "form": {"email": "a@b.test", "password": SECRET},
                    "steps": [{"n": 1}, {"n": 2, "otp_secret": SECRET}],
                    "links": [{"href": f"http://x.test/?api_key={SECRET}", "text": "docs"}],
                },
            },
        )
    )
    assert SECRET not in _dumped(event)
    assert event.data["detail"]["form"]["email"] == "a@b.test"
    assert event.data["detail"]["steps"][0] == {"n": 1}
    assert event.data["detail"]["links"][0]["text"] == "docs"


def test_error_source_url_is_redacted() -> None:
    event = _redact(
        Event(
            kind="error",
            data={
                "message": "boom",
                "source": f"http://app.test/main.js?sig={SECRET}",
                "line": 3,
            },
        )
    )
    assert SECRET not in _dumped(event)
    assert event.data["message"] == "boom" and event.data["line"] == 3


def test_null_secret_values_stay_null() -> None:
    event = _redact(Event(kind="state", data={"token": None, "user": "bob"}))
    assert event.data == {"token": None, "user": "bob"}


def test_ws_message_text_and_url() -> None:
    event = _redact(
        Event(
            kind="ws_message",
            data={
                "url": f"ws://127.0.0.1:3000/socket?token={SECRET}",
                "direction": "client",
                "opcode": "text",
                "text": json.dumps({"type": "auth", "token": SECRET, "room": "lobby"}),
            },
        )
    )
    assert SECRET not in _dumped(event)
    assert json.loads(event.data["text"])["room"] == "lobby"
    assert event.data["direction"] == "client"


def test_ws_message_framed_json_is_redacted() -> None:
    # socket.io frames a JSON array behind a numeric packet type.
    event = _redact(
        Event(
            kind="ws_message",
            data={
                "url": "ws://127.0.0.1:3000/socket.io/",
                "opcode": "text",
                "text": '42["login",{"user":"bob","password":"' + SECRET + '"}]',
            },
        )
    )
    assert SECRET not in _dumped(event)
    assert '"user":"bob"' in event.data["text"]


def test_binary_ws_message_is_left_alone() -> None:
    event = _redact(
        Event(
            kind="ws_message",
            data={"url": "ws://h/s", "opcode": "binary", "text": None, "size": 10},
        )
    )
    assert event.data == {"url": "ws://h/s", "opcode": "binary", "text": None, "size": 10}


# ---- configuration ------------------------------------------------------------------------------------------


def test_custom_replacement_text() -> None:
    event = _redact(_post(json.dumps({"password": SECRET})), replacement="***")
    assert json.loads(event.data["request_body"]) == {"password": "***"}


def test_empty_body_keys_redact_no_body_keys() -> None:
    event = _redact(_post(json.dumps({"password": "visible"})), body_keys=[])
    assert json.loads(event.data["request_body"]) == {"password": "visible"}


def test_redact_from_the_default_pipeline_file() -> None:
    spec = parse_spec(
        "version: 1\nstages:\n  - type: redact\n    body_keys: [pin]\n  - type: persist\n",
        "inline",
    )
    stage_spec = spec.stages[0]
    stage = stage_spec.cls(stage_spec.config, StageContext("p", "s"))
    event = stage.handle(_post(json.dumps({"pin": "1234", "password": "shown"})))
    assert event is not None
    assert json.loads(event.data["request_body"]) == {"pin": MASK, "password": "shown"}


# ---- failing closed ----------------------------------------------------------------------------------


def _deep_body(depth: int) -> str:
    return '{"password": "' + SECRET + '", "tree": ' + "[" * depth + "]" * depth + "}"


@pytest.mark.parametrize("depth", [600, 5_000])
def test_a_deeply_nested_json_body_is_still_redacted(depth: int) -> None:
    event = _redact(_post(_deep_body(depth)))
    assert SECRET not in _dumped(event)


@pytest.mark.parametrize("depth", [600, 5_000])
def test_the_default_pipeline_never_stores_a_secret_when_redact_fails(
    tmp_path: Path, depth: int
) -> None:
    store = Store.open(tmp_path / "store.duckdb")
    try:
        pipeline = Pipeline(load_spec(default_pipeline_path()), StageContext("p", "s1", store))
        event = _post(
            _deep_body(depth),
            response_headers=[["Set-Cookie", f"sid={SECRET}-cookie; Path=/; HttpOnly"]],
        )
        pipeline.run([event])
        pipeline.close()
        stored = json.dumps(store.query("SELECT * FROM http"), default=str)
        assert SECRET not in stored
    finally:
        store.close()


# ---- fast paths and caches -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "S_e-C_r-E_t",
        "refreshToken",
        "ACCESS-TOKEN",
        "x_api_key",
        "proxyAuthorization",
        "to\u212aen",
    ],
)
def test_the_quick_scan_of_probe_payloads_misses_no_secret_key(key: str) -> None:
    # The scan looks for a word only when its rarest letter is present, and for the shortest
    # words alone (token for access_token); split, cased or non-ASCII spellings must still hit.
    event = _redact(Event(kind="console", data={"level": "log", "args": [{key: SECRET}]}))
    assert SECRET not in _dumped(event)
    assert event.data["level"] == "log"


def test_a_probe_payload_with_keys_that_are_not_strings_is_still_scanned() -> None:
    # The quick encoding refuses non-string keys; the retry with them must still see the secret.
    event = _redact(Event(kind="custom", data={1: "one", "nested": {"password": SECRET}}))
    assert SECRET not in json.dumps(event.data)
    assert event.data[1] == "one"


def test_a_clean_query_remembered_does_not_let_a_secret_through() -> None:
    stage = Redact(RedactConfig(), StageContext(project="test", session_id="s1"))
    first = stage.handle(_http(query="page=2", url="http://h/api?page=2"))
    assert first.data["query"] == "page=2"
    assert first.data["url"] == "http://h/api?page=2"
    again = stage.handle(_http(query="page=2", url="http://h/api?page=2"))
    assert again.data["query"] == "page=2"  # the remembered answer is the same
    secret = stage.handle(_http(query=f"page=2&token={SECRET}", url=f"http://h/?token={SECRET}"))
    assert SECRET not in _dumped(secret)
    assert secret.data["query"].startswith("page=2&token=")


def test_a_header_name_judged_once_still_masks_every_value() -> None:
    stage = Redact(RedactConfig(), StageContext(project="test", session_id="s1"))
    for value in ("Bearer one-value-123", f"Bearer {SECRET}", SECRET):
        event = stage.handle(_http(request_headers=[["Authorization", value], ["Accept", "x"]]))
        assert SECRET not in _dumped(event)
        assert "value-123" not in _dumped(event)
        assert _header(event, "request", "accept") == "x"
