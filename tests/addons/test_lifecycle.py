"""Unit tests for addons/lifecycle.py: rsproxy's mitmproxy options and their validation.

``running``/``done`` start and stop the real runtime and are covered by the end-to-end tests;
here ``configure`` is driven through mitmproxy's option machinery (``tctx.configure``), which is
how an invalid ``--set rsproxy_pipeline=...`` reaches it, and ``reverse_target`` is tested on the
mode strings mitmproxy accepts.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mitmproxy import exceptions

from rsproxy.addons.lifecycle import Lifecycle, reverse_target
from rsproxy.pipeline.spec import default_pipeline_path
from rsproxy.runtime import DEFAULT_BODY_LIMIT


@pytest.fixture
def tctx(addon_context):
    lifecycle = Lifecycle()
    with addon_context(lifecycle) as context:
        context.lifecycle = lifecycle
        yield context


def test_options_are_declared_with_their_defaults(tctx):
    options = tctx.options
    assert options.rsproxy_project == ""
    assert options.rsproxy_pipeline == ""
    assert options.rsproxy_body_limit == DEFAULT_BODY_LIMIT
    assert options.rsproxy_watch_pipeline is True
    assert tctx.lifecycle.runtime is None


def test_invalid_pipeline_raises_options_error_listing_every_problem(tctx, tmp_path: Path):
    pipeline = tmp_path / "broken.yaml"
    pipeline.write_text(
        "version: 2\nstages:\n  - type: redcat\n  - type: persist\n    bogus_key: 1\nextra: true\n",
        encoding="utf-8",
    )
    with pytest.raises(exceptions.OptionsError) as raised:
        tctx.configure(tctx.lifecycle, rsproxy_pipeline=str(pipeline))
    message = str(raised.value)
    assert str(pipeline) in message
    assert "4 problems" in message
    assert "unsupported version 2" in message
    assert "'redcat'" in message and "did you mean 'redact'" in message
    assert "bogus_key" in message
    assert "extra" in message
    # the bad value is rolled back
    assert tctx.options.rsproxy_pipeline == ""


def test_missing_pipeline_file_raises_options_error(tctx, tmp_path: Path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(exceptions.OptionsError, match="not found"):
        tctx.configure(tctx.lifecycle, rsproxy_pipeline=str(missing))


def test_pipeline_that_is_not_yaml_raises_options_error(tctx, tmp_path: Path):
    pipeline = tmp_path / "bad.yaml"
    pipeline.write_text("version: 1\nstages: [\n", encoding="utf-8")
    with pytest.raises(exceptions.OptionsError, match="not valid YAML"):
        tctx.configure(tctx.lifecycle, rsproxy_pipeline=str(pipeline))


def test_valid_pipeline_is_accepted(tctx, tmp_path: Path):
    pipeline = tmp_path / "mine.yaml"
    pipeline.write_text(default_pipeline_path().read_text(encoding="utf-8"), encoding="utf-8")
    tctx.configure(tctx.lifecycle, rsproxy_pipeline=str(pipeline))
    assert tctx.options.rsproxy_pipeline == str(pipeline)


def test_negative_body_limit_is_refused(tctx):
    with pytest.raises(exceptions.OptionsError, match=r"rsproxy_body_limit must be >= 0.*-1"):
        tctx.configure(tctx.lifecycle, rsproxy_body_limit=-1)
    assert tctx.options.rsproxy_body_limit == DEFAULT_BODY_LIMIT


def test_zero_body_limit_is_accepted(tctx):
    tctx.configure(tctx.lifecycle, rsproxy_body_limit=0)
    assert tctx.options.rsproxy_body_limit == 0


# ---- reverse_target -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("modes", "expected"),
    [
        (["reverse:http://localhost:3000"], "http://localhost:3000"),
        (["reverse:http://127.0.0.1:8000/"], "http://127.0.0.1:8000"),
        (["reverse:https://example.com"], "https://example.com:443"),
        (["reverse:http://example.com"], "http://example.com:80"),
        (["reverse:http://localhost:5173@8081"], "http://localhost:5173"),
        (
            ["regular", "reverse:http://localhost:3000", "reverse:http://localhost:4000"],
            "http://localhost:3000",
        ),
        (["regular"], None),
        (["socks5", "transparent"], None),
        ([], None),
    ],
)
def test_reverse_target(modes, expected):
    assert reverse_target(modes) == expected


def test_reverse_target_brackets_an_ipv6_host():
    assert reverse_target(["reverse:http://[::1]:3000"]) == "http://[::1]:3000"
