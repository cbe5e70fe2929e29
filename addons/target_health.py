"""Gives the browser a clear 502 page naming the target when the dev server cannot be reached.

mitmproxy's own answer to a refused connection is a terse "502 Bad Gateway" with a socket error.
Before each new upstream connection this addon checks that the target accepts connections; if it
does not, the connection is failed with a message that says which target rsproxy is proxying and
what to do, which mitmproxy then shows on its 502 page. The check costs one loopback connect per
new upstream connection (browsers keep theirs alive), never one per request.
"""

from __future__ import annotations

import asyncio
import errno

from mitmproxy.proxy import server_hooks

from .lifecycle import Lifecycle

CHECK_TIMEOUT = 3.0


class TargetHealth:
    def __init__(self, lifecycle: Lifecycle) -> None:
        self.lifecycle = lifecycle

    async def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        runtime = self.lifecycle.runtime
        server = data.server
        if runtime is None or server.address is None or server.address[1] == runtime.api_port:
            return
        host, port = server.address[0], server.address[1]
        problem = await unreachable(host, port)
        if problem:
            target = runtime.settings.target or f"{host}:{port}"
            server.error = (
                f"rsproxy could not reach the target {target} ({problem}). "
                "Is the dev server running? Start it, or restart rsproxy with the right --target, "
                "then reload this page."
            )


async def unreachable(host: str, port: int) -> str | None:
    """None if ``host:port`` accepts a TCP connection, else a short reason."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), CHECK_TIMEOUT)
    except TimeoutError:
        return f"no answer within {CHECK_TIMEOUT:g} s"
    except OSError as exc:
        if exc.errno == errno.ECONNREFUSED or isinstance(exc, ConnectionRefusedError):
            return "connection refused"
        return exc.strerror or str(exc)
    writer.close()
    return None
