"""Messages from page probes (rsproxy/probe_messages.py) treated as the hostile input they are.

Every rejection must come back as ``ProbeMessageError`` (the server catches only that) and be
counted in ``stats.rejected`` under its reason; nothing a page sends may raise anything else.
Caps on size, count, nesting, strings and lists, the kinds a page may report, timestamps, and
the per-connection and global rate limits are checked here.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from rsproxy.errors import ProbeMessageError
from rsproxy.events import now_ms
from rsproxy.probe_messages import (
    MAX_DEPTH,
    MAX_EVENTS_PER_MESSAGE,
    MAX_ITEMS,
    MAX_MESSAGE_BYTES,
    MAX_STRING,
    PROBE_KINDS,
    ProbeIngest,
    sanitize,
)


def _message(*events: dict[str, Any], **extra: Any) -> str:
    return json.dumps(
        {"type": "events", "v": 1, "page_id": "page-1", "events": list(events), **extra}
    )


def _console(text: str = "hello", **extra: Any) -> dict[str, Any]:
    return {"kind": "console", "ts": now_ms(), "data": {"level": "log", "message": text}, **extra}


@pytest.fixture
def ingest() -> ProbeIngest:
    # Limits high enough that only the rate-limit tests ever meet them.
    return ProbeIngest(per_connection_rate=100_000, global_rate=100_000)


def _reject(ingest: ProbeIngest, raw: str | bytes, reason: str) -> ProbeMessageError:
    with pytest.raises(ProbeMessageError) as info:
        ingest.parse(raw, ingest.connection_limiter())
    assert str(info.value).startswith(f"{reason}:")
    assert ingest.stats.rejected[reason] >= 1
    return info.value


# ---- valid messages -------------------------------------------------------------------------------


def test_a_valid_message_becomes_probe_events(ingest: ProbeIngest) -> None:
    ts = now_ms() - 5_000
    events = ingest.parse(
        _message(_console("one", ts=ts), _console("two")), ingest.connection_limiter()
    )
    assert [e.data["message"] for e in events] == ["one", "two"]
    assert all(e.kind == "console" and e.source == "probe" for e in events)
    assert all(e.page_id == "page-1" for e in events)
    assert events[0].ts == ts
    assert ingest.stats.messages == 1
    assert ingest.stats.events == 2
    assert not ingest.stats.rejected


def test_bytes_are_accepted_like_text(ingest: ProbeIngest) -> None:
    events = ingest.parse(_message(_console("é")).encode(), ingest.connection_limiter())
    assert events[0].data["message"] == "é"


def test_every_probe_kind_is_accepted(ingest: ProbeIngest) -> None:
    items = [{"kind": kind, "ts": now_ms(), "data": {"n": 1}} for kind in sorted(PROBE_KINDS)]
    events = ingest.parse(_message(*items), ingest.connection_limiter())
    assert sorted(e.kind for e in events) == sorted(PROBE_KINDS)


def test_a_page_cannot_forge_the_envelope(ingest: ProbeIngest) -> None:
    item = _console(id="0" * 32, source="proxy", session_id="other", project="other")
    [event] = ingest.parse(_message(item), ingest.connection_limiter())
    assert event.source == "probe"
    assert event.id != "0" * 32
    assert event.session_id == "" and event.project == ""


def test_per_event_page_id_overrides_and_bad_page_ids_are_ignored(ingest: ProbeIngest) -> None:
    limiter = ingest.connection_limiter()
    own, inherited = ingest.parse(_message(_console(page_id="own"), _console()), limiter)
    assert own.page_id == "own" and inherited.page_id == "page-1"
    [long_id] = ingest.parse(_message(_console(), page_id="x" * 65), limiter)
    assert long_id.page_id is None
    [not_text] = ingest.parse(_message(_console(), page_id={"a": 1}), limiter)
    assert not_text.page_id is None


def test_missing_data_is_an_empty_payload(ingest: ProbeIngest) -> None:
    [event] = ingest.parse(_message({"kind": "custom"}), ingest.connection_limiter())
    assert event.data == {}


# ---- rejected messages ----------------------------------------------------------------------------


def test_oversized_message_is_rejected_before_parsing(ingest: ProbeIngest) -> None:
    raw = b"{" + b" " * MAX_MESSAGE_BYTES + b"}"
    _reject(ingest, raw, "too_large")
    assert ingest.stats.messages == 0


def test_message_of_exactly_the_limit_is_parsed(ingest: ProbeIngest) -> None:
    raw = _message(_console())
    raw = raw[:-1] + " " * (MAX_MESSAGE_BYTES - len(raw)) + "}"
    assert len(raw) == MAX_MESSAGE_BYTES
    assert len(ingest.parse(raw, ingest.connection_limiter())) == 1


@pytest.mark.parametrize("raw", ["not json", "{", b"\xff\xfe\x00garbage", "", "{'a': 1}"])
def test_non_json_is_rejected(ingest: ProbeIngest, raw: str | bytes) -> None:
    _reject(ingest, raw, "not_json")


@pytest.mark.parametrize(
    "message",
    [
        [],
        "events",
        42,
        None,
        {"events": []},
        {"type": "hello", "events": []},
        {"type": "events"},
        {"type": "events", "events": {"kind": "console"}},
        {"type": "events", "events": "console"},
    ],
)
def test_wrong_shape_is_rejected(ingest: ProbeIngest, message: Any) -> None:
    _reject(ingest, json.dumps(message), "bad_shape")


def test_too_many_events_is_rejected_whole(ingest: ProbeIngest) -> None:
    items = [{"kind": "custom", "data": {}} for _ in range(MAX_EVENTS_PER_MESSAGE + 1)]
    _reject(ingest, _message(*items), "too_many")
    assert ingest.stats.events == 0
    items.pop()
    assert len(ingest.parse(_message(*items), ingest.connection_limiter())) == (
        MAX_EVENTS_PER_MESSAGE
    )


def test_rejections_are_counted_by_reason(ingest: ProbeIngest) -> None:
    limiter = ingest.connection_limiter()
    for raw in ["nope", "nope", "[]", _message(*[{"kind": "custom"}] * 501)]:
        with pytest.raises(ProbeMessageError):
            ingest.parse(raw, limiter)
    assert ingest.stats.rejected == {"not_json": 2, "bad_shape": 1, "too_many": 1}
    assert ingest.stats.as_dict()["rejected"] == {"not_json": 2, "bad_shape": 1, "too_many": 1}
    assert ingest.stats.messages == 0


# ---- bad events inside a good message --------------------------------------------------------------


@pytest.mark.parametrize(
    "item",
    [
        {"kind": "issue", "data": {"title": "forged finding"}},
        {"kind": "sql", "data": {"text": "DROP TABLE users"}},
        {"kind": "http", "data": {"url": "http://evil"}},
        {"kind": "process", "data": {"pid": 1}},
        {"kind": "made_up", "data": {}},
        {"kind": None, "data": {}},
        {"data": {}},
        {"kind": "console", "data": "not a dict"},
        {"kind": "console", "data": ["a", "list"]},
        {"kind": "console", "data": None},
        "a string",
        17,
        None,
        ["console"],
    ],
)
def test_bad_events_are_skipped_and_counted(ingest: ProbeIngest, item: Any) -> None:
    events = ingest.parse(_message(_console("good"), item), ingest.connection_limiter())
    assert [e.data["message"] for e in events] == ["good"]
    assert ingest.stats.rejected == {"bad_event": 1}
    assert ingest.stats.events == 1
    assert ingest.stats.messages == 1


@pytest.mark.parametrize("kind", [["console"], {"a": 1}])
def test_an_unhashable_kind_is_a_bad_event(ingest: ProbeIngest, kind: Any) -> None:
    events = ingest.parse(
        _message(_console("good"), {"kind": kind, "data": {}}), ingest.connection_limiter()
    )
    assert len(events) == 1
    assert ingest.stats.rejected == {"bad_event": 1}


# ---- timestamps ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ts", [0, -1, 1e18, 10**15, "1700000000000", True, None, [1], {"t": 1}, float("inf")]
)
def test_absurd_timestamps_are_replaced_by_the_receive_time(ingest: ProbeIngest, ts: Any) -> None:
    before = now_ms()
    [event] = ingest.parse(
        _message({"kind": "custom", "ts": ts, "data": {}}), ingest.connection_limiter()
    )
    after = now_ms()
    assert before <= event.ts <= after
    assert isinstance(event.ts, float)


def test_a_timestamp_within_a_day_is_kept(ingest: ProbeIngest) -> None:
    ts = now_ms() - 3_600_000
    [event] = ingest.parse(
        _message({"kind": "custom", "ts": ts, "data": {}}), ingest.connection_limiter()
    )
    assert event.ts == ts


def test_a_nan_timestamp_is_replaced(ingest: ProbeIngest) -> None:
    raw = '{"type": "events", "events": [{"kind": "custom", "ts": NaN, "data": {}}]}'
    before = now_ms()
    [event] = ingest.parse(raw, ingest.connection_limiter())
    assert before <= event.ts <= now_ms()


def test_a_huge_integer_timestamp_is_replaced(ingest: ProbeIngest) -> None:
    raw = '{"type": "events", "events": [{"kind": "custom", "ts": 1%s, "data": {}}]}' % ("0" * 400)
    before = now_ms()
    [event] = ingest.parse(raw, ingest.connection_limiter())
    assert before <= event.ts <= now_ms()


def test_deeply_nested_json_is_rejected_not_raised(ingest: ProbeIngest) -> None:
    depth = 100_000
    raw = "[" * depth + "]" * depth
    assert len(raw) <= MAX_MESSAGE_BYTES
    _reject(ingest, raw, "not_json")


# ---- sanitize --------------------------------------------------------------------------------------


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def test_deep_nesting_is_capped(ingest: ProbeIngest) -> None:
    nested: Any = "bottom"
    for _ in range(50):
        nested = {"a": [nested]}
    [event] = ingest.parse(
        _message({"kind": "state", "data": {"tree": nested}}), ingest.connection_limiter()
    )
    assert _depth(event.data) <= MAX_DEPTH + 1
    assert "[too deep]" in json.dumps(event.data)
    assert "bottom" not in json.dumps(event.data)


def test_huge_strings_are_truncated(ingest: ProbeIngest) -> None:
    long = "x" * (MAX_STRING * 4)
    [event] = ingest.parse(
        _message({"kind": "console", "data": {"message": long, "args": [long]}}),
        ingest.connection_limiter(),
    )
    for value in (event.data["message"], event.data["args"][0]):
        assert len(value) < MAX_STRING + 20
        assert value.startswith("x" * MAX_STRING)
        assert value.endswith("[truncated]")


def test_huge_lists_and_objects_are_capped(ingest: ProbeIngest) -> None:
    data = {"list": list(range(5_000)), "obj": {f"k{i}": i for i in range(5_000)}}
    [event] = ingest.parse(_message({"kind": "custom", "data": data}), ingest.connection_limiter())
    assert event.data["list"] == list(range(MAX_ITEMS))
    assert len(event.data["obj"]) == MAX_ITEMS


def test_huge_keys_are_capped() -> None:
    out = sanitize({"k" * 10_000: 1})
    [key] = out
    assert len(key) == 256


def test_sanitize_keeps_small_values_as_they_are() -> None:
    value = {"a": [1, 2.5, True, None, "s", {"b": "c"}], "n": -3}
    assert sanitize(value) == value


def test_sanitize_turns_other_objects_into_capped_strings() -> None:
    class Odd:
        def __str__(self) -> str:
            return "y" * (MAX_STRING * 2)

    assert sanitize(Odd()) == "y" * MAX_STRING
    assert sanitize((1, 2)) == "(1, 2)"


# ---- page-reported drops ---------------------------------------------------------------------------


def test_dropped_counter_accumulates(ingest: ProbeIngest) -> None:
    limiter = ingest.connection_limiter()
    ingest.parse(_message(_console(), dropped=3), limiter)
    ingest.parse(_message(dropped=4), limiter)
    ingest.parse(_message(_console(), dropped=0), limiter)
    assert ingest.stats.page_dropped == 7
    assert ingest.stats.as_dict()["page_dropped"] == 7


@pytest.mark.parametrize("dropped", [-5, 10**12, "9", 2.5, None, [1]])
def test_implausible_dropped_values_are_ignored(ingest: ProbeIngest, dropped: Any) -> None:
    ingest.parse(_message(_console(), dropped=dropped), ingest.connection_limiter())
    assert ingest.stats.page_dropped == 0


def test_boolean_dropped_is_ignored(ingest: ProbeIngest) -> None:
    ingest.parse(_message(_console(), dropped=True), ingest.connection_limiter())
    assert ingest.stats.page_dropped == 0


# ---- rate limits -----------------------------------------------------------------------------------


def test_a_flood_from_one_connection_is_cut() -> None:
    ingest = ProbeIngest(per_connection_rate=50, global_rate=1_000_000)
    flooder = ingest.connection_limiter()
    accepted = rejected = 0
    for _ in range(200):  # 10,000 events against a burst of 200 refilling at 50/s
        try:
            accepted += len(ingest.parse(_message(*[_console()] * 50), flooder))
        except ProbeMessageError as exc:
            assert str(exc).startswith("rate_limited:")
            rejected += 1
    assert accepted >= 200  # the burst went through
    assert rejected > 100
    assert ingest.stats.rejected["rate_limited"] == rejected
    assert ingest.stats.events == accepted
    # A quiet page on another connection is not punished for the flooder.
    assert len(ingest.parse(_message(_console()), ingest.connection_limiter())) == 1


def test_a_flood_across_many_connections_is_cut_globally() -> None:
    ingest = ProbeIngest(per_connection_rate=1_000_000, global_rate=100)
    limiters = [ingest.connection_limiter() for _ in range(20)]
    accepted = rejected = 0
    for _ in range(10):
        for limiter in limiters:  # 20 tabs, each well within its own limit
            try:
                accepted += len(ingest.parse(_message(*[_console()] * 50), limiter))
            except ProbeMessageError:
                rejected += 1
    assert accepted >= 500  # the global burst went through
    assert accepted < 10 * 20 * 50 // 2
    assert ingest.stats.rejected == {"rate_limited": rejected}
