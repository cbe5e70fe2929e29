"""Build the served probe: minify injected_js/probe.js into injected_js/probe.min.js.

The daemon serves probe.min.js (rsproxy/api.py, ``probe_script()``); probe.js is the readable
source. Both are committed, and tests/injected_js/test_probe_static.py checks that probe.min.js
is what this script makes from probe.js, so run it after every change to probe.js:

    python injected_js/build.py

It uses the esbuild version pinned in injected_js/package.json and package-lock.json, installed
into injected_js/node_modules with ``npm ci`` when it is not there yet (needs Node and npm; the
npm registry is used only then). ``--outfile PATH`` writes somewhere else, which the up-to-date
test uses to rebuild into a temporary file.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "probe.js"
OUTPUT = HERE / "probe.min.js"
FLAGS = [
    "--minify",
    "--target=es2017",
    "--charset=utf8",
    "--legal-comments=none",
    "--log-level=warning",
]


def pinned_version() -> str:
    return str(json.loads((HERE / "package.json").read_text())["devDependencies"]["esbuild"])


def esbuild() -> Path:
    """The pinned esbuild binary, installed with ``npm ci`` if missing or another version."""
    name = "esbuild.cmd" if sys.platform == "win32" else "esbuild"
    binary = HERE / "node_modules" / ".bin" / name
    if not binary.exists() or _version(binary) != pinned_version():
        npm = shutil.which("npm")
        if npm is None:
            raise SystemExit("npm is not on PATH; it is needed to install esbuild")
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True, stdout=sys.stderr
        )
    return binary


def _version(binary: Path) -> str:
    result = subprocess.run([str(binary), "--version"], capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else ""


def build(outfile: Path = OUTPUT) -> Path:
    subprocess.run(
        [str(esbuild()), SOURCE.name, *FLAGS, f"--outfile={outfile}"], cwd=HERE, check=True
    )
    return outfile


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outfile", type=Path, default=OUTPUT, help="default: %(default)s")
    args = parser.parse_args(argv)
    build(args.outfile.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
