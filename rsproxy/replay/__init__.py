"""Offline analysis: replay a HAR or mitmproxy flow file through the pipeline (`rsproxy replay`).

``har`` streams HAR files and turns entries into ``http`` events, ``flows`` does the same for
mitmproxy flow files, and ``run`` drives either through the project's pipeline into a new
session of its store.
"""

from __future__ import annotations

from .run import ReplaySummary, detect_format, replay

__all__ = ["ReplaySummary", "detect_format", "replay"]
