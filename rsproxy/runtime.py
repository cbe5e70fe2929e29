"""The daemon's runtime: one capture session's store, pipeline worker, local API and hot reload.

The mitmproxy addons own the wire; this object owns everything behind it. It is started from the
``running`` hook of the lifecycle addon (so ``rsproxy start`` and a user's own ``mitmdump -s
addons/rsproxy.py`` run the same code) and stopped from ``done``, which drains the queue and
flushes the store before the process exits.

Threads: the asyncio loop (mitmproxy, the API, the watcher) only calls ``submit``, which never
blocks; the pipeline worker thread runs the stages and is the store's single writer.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rsproxy.errors import PipelineError
from rsproxy.events import Event, new_id, now_ms
from rsproxy.pipeline.engine import Pipeline
from rsproxy.pipeline.spec import PipelineSpec, default_pipeline_path, load_spec
from rsproxy.pipeline.stage import StageContext
from rsproxy.pipeline.watch import watch_pipeline
from rsproxy.pipeline.worker import PipelineWorker
from rsproxy.probe_messages import ProbeIngest
from rsproxy.project import BuildInfo, Project
from rsproxy.state import DaemonState, remove_state
from rsproxy.store import SessionInfo, Store

log = logging.getLogger("rsproxy")

DEFAULT_BODY_LIMIT = 64 * 1024


@dataclass
class RuntimeSettings:
    project: str
    proxy_port: int
    target: str | None = None
    pipeline_path: Path = field(default_factory=default_pipeline_path)
    proxy_host: str = "127.0.0.1"
    body_limit: int = DEFAULT_BODY_LIMIT
    watch_pipeline: bool = True
    cwd: Path = field(default_factory=Path.cwd)

    @property
    def proxy_url(self) -> str:
        host = "127.0.0.1" if self.proxy_host in ("", "0.0.0.0", "::") else self.proxy_host
        return f"http://{host}:{self.proxy_port}"


@dataclass
class PipelineStatus:
    source: str
    stages: list[str]
    loaded_ms: float
    reloads: int = 0
    last_error: str | None = None


# Python's cyclic garbage collector runs a young-generation pass every 700 allocations, and
# the pipeline allocates several dicts and lists per event, nearly all freed by reference
# counting long before a pass finds them: at 100k events/s those passes (and the older ones they
# trigger, which walk every long-lived object) took a quarter of the pipeline's time. A larger
# first threshold keeps cycles collected, just less often.
GC_THRESHOLDS = (50_000, 20, 100)
# How long start-up waits for the store's lock: `rsproxy mcp` keeps the file open, read-only, for
# a second after its last call, and a starting daemon should outwait it rather than fail.
STORE_WAIT_S = 10.0


def tune_gc() -> None:
    """Set the collector up for a long-running daemon: what exists once it has started (imports,
    mitmproxy, the stages' tables) is frozen out of every future pass, and passes run less
    often. ``bench/pipeline_ingest.py`` applies the same so it measures what the daemon runs."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class Runtime:
    """Started once, stopped once. ``submit`` may be called from the event loop at any time."""

    def __init__(self, settings: RuntimeSettings) -> None:
        self.settings = settings
        self.project = Project.resolve(settings.project)
        self.token = secrets.token_urlsafe(32)
        self.session_id = new_id()
        self.probe = ProbeIngest()
        self.started_ms = now_ms()
        self.store: Store | None = None
        self.worker: PipelineWorker | None = None
        self.api_port: int | None = None
        self.pipeline_status: PipelineStatus | None = None
        self.captured = 0
        # Set by `clear_events` (the API's /api/clear): reports read the live session from here.
        self.cleared_ms: float | None = None
        self._api: Any = None
        self._watch_stop = asyncio.Event()
        self._watch_task: asyncio.Task[None] | None = None
        self._shutdown: Callable[[], None] | None = None

    # ---- lifecycle ------------------------------------------------------------------------------

    async def start(self, request_shutdown: Callable[[], None] | None = None) -> None:
        from rsproxy.api import ApiServer  # the API imports this module's types

        self._shutdown = request_shutdown
        spec = load_spec(self.settings.pipeline_path)
        self.project.ensure_data_dir()
        # A reader (`rsproxy mcp`) may hold the file for a moment after its last call.
        self.store = Store.open(self.project.store_path, wait_s=STORE_WAIT_S)
        build = BuildInfo.detect(self.settings.cwd)
        self.store.start_session(
            SessionInfo(
                id=self.session_id,
                project=self.project.name,
                source="proxy",
                target=self.settings.target,
                started_ms=self.started_ms,
                git_commit=build.commit,
                git_branch=build.branch,
                git_dirty=build.dirty,
                pipeline=spec.source,
                meta={"proxy_url": self.settings.proxy_url, "pid": os.getpid()},
            )
        )
        self.worker = PipelineWorker(self._build(spec))
        tune_gc()
        self.worker.start()
        self.pipeline_status = PipelineStatus(spec.source, spec.stage_types(), now_ms())
        self._api = ApiServer(self)
        self.api_port = await self._api.start()
        self._write_state(spec)
        if self.settings.watch_pipeline:
            self._watch_task = asyncio.create_task(
                watch_pipeline(
                    Path(spec.source), self._reload, self._reload_failed, self._watch_stop
                )
            )

    async def replay(
        self, path: Path, pipeline_path: Path | None = None, body_limit: int | None = None
    ) -> dict[str, Any]:
        """Replay a capture file into a new session of this daemon's store (it is the store's
        writer, so `rsproxy replay` comes here while the daemon runs). The steps run on the
        pipeline worker between live batches; the pipeline is the daemon's unless another is
        given. Returns the replay's summary; raises ReplayError or PipelineError as ``replay``."""
        from rsproxy.replay.run import BODY_LIMIT, detect_format, replay_steps

        assert self.worker is not None and self.store is not None
        fmt = detect_format(path)
        spec = load_spec(pipeline_path or self.settings.pipeline_path)
        limit = BODY_LIMIT if body_limit is None else body_limit
        steps = replay_steps(self.store, path, fmt, self.project, spec, limit)
        summary = await asyncio.wrap_future(self.worker.run_job(steps))
        result: dict[str, Any] = summary.to_dict()
        return result

    async def stop(self) -> None:
        self._watch_stop.set()
        if self._watch_task is not None:
            try:
                await asyncio.wait_for(self._watch_task, 5)
            except (TimeoutError, asyncio.CancelledError):
                self._watch_task.cancel()
        if self._api is not None:
            await self._api.stop()
        if self.worker is not None:
            await asyncio.to_thread(self.worker.stop)
        if self.store is not None:
            self.store.end_session(self.session_id, now_ms())
            self.store.checkpoint()
            self.store.close()
            self.store = None
        remove_state(self.project.state_path, os.getpid())

    def request_shutdown(self) -> None:
        if self._shutdown is not None:
            self._shutdown()

    # ---- events ---------------------------------------------------------------------------------

    def submit(self, event: Event) -> bool:
        """Hand an event to the pipeline. Never blocks; a full queue counts it as dropped."""
        event.project = self.project.name
        event.session_id = self.session_id
        if event.kind == "http":
            self.captured += 1
        worker = self.worker
        return worker.submit(event) if worker is not None else False

    # ---- pipeline -------------------------------------------------------------------------------

    def _build(self, spec: PipelineSpec) -> Pipeline:
        return Pipeline(spec, StageContext(self.project.name, self.session_id, self.store))

    def _reload(self, spec: PipelineSpec) -> None:
        assert self.worker is not None and self.pipeline_status is not None
        try:
            pipeline = self._build(spec)
        except Exception as exc:  # a stage constructor that fails on a valid config
            self._reload_failed(PipelineError(f"{spec.source}: cannot build the pipeline: {exc}"))
            return
        self.worker.swap(pipeline)
        status = self.pipeline_status
        status.stages, status.loaded_ms, status.last_error = spec.stage_types(), now_ms(), None
        status.reloads += 1
        log.info("pipeline file changed; now running: %s", " → ".join(spec.stage_types()))

    def _reload_failed(self, error: PipelineError) -> None:
        if self.pipeline_status is not None:
            self.pipeline_status.last_error = str(error)

    # ---- state ----------------------------------------------------------------------------------

    def _write_state(self, spec: PipelineSpec) -> None:
        assert self.api_port is not None
        DaemonState(
            pid=os.getpid(),
            project=self.project.name,
            session_id=self.session_id,
            proxy_url=self.settings.proxy_url,
            proxy_port=self.settings.proxy_port,
            api_port=self.api_port,
            token=self.token,
            target=self.settings.target,
            started_ms=self.started_ms,
            pipeline=spec.source,
        ).write(self.project.state_path)

    def status(self) -> dict[str, Any]:
        worker = self.worker.stats() if self.worker is not None else {}
        pipeline = self.pipeline_status
        return {
            "project": self.project.name,
            "session_id": self.session_id,
            "pid": os.getpid(),
            "proxy_url": self.settings.proxy_url,
            "target": self.settings.target,
            "api_port": self.api_port,
            "store": str(self.project.store_path),
            "uptime_s": round(time.time() - self.started_ms / 1000, 1),
            "captured_http": self.captured,
            "events": {
                "queued": worker.get("queued", 0),
                "processed": worker.get("processed", 0),
                "dropped": worker.get("dropped", 0),
            },
            "pipeline": {
                "source": pipeline.source if pipeline else None,
                "stages": pipeline.stages if pipeline else [],
                "reloads": pipeline.reloads if pipeline else 0,
                "last_error": pipeline.last_error if pipeline else None,
                "stage_stats": worker.get("stages", {}),
            },
            "probe": self.probe.stats.as_dict(),
        }
