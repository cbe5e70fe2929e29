"""mitmproxy flow files recorded by a real ``mitmdump -w`` (conftest.py): events and bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from rsproxy.errors import FlowFileError
from rsproxy.project import Project
from rsproxy.replay import detect_format, replay
from rsproxy.replay.flows import FlowFileReader
from rsproxy.store import Store


def test_each_flow_becomes_the_event_live_capture_makes(catalog_flows: Path) -> None:
    assert detect_format(catalog_flows) == "mitmproxy"
    items = list(FlowFileReader(catalog_flows, body_limit=1024).items())
    assert [i.index for i in items] == list(range(15))
    events = [e for i in items for e in i.events]
    assert all(e.kind == "http" and e.source == "replay" for e in events)
    orders = [e.data for e in events if e.data["path"] == "/api/orders"]
    assert sorted(d["status"] for d in orders) == [201, 201, 422]
    assert all(d["auth"] == "api_key_header" and d["request_body"] for d in orders)
    assert all(d["timings"]["total_ms"] is not None for d in orders)


def test_a_truncated_flow_file_is_refused_and_nothing_is_stored(
    catalog_flows: Path, tmp_path: Path, rsproxy_home: Path
) -> None:
    raw = catalog_flows.read_bytes()
    cut = tmp_path / "cut.flows"
    cut.write_bytes(raw[: len(raw) // 2])
    project = Project("cutflows")
    with pytest.raises(FlowFileError) as caught:
        replay(cut, project)
    message = str(caught.value)
    assert str(cut) in message and "cannot read flow" in message and "near byte" in message
    store = Store.open_readonly(project.store_path)
    try:
        assert store.query("SELECT count(*) AS n FROM sessions")[0]["n"] == 0
        assert store.query("SELECT count(*) AS n FROM http")[0]["n"] == 0
    finally:
        store.close()
