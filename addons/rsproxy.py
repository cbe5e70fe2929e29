"""All of rsproxy's addons, in the order they must run, for ``rsproxy start`` and for mitmdump.

Use it in your own mitmproxy::

    mitmdump -s addons/rsproxy.py --mode reverse:http://localhost:3000 --set rsproxy_project=shop

(or ``-s "$(python -c 'import rsproxy.addons.rsproxy as m; print(m.__file__)')"`` with an
installed rsproxy). Order matters: the probe endpoint marks rsproxy's own requests before the
others look at them, and capture records the response before the probe is injected into it.
"""

from __future__ import annotations

import os
import sys

# mitmproxy puts a script's folder first on sys.path while loading it; this file's name would then
# shadow the rsproxy package it imports from.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

from rsproxy.addons.capture import Capture  # noqa: E402  (after the sys.path fix)
from rsproxy.addons.inject import Inject  # noqa: E402
from rsproxy.addons.lifecycle import Lifecycle  # noqa: E402
from rsproxy.addons.probe_endpoint import ProbeEndpoint  # noqa: E402
from rsproxy.addons.redirects import Redirects  # noqa: E402
from rsproxy.addons.streaming import Streaming  # noqa: E402
from rsproxy.addons.target_health import TargetHealth  # noqa: E402
from rsproxy.addons.upstream_host import UpstreamHost  # noqa: E402


class Rsproxy:
    """rsproxy's addons as the children of one addon.

    mitmproxy offers every hook to every addon in its chain, each in its own guarded call; eight
    entries would cost the proxy a measurable share of its throughput. As children of one entry
    they are still called in this order, for exactly the hooks each one defines.
    """

    def __init__(self) -> None:
        lifecycle = Lifecycle()
        self.addons = [
            lifecycle,
            ProbeEndpoint(lifecycle),
            UpstreamHost(lifecycle),
            TargetHealth(lifecycle),
            Streaming(),
            Capture(lifecycle),
            Redirects(lifecycle),
            Inject(),
        ]


def make_addons() -> list[object]:
    return [Rsproxy()]


addons = make_addons()
