"""The installed wheel is self-contained: `pip install .` into a fresh venv outside the repository
gives a working `rsproxy start` on the demo app, with the probe, the pipeline and the addons.

Slow (it installs every dependency into a new virtualenv), so it runs once per suite.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from rsproxy.testing import DaemonProcess

REPO = Path(__file__).resolve().parents[1]


def test_pip_install_gives_a_working_rsproxy_start(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    install = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(REPO)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert install.returncode == 0, install.stderr[-3000:]

    # Run from a folder that has nothing of the repository in it.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    probe = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import rsproxy, rsproxy.addons.rsproxy as a; print(rsproxy.__file__, a.__file__)",
        ],
        capture_output=True,
        text=True,
        cwd=elsewhere,
    )
    assert probe.returncode == 0, probe.stderr
    assert str(REPO) not in probe.stdout, "the installed package still points into the repository"

    with DaemonProcess(
        tmp_path / "home",
        project="wheel",
        cwd=elsewhere,
        executable=[str(venv / "bin" / "rsproxy")],
    ) as daemon:
        home = httpx.get(daemon.proxy_url + "/", trust_env=False)
        assert home.status_code == 200
        assert home.text.count('<script src="/__rsproxy/probe.js"') == 1
        script = httpx.get(daemon.proxy_url + "/__rsproxy/probe.js", trust_env=False)
        assert script.status_code == 200 and "window.__rsproxy" in script.text
        api = httpx.get(daemon.proxy_url + "/api/products", trust_env=False)
        assert api.status_code == 200
        daemon.wait_for_events(
            lambda evs: {"/", "/api/products"} <= {e["data"]["path"] for e in evs}, kind="http"
        )
