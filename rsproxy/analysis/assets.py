"""What a static asset, or the dev server's own traffic, looks like next to a call to the app.

One definition for every place that tells them apart: the catalog leaves assets out of the API,
the detectors judge API calls only, and the network listings hide assets and live-reload traffic
unless asked for them. Each adds what its own question needs on top (the detectors also set
documents and data files aside, the catalog pages).
"""

from __future__ import annotations

ASSET_EXTENSIONS = frozenset(
    {
        # scripts, and the sources a dev server answers with scripts (Vite serves /src/App.tsx)
        ".js",
        ".mjs",
        ".cjs",
        ".jsx",
        ".ts",
        ".tsx",
        ".map",
        ".css",
        ".png",
        ".jpg",
        ".jpeg",
        ".gif",
        ".svg",
        ".ico",
        ".webp",
        ".avif",
        ".bmp",
        ".woff",
        ".woff2",
        ".ttf",
        ".otf",
        ".eot",
        ".mp3",
        ".mp4",
        ".ogg",
        ".webm",
        ".wasm",
        ".webmanifest",
    }
)

# Found anywhere in a lower-cased content type: `text/javascript; charset=utf-8`, `image/svg+xml`.
ASSET_TYPE_MARKERS = (
    "text/css",
    "javascript",
    "ecmascript",
    "image/",
    "font/",
    "audio/",
    "video/",
    "wasm",
    "application/font-",
    "application/x-font",
    "manifest+json",
)

# Found anywhere in a path: dev servers' module graphs, HMR sockets and hot-update chunks.
DEV_SERVER_MARKERS = (
    "/@vite/",
    "/@fs/",
    "/@id/",
    "/@react-refresh",
    "/__vite",
    "/node_modules/",
    "/__webpack_hmr",
    "/_next/static/",
    "/_next/webpack-hmr",
    "/sockjs-node",
    ".hot-update.",
    "/_nuxt/",
)


def extension(path: str) -> str:
    """The lower-cased extension of a path's last segment, with its dot; '' when it has none."""
    dot = path.rfind(".")
    return path[dot:].lower() if dot > path.rfind("/") else ""


def is_asset_path(path: str) -> bool:
    return extension(path) in ASSET_EXTENSIONS


def is_asset_type(content_type: str) -> bool:
    lowered = content_type.lower()
    return any(marker in lowered for marker in ASSET_TYPE_MARKERS)


def is_dev_server_path(path: str) -> bool:
    return any(marker in path for marker in DEV_SERVER_MARKERS)
