"""GraphQL calls seen by the probe in Chromium, through a real ``rsproxy start``.

fixtures/pages/graphql.html posts a query (with a fragment, arguments holding braces and a
comment) and a mutation (with an alias and a directive), and sends an anonymous query by XHR
GET. Each becomes a ``graphql`` event next to its ``resource`` event, with the same request id.
"""

from __future__ import annotations

from typing import Any

import pytest

from rsproxy.testing import DaemonProcess


@pytest.mark.browser
def test_graphql_operations_are_reported(daemon: DaemonProcess, page: Any) -> None:
    page.goto(daemon.proxy_url + "/graphql-page")
    result = page.evaluate("window.runGraphql()")
    assert result["query"] == {"data": {"user": {"id": "1", "name": "Alice"}}}
    assert result["mutation"]["errors"] == [{"message": "not allowed"}]
    page_id = page.evaluate("window.__rsproxy.page_id")

    events = daemon.wait_for_events(
        lambda evs: len([e for e in evs if e["page_id"] == page_id]) >= 3, kind="graphql"
    )
    ops = {e["data"]["operation_name"]: e["data"] for e in events if e["page_id"] == page_id}
    assert set(ops) == {"GetUser", "AddTodo", None}

    query = ops["GetUser"]
    assert query["operation_type"] == "query"
    # user, id, name, friends, friends.id, friends.name, and the fragment's email, avatar
    assert (query["field_count"], query["depth"], query["complexity"]) == (8, 3, 15)
    assert query["initiator"] == "fetch" and query["method"] == "POST"
    assert query["status"] == 200 and query["ok"] is True and query["errors"] == 0
    assert query["url"] == daemon.proxy_url + "/graphql"
    assert query["request_id"].startswith(page_id + "-") and query["duration_ms"] >= 0

    mutation = ops["AddTodo"]
    assert mutation["operation_type"] == "mutation"
    # addTodo, item (aliased todo), item.id, ok
    assert (mutation["field_count"], mutation["depth"], mutation["complexity"]) == (4, 3, 8)
    assert mutation["errors"] == 1

    anonymous = ops[None]
    assert anonymous["operation_type"] == "query" and anonymous["initiator"] == "xhr"
    assert anonymous["method"] == "GET"
    assert (anonymous["field_count"], anonymous["depth"], anonymous["complexity"]) == (2, 2, 3)

    resources = daemon.wait_for_events(
        lambda evs: len([e for e in evs if e["page_id"] == page_id]) >= 3, kind="resource"
    )
    resource_ids = {e["data"].get("request_id") for e in resources if e["page_id"] == page_id}
    assert {op["request_id"] for op in ops.values()} <= resource_ids
