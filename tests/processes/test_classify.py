"""rsproxy/processes/classify.py: command lines as ``ps`` shows them → the dev-process kind.

The command lines are the shapes these tools really run as (npm bin shims resolved to ``node
.../node_modules/<pkg>/...``, retitled processes with their NUL padding, venv scripts), one per
kind the issue lists; the scanner tests then check the real processes of the main kinds.
"""

from __future__ import annotations

import pytest

from rsproxy.processes.classify import (
    CATEGORIES,
    TYPES,
    classify,
    classify_listener,
    normalize_cmdline,
    parse_command,
)

NM = "/home/dev/shop/node_modules"

CASES = [
    # (process name, argv, type, category)
    ("next-server (v1", ["next-server (v15.1.0)", "", ""], "nextjs", "dev_server"),
    ("node", ["node", f"{NM}/.bin/next", "dev"], "nextjs", "dev_server"),
    ("node", ["node", f"{NM}/next/dist/bin/next", "start", "-p", "3000"], "nextjs", "dev_server"),
    ("node", ["node", f"{NM}/vite/bin/vite.js", "--port", "5173"], "vite", "dev_server"),
    ("node", ["node", f"{NM}/.bin/vite"], "vite", "dev_server"),
    ("node", ["node", f"{NM}/.bin/webpack-dev-server"], "webpack-dev-server", "dev_server"),
    ("node", ["node", f"{NM}/webpack-cli/bin/cli.js", "serve"], "webpack-dev-server", "dev_server"),
    ("node", ["node", f"{NM}/webpack/bin/webpack.js", "--watch"], "webpack-watch", "watcher"),
    ("node", ["node", f"{NM}/@expo/cli/build/bin/cli", "start"], "expo", "dev_server"),
    ("node", ["node", f"{NM}/.bin/wrangler", "dev"], "wrangler", "dev_server"),
    ("node", ["node", f"{NM}/prisma/build/index.js", "studio"], "prisma-studio", "dev_server"),
    (
        "uvicorn",
        ["/srv/.venv/bin/python", "/srv/.venv/bin/uvicorn", "app:app"],
        "uvicorn",
        "dev_server",
    ),
    ("python3", ["python3", "-m", "uvicorn", "main:app", "--reload"], "uvicorn", "dev_server"),
    ("gunicorn", ["gunicorn: master [shop.wsgi]"], "gunicorn", "dev_server"),
    (
        "python",
        ["/v/bin/python", "/v/bin/gunicorn", "-w", "2", "shop.wsgi"],
        "gunicorn",
        "dev_server",
    ),
    ("hypercorn", ["/v/bin/python3", "/v/bin/hypercorn", "app:app"], "hypercorn", "dev_server"),
    ("flask", ["/v/bin/python", "/v/bin/flask", "run", "--debug"], "flask", "dev_server"),
    ("python", ["python", "-m", "flask", "run"], "flask", "dev_server"),
    ("python", ["python", "manage.py", "runserver", "0.0.0.0:8000"], "django", "dev_server"),
    ("python3.11", ["python3.11", "-m", "http.server", "8000"], "http.server", "dev_server"),
    ("cargo", ["cargo", "run", "--bin", "api"], "cargo", "dev_server"),
    ("cargo", ["/home/dev/.cargo/bin/cargo", "watch", "-x", "run"], "cargo", "dev_server"),
    ("api", ["/home/dev/shop/target/debug/api"], "cargo", "dev_server"),
    (
        "postgres",
        ["/usr/lib/postgresql/15/bin/postgres", "-D", "/var/lib/pg"],
        "postgres",
        "database",
    ),
    ("postgres", ["postgres: 15/main: checkpointer ", "", "", ""], "postgres", "database"),
    ("mysqld", ["/usr/sbin/mysqld"], "mysql", "database"),
    ("mariadbd", ["/usr/sbin/mariadbd"], "mariadb", "database"),
    ("mongod", ["mongod", "--dbpath", "/data/db"], "mongodb", "database"),
    ("redis-server", ["redis-server 127.0.0.1:6379", "", ""], "redis", "database"),
    ("ngrok", ["ngrok", "http", "3000"], "ngrok", "tunnel"),
    ("cloudflared", ["cloudflared", "tunnel", "--url", "localhost:3000"], "cloudflared", "tunnel"),
    ("dockerd", ["/usr/bin/dockerd", "-H", "fd://"], "docker", "container"),
    ("docker", ["docker", "compose", "up"], "docker", "container"),
    ("turbo", [f"{NM}/turbo-linux-64/bin/turbo", "run", "dev"], "turbo", "runner"),
    ("node", ["node", f"{NM}/typescript/bin/tsc", "--watch"], "tsc-watch", "watcher"),
    ("node", ["node", f"{NM}/.bin/tsup", "src/index.ts", "--watch"], "tsup-watch", "watcher"),
    ("node", ["node", f"{NM}/.bin/nodemon", "server.js"], "nodemon", "watcher"),
    ("npm run dev --p", ["npm run dev --port 5173"], "npm", "runner"),
    ("node", ["node", "/usr/lib/node_modules/npm/bin/npm-cli.js", "run", "dev"], "npm", "runner"),
    (
        "python",
        ["/v/bin/python", "-m", "rsproxy", "start", "--target", ":3000"],
        "rsproxy",
        "rsproxy",
    ),
    ("rsproxy", ["/v/bin/python3", "/v/bin/rsproxy", "mcp"], "rsproxy", "rsproxy"),
    ("mitmdump", ["mitmdump", "-s", "addons/rsproxy.py"], "rsproxy", "rsproxy"),
]


@pytest.mark.parametrize(("name", "argv", "type_", "category"), CASES)
def test_each_kind_is_recognised(name: str, argv: list[str], type_: str, category: str) -> None:
    found = classify(name, argv)
    assert found is not None, f"{argv} not recognised"
    assert (found.type, found.category) == (type_, category)
    assert found.label and len(found.label) <= 80


def test_every_type_has_a_known_category_and_every_listed_type_is_reachable() -> None:
    assert {category for category, _ in TYPES.values()} <= set(CATEGORIES)
    reached = {type_ for *_, type_, _ in CASES}
    # Reached only through classify_listener (a listening interpreter inside a project) or
    # documented alternatives of a covered tool.
    listener_only = {"node", "python", "ruby", "php"}
    others = {"daphne", "granian", "fastapi", "esbuild-watch", "vitest", "pnpm", "yarn", "bun"}
    others |= {"deno", "localtunnel"}
    assert set(TYPES) - reached - listener_only - others == set()


@pytest.mark.parametrize(
    "argv",
    [
        ["sleep", "60"],
        ["/bin/bash", "-l"],
        ["python3", "-c", "print(1)"],
        ["python3", "-m", "pytest", "tests"],
        ["node", "/root/.vscode-server/bin/abc/out/server-main.js", "--port", "0"],
        ["node", "/usr/lib/node_modules/@anthropic-ai/claude-code/cli.js"],
        ["node", f"{NM}/playwright-core/lib/cli/cli.js", "run-driver"],
        ["node", f"{NM}/.bin/wrangler", "deploy"],
        ["node", f"{NM}/typescript/bin/tsc", "-p", "."],
        ["cargo", "build"],
        [],
    ],
)
def test_ordinary_processes_are_not_dev_processes(argv: list[str]) -> None:
    assert classify(argv[0] if argv else "", argv) is None


def test_listening_interpreters_are_servers_but_editor_tools_are_not() -> None:
    node = classify_listener(["node", "server.js"])
    assert node is not None and (node.type, node.label) == ("node", "Node server server.js")
    tsx = classify_listener(["node", f"{NM}/tsx/dist/cli.mjs", "src/server.ts"])
    assert tsx is not None and tsx.type == "node" and "tsx src/server.ts" in tsx.label
    python = classify_listener(["/v/bin/python", "app.py"])
    assert python is not None and (python.type, python.category) == ("python", "dev_server")
    assert classify_listener(["node", "/root/.vscode-server/bin/x/server-main.js"]) is None
    claude = ["node", "/usr/lib/node_modules/@anthropic-ai/claude-code/cli.js"]
    assert classify_listener(claude) is None  # an agent opens ports too; never a dev server
    assert classify_listener(["/usr/sbin/sshd", "-D"]) is None
    # a test run serving a loopback upstream is not the app's server
    assert classify_listener(["/v/bin/python", "-m", "pytest", "tests"]) is None
    assert classify_listener(["/v/bin/python", "/v/bin/pytest", "-q"]) is None


def test_interpreters_are_looked_through() -> None:
    vite = parse_command(
        [
            "node",
            "--max-old-space-size=4096",
            "-r",
            "dotenv/config",
            f"{NM}/vite/bin/vite.js",
            "dev",
        ]
    )
    assert vite is not None
    assert (vite.interpreter, vite.program, vite.package, vite.args) == (
        "node",
        "vite",
        "vite",
        ("dev",),
    )
    module = parse_command(["python3.12", "-u", "-X", "dev", "-m", "uvicorn", "app:app"])
    assert module is not None and (module.program, module.args) == ("uvicorn", ("app:app",))
    scoped = parse_command(["node", f"{NM}/@expo/cli/build/bin/cli", "start"])
    assert scoped is not None and scoped.package == "@expo/cli"


def test_retitled_command_lines_are_split_and_unpadded() -> None:
    assert normalize_cmdline(["postgres: 15/main: walwriter ", "", ""]) == [
        "postgres:",
        "15/main:",
        "walwriter",
    ]
    assert normalize_cmdline(None) == []
    assert normalize_cmdline(["node", "a b.js"]) == ["node", "a b.js"]  # real argv kept as is


def test_labels_name_what_runs() -> None:
    assert classify("python", ["python", "-m", "http.server", "8123"]).label == (  # type: ignore[union-attr]
        "python -m http.server 8123"
    )
    assert classify(
        "uvicorn", ["/v/bin/python", "/v/bin/uvicorn", "--port", "9", "app:app"]
    ).label == (  # type: ignore[union-attr]
        "uvicorn app:app"
    )
    assert classify("python", ["/v/bin/python", "-m", "rsproxy", "start"]).label == "rsproxy daemon"  # type: ignore[union-attr]
