"""The event envelope (rsproxy/events.py): time-ordered ids and ``Event`` defaults.

Ids must sort in creation order within one process, even when many are made in the same
millisecond or the wall clock steps backwards, because the store pages through events by id.
"""

from __future__ import annotations

import itertools
import re
import threading

from rsproxy.events import KINDS, SCHEMA_VERSION, Event, _IdSource, new_id, now_ms

HEX32 = re.compile(r"[0-9a-f]{32}")


def test_new_id_is_32_lowercase_hex_characters() -> None:
    for _ in range(100):
        assert HEX32.fullmatch(new_id())


def test_new_id_is_strictly_increasing_in_a_tight_loop() -> None:
    ids = [new_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    assert all(a < b for a, b in itertools.pairwise(ids))
    # A tight loop makes many ids per millisecond, so the loop above did cover that case.
    millis = [i[:12] for i in ids]
    assert len(set(millis)) < len(ids)


def test_ids_within_one_millisecond_count_up() -> None:
    source = _IdSource()
    ids = [source.next(1_700_000_000_000) for _ in range(1_000)]
    assert all(a < b for a, b in itertools.pairwise(ids))
    assert {i[:12] for i in ids} == {f"{1_700_000_000_000:012x}"}
    assert all(HEX32.fullmatch(i) for i in ids)


def test_id_prefix_is_the_epoch_millisecond() -> None:
    source = _IdSource()
    assert int(source.next(1_700_000_000_123)[:12], 16) == 1_700_000_000_123
    before = int(now_ms())
    made = int(new_id()[:12], 16)
    after = int(now_ms())
    assert before <= made <= after


def test_ids_keep_increasing_when_the_clock_steps_back() -> None:
    source = _IdSource()
    first = source.next(2_000_000)
    second = source.next(1_000_000)  # the wall clock moved backwards (NTP adjustment)
    third = source.next(1_000_001)
    assert first < second < third


def test_ids_from_many_threads_are_unique() -> None:
    source = _IdSource()
    out: list[list[str]] = [[] for _ in range(8)]

    def make(bucket: list[str]) -> None:
        for _ in range(2_000):
            bucket.append(source.next())

    threads = [threading.Thread(target=make, args=(bucket,)) for bucket in out]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    every = [i for bucket in out for i in bucket]
    assert len(every) == 16_000
    assert len(set(every)) == len(every)
    for bucket in out:  # each thread sees its own ids in order
        assert bucket == sorted(bucket)


def test_event_defaults() -> None:
    before = now_ms()
    event = Event(kind="custom", data={"a": 1})
    after = now_ms()
    assert event.source == "proxy"
    assert before <= event.ts <= after
    assert HEX32.fullmatch(event.id)
    assert event.page_id is None
    assert event.session_id == ""
    assert event.project == ""
    assert event.schema_version == SCHEMA_VERSION == 1


def test_each_event_gets_its_own_id_and_later_events_sort_after() -> None:
    events = [Event(kind="custom", data={}) for _ in range(100)]
    ids = [e.id for e in events]
    assert len(set(ids)) == 100
    assert ids == sorted(ids)


def test_to_dict_carries_the_whole_envelope() -> None:
    event = Event(
        kind="console",
        data={"level": "log"},
        source="probe",
        ts=12.5,
        page_id="p1",
        session_id="s1",
        project="proj",
    )
    assert event.to_dict() == {
        "id": event.id,
        "ts": 12.5,
        "project": "proj",
        "session_id": "s1",
        "page_id": "p1",
        "source": "probe",
        "kind": "console",
        "schema_version": SCHEMA_VERSION,
        "data": {"level": "log"},
    }


def test_known_kinds_include_every_documented_kind() -> None:
    documented = {
        "http",
        "console",
        "error",
        "vital",
        "long_task",
        "resource",
        "render",
        "state",
        "dom_mutation",
        "tracking",
        "graphql",
        "sql",
        "ws_message",
        "process",
        "exec_result",
        "custom",
        "issue",
    }
    assert documented <= KINDS
