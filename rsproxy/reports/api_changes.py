"""The ``api_changes`` report: how the API the app calls changed between two sessions.

``session_diff`` (rsproxy/reports/sessions.py) compares figures — latency, error rates, render
counts. This report compares the API's *shape*: endpoints that appeared or disappeared, status
codes newly answered or no longer seen, auth patterns that changed, and contract changes in the
query, the request body and each response body (rsproxy/analysis/contract_diff.py), each marked
breaking or not. Endpoints are matched by the catalog's key — service, method and path template.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from rsproxy.analysis.contract_diff import diff
from rsproxy.reports import Params, ReportContext, report
from rsproxy.reports.catalog import CatalogFilter, _entries


class ApiChangesParams(Params):
    a: str = Field(default="latest-1", description="The earlier session: id, latest-N, commit.")
    b: str = Field(default="latest", description="The later session.")
    service: str | None = Field(default=None, description="Only this service (app, stripe, ...).")
    breaking_only: bool = Field(default=False, description="Only changes that break clients.")


def _schema(part: dict[str, Any] | None) -> dict[str, Any] | None:
    return part.get("schema") if part else None


def _contract_changes(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """Field changes in the query, the request body and each status's response body."""
    a, b = old.get("contract") or {}, new.get("contract") or {}
    changes = []
    for part in ("query", "request"):
        for change in diff(_schema(a.get(part)), _schema(b.get(part)), "request"):
            changes.append({"where": part, **change})
    responses_a, responses_b = a.get("responses") or {}, b.get("responses") or {}
    for status in sorted(responses_a.keys() & responses_b.keys()):
        for change in diff(_schema(responses_a[status]), _schema(responses_b[status]), "response"):
            changes.append({"where": f"response {status}", **change})
    return changes


def _endpoint_changes(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    changes = []
    codes_a, codes_b = set(old["status_codes"]), set(new["status_codes"])
    for code in sorted(codes_b - codes_a):
        failing = code == "none" or int(code) >= 500
        changes.append(
            {
                "where": "status",
                "change": "status_added",
                "detail": f"now answers {code}",
                "breaking": failing,
            }
        )
    for code in sorted(codes_a - codes_b):
        changes.append(
            {
                "where": "status",
                "change": "status_gone",
                "detail": f"no longer answered {code}",
                "breaking": False,
            }
        )
    auth_a, auth_b = set(old["auth"]), set(new["auth"])
    if auth_a != auth_b:
        changes.append(
            {
                "where": "auth",
                "change": "auth_changed",
                "detail": f"{', '.join(sorted(auth_a)) or 'none'} → "
                f"{', '.join(sorted(auth_b)) or 'none'}",
                # Calls that carried credentials and now carry none, or the other way round.
                "breaking": True,
            }
        )
    changes.extend(_contract_changes(old, new))
    return changes


def _brief(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "key": entry["key"],
        "service": entry["service"],
        "method": entry["method"],
        "path_template": entry["path_template"],
        "calls": entry["calls"],
        "status_codes": entry["status_codes"],
    }


@report("api_changes", ApiChangesParams)
def api_changes(ctx: ReportContext, params: ApiChangesParams) -> dict[str, Any]:
    """Endpoints added and removed, and per endpoint its status, auth and contract changes."""
    a, b = ctx.session(params.a), ctx.session(params.b)
    scope = CatalogFilter(session=a, service=params.service)
    before = {e["key"]: e for e in _entries(ctx, a, scope)}
    after = {e["key"]: e for e in _entries(ctx, b, scope.model_copy(update={"session": b}))}
    added = [_brief(after[k]) for k in sorted(after.keys() - before.keys())]
    removed = [_brief(before[k]) for k in sorted(before.keys() - after.keys())]
    changed = []
    for key in sorted(before.keys() & after.keys()):
        changes = _endpoint_changes(before[key], after[key])
        if params.breaking_only:
            changes = [c for c in changes if c["breaking"]]
        if changes:
            changed.append(
                {
                    **_brief(after[key]),
                    "breaking": any(c["breaking"] for c in changes),
                    "changes": changes,
                }
            )
    changed.sort(key=lambda e: (not e["breaking"], e["key"]))
    if params.breaking_only:
        added = []  # a new endpoint breaks nobody
    return {
        "a": a,
        "b": b,
        "counts": {
            "added": len(added),
            "removed": len(removed),
            "changed": len(changed),
            "breaking": sum(1 for e in changed if e["breaking"]),
        },
        "added": added,
        "removed": removed,
        "changed": changed,
        # Traffic shows what was called, not what exists: an endpoint missing from b may only
        # have gone uncalled.
        "notes": [f"{len(removed)} endpoint(s) of {a} were not called in {b}"] if removed else [],
    }
