"""How the CLI (and later the MCP server) reads a project: through its daemon, or from its store.

With a daemon running, the store is open for writing in that process and DuckDB will not let a
second process open it, so reads go over the daemon's local API with the token from the state
file. With no daemon, the store is opened read-only, so past and replayed sessions stay
queryable. Both answer the same calls with the same shapes.
"""

from __future__ import annotations

from typing import Any, Protocol

import httpx

from rsproxy.errors import DaemonError, NotRunningError
from rsproxy.project import Project
from rsproxy.state import DaemonState
from rsproxy.store import Store


class Reader(Protocol):
    def events(
        self, *, kinds: list[str], session: str, since_ms: float | None, limit: int
    ) -> list[dict[str, Any]]: ...

    def report(self, name: str, **params: Any) -> Any: ...

    def close(self) -> None: ...


class DaemonClient:
    """The local API of a running daemon."""

    def __init__(self, state: DaemonState, timeout: float = 10.0) -> None:
        self.state = state
        self._http = httpx.Client(
            base_url=state.api_url,
            headers={"Authorization": f"Bearer {state.token}"},
            timeout=timeout,
            trust_env=False,  # never send loopback API calls through a configured HTTP proxy
        )

    @classmethod
    def for_project(cls, project: Project) -> DaemonClient:
        state = DaemonState.read(project.state_path)
        if state is None:
            raise NotRunningError(
                f"rsproxy is not running for project {project.name!r}; start it with `rsproxy start`"
            )
        return cls(state)

    def get(self, path: str, **params: Any) -> Any:
        try:
            response = self._http.get(
                path, params={k: v for k, v in params.items() if v is not None}
            )
        except httpx.HTTPError as exc:
            raise DaemonError(f"cannot reach the daemon at {self.state.api_url}: {exc}") from exc
        if response.status_code >= 400:
            raise DaemonError(f"daemon answered {response.status_code}: {response.text}")
        return response.json()

    def post(self, path: str, body: Any = None, timeout: float | None = None) -> Any:
        try:
            response = self._http.post(
                path, json=body, timeout=timeout if timeout is not None else self._http.timeout
            )
        except httpx.HTTPError as exc:
            raise DaemonError(f"cannot reach the daemon at {self.state.api_url}: {exc}") from exc
        if response.status_code >= 400:
            try:
                message = response.json().get("error") or response.text
            except ValueError:
                message = response.text
            raise DaemonError(message)
        return response.json()

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = self.get("/api/status")
        return result

    def events(
        self, *, kinds: list[str], session: str, since_ms: float | None, limit: int
    ) -> list[dict[str, Any]]:
        answer = self.get(
            "/api/events",
            kind=",".join(kinds) or None,
            session=session,
            since=since_ms,
            limit=limit,
        )
        events: list[dict[str, Any]] = answer["events"]
        return events

    def report(self, name: str, **params: Any) -> Any:
        return self.post(f"/api/report/{name}", {k: v for k, v in params.items() if v is not None})

    def close(self) -> None:
        self._http.close()


class StoreReader:
    """The project's store, opened read-only (no daemon is running)."""

    def __init__(self, project: Project) -> None:
        self.store = Store.open_readonly(project.store_path)

    def events(
        self, *, kinds: list[str], session: str, since_ms: float | None, limit: int
    ) -> list[dict[str, Any]]:
        if session in ("current", "latest"):
            session_id = self.store.latest_session_id()
        elif session == "all":
            session_id = None
        else:
            session_id = session
        return self.store.events(kinds=kinds, session_id=session_id, since_ms=since_ms, limit=limit)

    def report(self, name: str, **params: Any) -> Any:
        from rsproxy import reports

        ctx = reports.ReportContext(self.store)
        return reports.run(name, ctx, {k: v for k, v in params.items() if v is not None})

    def close(self) -> None:
        self.store.close()


def open_reader(project: Project) -> Reader:
    """The daemon if one runs for the project, else the store read-only."""
    state = DaemonState.read(project.state_path)
    if state is not None:
        return DaemonClient(state)
    return StoreReader(project)
