"""Unit tests for the pure parts of rsproxy/daemon.py: --target parsing, loopback detection and
port choice.

``choose_port`` is tested with ports this test binds itself (a real listening socket for "busy",
a port the kernel just handed out and released for "free"); whether 8080 happens to be free on
the machine running the suite is never assumed.
"""

from __future__ import annotations

import socket

import pytest

from rsproxy import testing
from rsproxy.daemon import choose_port, is_loopback, parse_target, port_is_free
from rsproxy.errors import ConfigError, PortError, TargetError

VALID_FORMS = (":3000", "3000", "localhost:5173", "http://127.0.0.1:8000", "https://localhost:8443")

# ---- parse_target ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (":3000", "http://127.0.0.1:3000"),
        ("3000", "http://127.0.0.1:3000"),
        ("  :3000 ", "http://127.0.0.1:3000"),
        ("localhost:5173", "http://localhost:5173"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("http://127.0.0.1:8000/", "http://127.0.0.1:8000"),
        ("https://localhost:8443", "https://localhost:8443"),
        ("HTTPS://LocalHost:8443", "https://localhost:8443"),
        ("[::1]:3000", "http://[::1]:3000"),
        ("http://[::1]:3000", "http://[::1]:3000"),
        ("https://example.com", "https://example.com:443"),
        ("http://example.com", "http://example.com:80"),
        (":65535", "http://127.0.0.1:65535"),
    ],
)
def test_parse_target_valid_forms(value, expected):
    assert parse_target(value) == expected


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("ftp://x", "http or https"),
        ("ws://localhost:3000", "http or https"),
        ("http://host/path", "without a path"),
        ("http://localhost:3000/app/", "without a path"),
        ("http://localhost:3000?debug=1", "without a path"),
        (":99999", "out of range"),
        ("localhost:http", "ould not be cast to integer"),
        ("", "http or https"),
        ("   ", "http or https"),
        ("http://", "http or https"),
    ],
)
def test_parse_target_bad_inputs_raise_target_error_listing_valid_forms(value, why):
    with pytest.raises(TargetError) as raised:
        parse_target(value)
    message = str(raised.value)
    assert repr(value) in message
    assert why in message
    for form in VALID_FORMS:
        assert form in message


def test_target_error_is_a_config_error():
    with pytest.raises(ConfigError):
        parse_target("ftp://x")


def test_parse_target_refuses_port_zero():
    with pytest.raises(TargetError, match="out of range"):
        parse_target(":0")


# ---- is_loopback -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://localhost:3000", True),
        ("http://LOCALHOST:3000", True),
        ("http://shop.localhost:3000", True),
        ("http://127.0.0.1:8000", True),
        ("http://127.1.2.3:8000", True),
        ("http://[::1]:3000", True),
        ("https://example.com:443", False),
        ("http://10.0.0.5:3000", False),
        ("http://[2001:db8::1]:3000", False),
        ("http://localhost.example.com:3000", False),
        ("http://0.0.0.0:3000", False),
        ("not a url", False),
    ],
)
def test_is_loopback(url, expected):
    assert is_loopback(url) is expected


# ---- choose_port ---------------------------------------------------------------------------------


@pytest.fixture
def busy_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture
def free_port() -> int:
    return testing.free_port()


def test_requested_busy_port_raises_port_error_naming_it(busy_port):
    assert port_is_free("127.0.0.1", busy_port) is False
    with pytest.raises(PortError) as raised:
        choose_port("127.0.0.1", busy_port)
    message = str(raised.value)
    assert f"port {busy_port}" in message
    assert "in use" in message
    assert "--port" in message


def test_requested_free_port_is_returned(free_port):
    assert port_is_free("127.0.0.1", free_port) is True
    assert choose_port("127.0.0.1", free_port) == free_port


@pytest.mark.parametrize("port", [0, -1, 65536, 100000])
def test_requested_port_out_of_range_raises_port_error(port):
    with pytest.raises(PortError, match=rf"--port {port} is out of range \(1-65535\)"):
        choose_port("127.0.0.1", port)


def test_without_a_requested_port_a_busy_first_choice_is_skipped(busy_port, monkeypatch):
    # The scan starts at DEFAULT_PORT (8080); start it at a port known to be busy instead.
    monkeypatch.setattr("rsproxy.daemon.DEFAULT_PORT", busy_port)
    chosen = choose_port("127.0.0.1", None)
    assert busy_port < chosen < busy_port + 100
    assert port_is_free("127.0.0.1", chosen)
