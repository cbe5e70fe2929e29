"""Shared set-up for the addon unit tests: a mitmproxy test context and a runtime stand-in.

``mitmproxy.test.taddons`` imports every mitmproxy core addon, and two of their third-party
dependencies (passlib's use of ``crypt`` and ldap3's use of pyasn1) warn with
``DeprecationWarning`` at import time; the suite turns warnings into errors, so the import is
done here once with those warnings silenced for the duration of the import only.

``addon_context`` wraps ``taddons.context`` and closes what it leaves open (its event loop and
the logging handler mitmproxy's master installs), which ``-W error`` would otherwise report.

``RecordingRuntime`` has only what the addons read from ``lifecycle.runtime``: ``submit``,
``api_port``, ``token`` and ``settings.target`` / ``settings.proxy_url``. The real runtime is
exercised by the end-to-end tests; here the addons' own logic is under test.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from mitmproxy.test import taddons

from rsproxy.addons.lifecycle import Lifecycle
from rsproxy.events import Event


@dataclass
class StubSettings:
    target: str | None = "http://localhost:3000"
    proxy_url: str = "http://127.0.0.1:8080"


@dataclass
class RecordingRuntime:
    api_port: int | None = 47321
    token: str = "internal-token-for-tests"
    settings: StubSettings = field(default_factory=StubSettings)
    events: list[Event] = field(default_factory=list)

    def submit(self, event: Event) -> bool:
        self.events.append(event)
        return True


@contextlib.contextmanager
def _addon_context(*addons: Any) -> Iterator[taddons.context]:
    with taddons.context(*addons) as tctx:
        try:
            yield tctx
        finally:
            tctx.master._legacy_log_events.uninstall()
            tctx.master.event_loop.close()


@pytest.fixture
def addon_context() -> Callable[..., contextlib.AbstractContextManager[taddons.context]]:
    return _addon_context


@pytest.fixture
def runtime() -> RecordingRuntime:
    return RecordingRuntime()


@pytest.fixture
def lifecycle(runtime: RecordingRuntime) -> Lifecycle:
    """A Lifecycle whose runtime is already "up" (the recording stand-in)."""
    lc = Lifecycle()
    lc.runtime = runtime  # type: ignore[assignment]
    return lc
