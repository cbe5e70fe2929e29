"""Starts and stops the rsproxy runtime with mitmproxy, and declares rsproxy's mitmproxy options.

The runtime (store, pipeline worker, local API, hot reload) comes up in ``running`` — after the
proxy has bound its port, which is why the pipeline file is validated earlier, in ``configure``:
an invalid pipeline fails there with every problem listed, before anything listens. ``done``
drains the queue and flushes the store. The other addons reach the runtime through this one.
"""

from __future__ import annotations

import logging
from pathlib import Path

from mitmproxy import ctx, exceptions
from mitmproxy.addonmanager import Loader
from mitmproxy.proxy.mode_specs import ReverseMode

from rsproxy.errors import PipelineError
from rsproxy.pipeline.spec import default_pipeline_path, load_spec
from rsproxy.project import default_project_name
from rsproxy.runtime import DEFAULT_BODY_LIMIT, Runtime, RuntimeSettings

log = logging.getLogger("rsproxy")


class Lifecycle:
    def __init__(self) -> None:
        self.runtime: Runtime | None = None

    def load(self, loader: Loader) -> None:
        loader.add_option(
            "rsproxy_project",
            str,
            "",
            "rsproxy project name (default: the git root's folder name).",
        )
        loader.add_option(
            "rsproxy_pipeline", str, "", "Pipeline YAML file (default: rsproxy's default.yaml)."
        )
        loader.add_option(
            "rsproxy_body_limit",
            int,
            DEFAULT_BODY_LIMIT,
            "Bytes of each request and response body kept in captured events.",
        )
        loader.add_option(
            "rsproxy_watch_pipeline", bool, True, "Reload the pipeline file when it changes."
        )

    def configure(self, updated: set[str]) -> None:
        if "rsproxy_pipeline" in updated:
            try:
                load_spec(self._pipeline_path())
            except PipelineError as exc:
                raise exceptions.OptionsError(str(exc)) from exc
        if "rsproxy_body_limit" in updated and ctx.options.rsproxy_body_limit < 0:
            raise exceptions.OptionsError(
                f"rsproxy_body_limit must be >= 0 bytes, got {ctx.options.rsproxy_body_limit}"
            )

    async def running(self) -> None:
        if self.runtime is not None:
            return
        options = ctx.options
        settings = RuntimeSettings(
            project=options.rsproxy_project or default_project_name(),
            proxy_port=options.listen_port or 8080,
            proxy_host=options.listen_host or "127.0.0.1",
            target=reverse_target(options.mode),
            pipeline_path=self._pipeline_path(),
            body_limit=options.rsproxy_body_limit,
            watch_pipeline=options.rsproxy_watch_pipeline,
        )
        runtime = Runtime(settings)
        await runtime.start(request_shutdown=ctx.master.shutdown)
        self.runtime = runtime
        log.info("rsproxy session %s for project %s", runtime.session_id, runtime.project.name)

    async def done(self) -> None:
        if self.runtime is not None:
            runtime, self.runtime = self.runtime, None
            await runtime.stop()

    @staticmethod
    def _pipeline_path() -> Path:
        configured = ctx.options.rsproxy_pipeline
        return Path(configured).expanduser() if configured else default_pipeline_path()


def reverse_target(modes: list[str]) -> str | None:
    """The upstream URL of the first reverse-proxy mode, if any."""
    for spec in modes:
        if spec.startswith("reverse:"):
            mode = ReverseMode.parse(spec)
            scheme, (host, port) = mode.scheme, mode.address
            if ":" in host:
                host = f"[{host}]"
            return f"{scheme}://{host}:{port}"
    return None
