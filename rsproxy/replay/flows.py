"""Read mitmproxy flow files (``mitmdump -w FILE``, mitmweb's "save") flow by flow.

Each HTTP flow becomes the very ``http`` event live capture makes from it (addons/capture.py's
``http_event``), with ``source="replay"``; WebSocket messages kept in the flow become
``ws_message`` events. Other flows (TCP, UDP, DNS) are skipped with that reason. mitmproxy's own
reader streams the file, so memory stays proportional to one flow.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from mitmproxy import exceptions, http
from mitmproxy.io import FlowReader

from rsproxy.addons.capture import http_event
from rsproxy.errors import FlowFileError
from rsproxy.events import Event

_WS_TEXT_LIMIT = 4096


@dataclass
class FlowItem:
    """One flow read: its events, or the reason it was skipped."""

    index: int
    events: list[Event]
    skipped: str | None = None


class FlowFileReader:
    """Streams a flow file; ``bytes_read`` is for progress bars."""

    def __init__(self, path: Path, body_limit: int) -> None:
        self.path = path
        self.body_limit = body_limit
        self.bytes_read = 0
        self.flows_seen = 0

    def items(self) -> Iterator[FlowItem]:
        with self.path.open("rb") as handle:
            reader = FlowReader(handle)
            stream = iter(reader.stream())
            while True:
                try:
                    flow = next(stream)
                except StopIteration:
                    return
                except exceptions.FlowReadException as exc:
                    raise self._error(handle, str(exc)) from None
                except (ValueError, KeyError, TypeError) as exc:
                    # A corrupt flow can fail inside mitmproxy's state conversion, past its checks.
                    raise self._error(handle, f"{type(exc).__name__}: {exc}") from None
                self.bytes_read = handle.tell()
                index = self.flows_seen
                self.flows_seen += 1
                if not isinstance(flow, http.HTTPFlow):
                    yield FlowItem(index, [], f"not an HTTP flow ({flow.type})")
                    continue
                try:
                    event = http_event(flow, self.body_limit)
                except Exception as exc:  # a flow mitmproxy read but that lacks what capture needs
                    yield FlowItem(index, [], f"unusable HTTP flow ({type(exc).__name__})")
                    continue
                event.source = "replay"
                yield FlowItem(index, [event, *self._ws_events(flow)])

    def _ws_events(self, flow: http.HTTPFlow) -> list[Event]:
        if flow.websocket is None:
            return []
        out = []
        for message in flow.websocket.messages:
            text = message.text if message.is_text else None
            data = {
                "url": flow.request.url,
                "direction": "client" if message.from_client else "server",
                "opcode": "text" if message.is_text else "binary",
                "size": len(message.content),
                "text": text[:_WS_TEXT_LIMIT] if text is not None else None,
                "truncated": text is not None and len(text) > _WS_TEXT_LIMIT,
            }
            out.append(
                Event(kind="ws_message", data=data, source="replay", ts=message.timestamp * 1000)
            )
        return out

    def _error(self, handle: IO[bytes], problem: str) -> FlowFileError:
        at = handle.tell()
        return FlowFileError(
            f"{self.path}: cannot read flow {self.flows_seen} (near byte {at}): {problem}. "
            f"{self.flows_seen} flows were read before it; the file is truncated or not a "
            "mitmproxy flow file (write one with `mitmdump -w FILE`)"
        )
