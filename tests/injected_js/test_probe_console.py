"""The probe's console and error collectors in Chromium, through a real ``rsproxy start``.

The fixture page (fixtures/pages/console.html) logs at every level with awkward arguments
(cycles, deep and wide objects, a 100 000-character string, %-substitutions, DOM nodes,
functions, symbols, a bigint), throws from timers and leaves promises rejected, recording what
its own ``window.onerror``, ``error`` and ``unhandledrejection`` listeners received. The same page
is also loaded directly from the upstream, where there is no probe: what the page records, what
reaches Chromium's console and which uncaught errors Chromium reports must be identical. The
daemon's ``console`` and ``error`` events are then checked field by field.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rsproxy.testing import DaemonProcess, LoopbackServer

PAGE = Path(__file__).resolve().parents[2] / "fixtures" / "pages" / "console.html"
ERROR_FIELDS = ("type", "message", "source", "line", "column", "stack")


@dataclass
class Run:
    result: Any  # what the page's function returned
    console: list[tuple[str, str]]  # (type, origin-relative text) of each console message
    page_errors: list[str]  # the uncaught errors Chromium reported


def _run(page: Any, base: str, script: str) -> Run:
    run = Run(None, [], [])

    def on_console(message: Any) -> None:
        # The browser's own network messages (favicon, the broken image) race each other.
        if not message.text.startswith("Failed to load resource"):
            run.console.append((message.type, message.text.replace(base, "")))

    def on_page_error(error: Any) -> None:
        run.page_errors.append(error.message)

    page.on("console", on_console)
    page.on("pageerror", on_page_error)
    try:
        page.goto(base + "/console")
        run.result = page.evaluate(script)
    finally:
        page.remove_listener("console", on_console)
        page.remove_listener("pageerror", on_page_error)
    return run


def _line(marker: str) -> int:
    """The line of console.html whose comment is ``// SITE: marker``."""
    lines = PAGE.read_text().splitlines()
    hits = [n for n, text in enumerate(lines, 1) if text.endswith(f"// SITE: {marker}")]
    assert len(hits) == 1, marker
    return hits[0]


def _events(daemon: DaemonProcess, kind: str, page_id: str, count: int) -> list[dict[str, Any]]:
    """The page's events of one kind, in the order they were pushed, once ``count`` are in."""

    def mine(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [e for e in events if e["page_id"] == page_id]

    daemon.wait_for_events(lambda evs: len(mine(evs)) >= count, kind=kind)
    return sorted(mine(daemon.events(kind)), key=lambda e: e["id"])


def _fields(data: dict[str, Any]) -> dict[str, Any]:
    # A field sent as null reads back as absent (the console table's column is NULL).
    return {k: data.get(k) for k in ERROR_FIELDS}


@pytest.mark.browser
def test_console_output_and_uncaught_errors_are_reported_and_behave_as_without_the_probe(
    daemon: DaemonProcess, site: LoopbackServer, page: Any
) -> None:
    direct = _run(page, site.url, "window.runConsole()")
    assert page.evaluate("typeof window.__rsproxy") == "undefined"
    proxied = _run(page, daemon.proxy_url, "window.runConsole()")
    page_id = page.evaluate("window.__rsproxy.page_id")
    proxy = daemon.proxy_url

    # The page, Chromium's console and Chromium's error reporting see what they see without it.
    assert proxied.result == direct.result
    assert proxied.console == direct.console
    # (Sorted: a timer's error and a rejection's report are separate tasks.)
    assert sorted(proxied.page_errors) == sorted(direct.page_errors)
    seen = direct.result
    assert seen["returned"] == ["undefined"] * 3
    assert seen["names"] == ["log", 0, "info", 0, "warn", 0, "", 0, "debug", 0]
    assert seen["unchanged"] is True
    assert seen["stackTraceLimit"] == [10, 10]  # raised for the probe's stack, and put back
    assert seen["threw"] == "no string"
    assert seen["wrapper"] == [{"count": 2, "first": "failed:", "self": True}]
    assert [t for t, _ in direct.console] == [
        *["log", "log", "info", "debug", "log", "log", "log", "log", "log", "log", "log", "log"],
        *["warning", "error"],
    ]
    assert direct.console[7] == ("log", "x" * 100_000)  # the console got the whole string
    # onerror's `return true` and preventDefault() still keep those two out of the report.
    assert sorted(direct.page_errors) == sorted(
        ["thrown from a timer", "Object", "rejected on purpose", "undefined", "async failure"]
    )
    assert [e["cancelled"] for e in seen["errorEvents"]] == [False, True, False]
    assert seen["resourceErrors"] == ["IMG"]
    assert [r["cancelled"] for r in seen["rejections"]] == [False, False, False, False]

    # ---- console events
    events = _events(daemon, "console", page_id, 15)
    assert all(e["source"] == "probe" for e in events)
    data = [e["data"] for e in events]
    assert len(data) == 15, [d["message"][:80] for d in data]
    assert [d["level"] for d in data] == [
        *["log", "log", "info", "debug", "log", "log", "log", "log", "log", "log", "log", "log"],
        *["warn", "error", "log"],
    ]
    plain, cycles, info, debug, nested, wide, grid, huge, values, dom, kinds, many = data[:12]
    warn, error, throwing = data[12:]

    assert plain == {
        "level": "log",
        "message": "plain 1 true null",
        "args": ["plain", 1, True, None],
    }
    # A cycle is marked where it closes; an object reached twice but not in a cycle is not one.
    assert cycles["args"] == [
        "cycles",
        {"name": "circ", "list": [1, "[Circular]"], "self": "[Circular]"},
        {"a": {"v": 1}, "b": {"v": 1}},
    ]
    assert cycles["message"] == (
        'cycles {"name":"circ","list":[1,"[Circular]"],"self":"[Circular]"} '
        '{"a":{"v":1},"b":{"v":1}}'
    )
    # %s %d %i %f %o %c substituted as the console does; a %s with no argument left is kept.
    assert info["message"] == (
        'Bob is 42 years (7), 1.5 m, {"a":1}, styled, Symbol(s), NaN, left %s'
    )
    assert info["args"] == [
        "%s is %d years (%i), %f m, %o,%c styled, %s, %d, left %s",
        *["Bob", "42.9", 7.8, "1.5", {"a": 1}, "color: red", "Symbol(s)", "Symbol(n)"],
    ]
    assert debug["message"] == "hi! 3 null undefined more"
    assert debug["args"] == ["%s!", "hi", 3, None, "[undefined]", "more"]

    # Depth 4, 20 keys or items per level.
    assert nested["args"] == [{"l1": {"l2": {"l3": {"l4": "[Object]"}}}}, [[[["[Array]"]]]]]
    assert wide["args"][0] == {**{f"k{i}": i for i in range(20)}, "…": "+5"}
    assert wide["args"][1] == [*range(20), "…+10"]
    # A budget of 1000 values per call: of the 20 by 20 by 20 grid, rows 0 and 1, then 8 lists
    # of row 2.
    rows = grid["args"][0]
    full = list(range(20))
    assert rows[:2] == [[full] * 20] * 2
    assert rows[2] == [full] * 8 + ["[Array]"] * 12
    assert rows[3:] == ["[Array]"] * 17
    # The huge string: 2000 characters as an argument, 4000 in the message, with the rest counted.
    assert huge["args"] == ["x" * 2000 + "…[+98000]"]
    assert huge["message"] == "x" * 4000 + "…[+96000]"

    assert values["args"] == [
        *["values:", "[undefined]", None, "Symbol(tag)", "10n", "NaN", "-Infinity", 1.5]
    ]
    assert values["message"] == "values: undefined null Symbol(tag) 10n NaN -Infinity 1.5"
    assert dom["args"] == [
        *["<div#target.card.wide>", "<svg#icon>", "<body>", "[Window]"],
        *["[Function handler]", "[Function anonymous]", "[Function Widget]"],
    ]
    assert kinds["args"] == [
        [["k", {"v": 1}]],
        [1, 2],
        "1970-01-01T00:00:00.000Z",
        "/ab+c/gi",
        "[Uint8Array]",
        {"ok": 1, "bad": "[Getter]"},  # a getter (one that would throw) is not run
    ]
    assert many["args"] == [*range(20), "…+5"]
    assert many["message"] == " ".join(str(i) for i in range(25))

    # A stack for warn and error only: the caller's, without the probe's frames.
    for quiet in data[:12]:
        assert quiet.get("stack") is None, quiet["message"][:80]
    assert warn["message"] == 'careful {"level":"warn"}'
    assert warn["stack"].startswith(f"    at window.runConsole ({proxy}/console:{_line('warn')}:")
    assert error["message"] == "failed: RangeError: out of range"
    error_frames = error["stack"].splitlines()
    assert error_frames[0].startswith(f"    at console.error ({proxy}/console:{_line('wrapper')}:")
    assert error_frames[1].startswith(
        f"    at window.runConsole ({proxy}/console:{_line('error')}:"
    )
    for stack in (warn["stack"], error["stack"]):
        assert "__rsproxy" not in stack
    assert error["args"][0] == "failed:"
    assert error["args"][1]["name"] == "RangeError"
    assert error["args"][1]["message"] == "out of range"
    assert error["args"][1]["stack"].startswith(
        f"RangeError: out of range\n    at window.runConsole ({proxy}/console:{_line('error')}:"
    )
    # Recorded before the console ran it (and threw): the probe does not run the page's toString.
    assert throwing["message"] == '{"toString":"[Function toString]"}'

    # ---- error events, as the page's own handlers received them
    errors = _events(daemon, "error", page_id, 7)
    page.wait_for_timeout(500)  # nothing more follows: the broken image is not an exception
    assert len(_events(daemon, "error", page_id, 7)) == 7
    assert all(e["source"] == "probe" for e in errors)
    thrown = [_fields(e["data"]) for e in errors if e["data"]["type"] == "error"]
    rejected = [_fields(e["data"]) for e in errors if e["data"]["type"] == "unhandledrejection"]

    def rel(stack: str | None) -> str | None:
        return None if stack is None else stack.replace(proxy, "")

    assert len(thrown) == len(seen["onerror"]) == 3
    for event, handler in zip(thrown, seen["onerror"], strict=True):
        assert event["message"] == handler["message"]
        assert event["source"] == proxy + handler["source"]
        assert (event["line"], event["column"]) == (handler["line"], handler["column"])
        assert rel(event["stack"]) == handler["stack"]
    lines = [_line("throw"), _line("handled"), _line("object")]
    assert [(e["message"], e["line"]) for e in thrown] == [
        ("Uncaught Error: thrown from a timer", lines[0]),
        ("Uncaught TypeError: handled by onerror", lines[1]),  # handled, still an exception
        ("Uncaught [object Object]", lines[2]),
    ]
    assert thrown[0]["stack"] == f"Error: thrown from a timer\n    at {proxy}/console:{lines[0]}:28"
    assert thrown[2]["stack"] is None  # a thrown plain object has none

    assert [(r["name"], r["message"], r["code"]) for r in seen["rejections"]] == [
        ("TypeError", "rejected on purpose", None),
        (None, None, 42),
        (None, None, None),
        ("SyntaxError", "async failure", None),
    ]
    assert [r["message"] for r in rejected] == [
        "TypeError: rejected on purpose",
        '{"code":42}',
        "undefined",
        "SyntaxError: async failure",
    ]
    for event, handler in zip(rejected, seen["rejections"], strict=True):
        assert (event["source"], event["line"], event["column"]) == (None, None, None)
        assert rel(event["stack"]) == handler["stack"]
    reject_site = f"{proxy}/console:{_line('reject')}:"
    assert rejected[0]["stack"].startswith(
        f"TypeError: rejected on purpose\n    at window.runConsole ({reject_site}"
    )
    assert rejected[3]["stack"].startswith(
        f"SyntaxError: async failure\n    at {proxy}/console:{_line('async')}:"
    )


def _side_effects(daemon: DaemonProcess, site: LoopbackServer, page: Any) -> tuple[Any, Any]:
    direct = _run(page, site.url, "window.runSideEffects()").result
    if direct != {"getter": 0, "toString": 1}:
        pytest.fail(f"Chromium's own console ran other page code than expected: {direct}")
    return direct, _run(page, daemon.proxy_url, "window.runSideEffects()").result


@pytest.mark.browser
def test_logging_an_object_runs_none_of_its_getters(
    daemon: DaemonProcess, site: LoopbackServer, page: Any
) -> None:
    direct, proxied = _side_effects(daemon, site, page)
    assert proxied["getter"] == direct["getter"]


@pytest.mark.browser
def test_a_percent_d_argument_is_converted_once(
    daemon: DaemonProcess, site: LoopbackServer, page: Any
) -> None:
    direct, proxied = _side_effects(daemon, site, page)
    assert proxied["toString"] == direct["toString"]


@pytest.mark.browser
def test_a_double_percent_is_a_literal_percent_in_the_message(
    daemon: DaemonProcess, page: Any
) -> None:
    _run(page, daemon.proxy_url, "window.runPercent()")
    page_id = page.evaluate("window.__rsproxy.page_id")
    events = _events(daemon, "console", page_id, 2)
    assert [e["data"]["message"] for e in events] == ["100% sure, x", "%s stays y"]
