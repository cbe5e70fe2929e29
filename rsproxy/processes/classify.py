"""Which kind of dev process a command line is: Vite, uvicorn, PostgreSQL, ngrok, rsproxy...

``classify(name, cmdline)`` is a pure function of what ``ps`` shows: the kernel's process name
(at most 15 characters) and the argv. Interpreters are looked through — ``node
.../node_modules/vite/bin/vite.js`` is Vite, ``python -m uvicorn`` and ``.venv/bin/uvicorn`` are
both uvicorn — and a process that retitled itself (``postgres: checkpointer``, ``next-server
(v15.1.0)``, ``npm run dev``) is recognised by its title. Anything else is ``None``: the scanner
lists it only with ``--all``, and ``kill`` refuses it unless forced.

A bare interpreter running an unknown script (``node server.js``, ``python app.py``) is not
recognised here: far too many editors, agents and tools are such processes. The scanner calls
``classify_listener`` for those that listen on a TCP port inside a project, where "a Node or
Python server" is a safe guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

# category → what it means; the order is the order `rsproxy ps` lists them in.
CATEGORIES: dict[str, str] = {
    "rsproxy": "rsproxy itself",
    "dev_server": "a development server",
    "watcher": "a file watcher or incremental build",
    "runner": "a script or task runner (npm run, turbo)",
    "database": "a local database server",
    "tunnel": "a tunnel exposing a local port",
    "container": "Docker",
}

# type → (category, display name). Every type classify() can return is listed here, so help text
# and refusal messages can say what counts as a dev process.
TYPES: dict[str, tuple[str, str]] = {
    "rsproxy": ("rsproxy", "rsproxy"),
    "nextjs": ("dev_server", "Next.js"),
    "vite": ("dev_server", "Vite"),
    "webpack-dev-server": ("dev_server", "webpack-dev-server"),
    "expo": ("dev_server", "Expo"),
    "wrangler": ("dev_server", "wrangler dev"),
    "prisma-studio": ("dev_server", "Prisma Studio"),
    "node": ("dev_server", "Node server"),
    "uvicorn": ("dev_server", "uvicorn"),
    "gunicorn": ("dev_server", "gunicorn"),
    "hypercorn": ("dev_server", "hypercorn"),
    "daphne": ("dev_server", "daphne"),
    "granian": ("dev_server", "granian"),
    "fastapi": ("dev_server", "fastapi"),
    "flask": ("dev_server", "flask run"),
    "django": ("dev_server", "Django runserver"),
    "http.server": ("dev_server", "python -m http.server"),
    "python": ("dev_server", "Python server"),
    "ruby": ("dev_server", "Ruby server"),
    "php": ("dev_server", "PHP server"),
    "cargo": ("dev_server", "cargo"),
    "tsc-watch": ("watcher", "TypeScript watcher"),
    "tsup-watch": ("watcher", "tsup watcher"),
    "esbuild-watch": ("watcher", "esbuild watcher"),
    "webpack-watch": ("watcher", "webpack --watch"),
    "nodemon": ("watcher", "nodemon"),
    "vitest": ("watcher", "Vitest"),
    "npm": ("runner", "npm"),
    "pnpm": ("runner", "pnpm"),
    "yarn": ("runner", "yarn"),
    "bun": ("runner", "bun"),
    "deno": ("runner", "deno"),
    "turbo": ("runner", "Turborepo"),
    "postgres": ("database", "PostgreSQL"),
    "mysql": ("database", "MySQL"),
    "mariadb": ("database", "MariaDB"),
    "mongodb": ("database", "MongoDB"),
    "redis": ("database", "Redis"),
    "ngrok": ("tunnel", "ngrok"),
    "cloudflared": ("tunnel", "cloudflared"),
    "localtunnel": ("tunnel", "localtunnel"),
    "docker": ("container", "Docker"),
}

_NODE_LIKE = frozenset({"node", "nodejs", "bun", "deno"})
_PYTHON = re.compile(r"^(python|pypy)(\d+(\.\d+)*)?m?$")
_SCRIPT_SUFFIXES = (".js", ".mjs", ".cjs", ".ts", ".mts", ".cts", ".py")
# Interpreter options that consume the next argument (node, python).
_NODE_VALUE_FLAGS = frozenset(
    {"-r", "--require", "--import", "--loader", "--experimental-loader", "--title", "-C"}
    | {"--conditions", "--env-file", "--inspect-port", "--watch-path", "--input-type"}
)
_PYTHON_VALUE_FLAGS = frozenset({"-X", "-W", "--check-hash-based-pycs"})
_RUNNER_SUBCOMMANDS = frozenset({"run", "run-script", "start", "dev", "exec", "x", "task", "serve"})
# Long-running Node processes that belong to editors, agents and test tools, not to the app.
_NOT_DEV: tuple[str, ...] = (
    "/.vscode-server/",
    "/.vscode/",
    "/.cursor-server/",
    "/.windsurf-server/",
    "/playwright-core/",
    "/playwright/driver/",
    "tsserver",
    "typescript-language-server",
    "/corepack/",
    "eslint_d",
    "prettierd",
    # coding agents: never a dev server, whatever port they open
    "/@anthropic-ai/claude-code/",
    "/@openai/codex/",
    "/@google/gemini-cli/",
    "/@github/copilot",
)
# Python tools that may open a port (a test server, a kernel) without being the app's server.
_NOT_SERVERS = frozenset(
    {"pytest", "py.test", "mypy", "dmypy", "pip", "tox", "nox", "pylsp", "ipykernel_launcher"}
    | {"jedi-language-server", "pyright", "debugpy", "coverage", "hypothesis"}
)
_FLAG_VALUE_FLAGS = frozenset({"--host", "--port", "-p", "-b", "--bind", "--config", "-c", "-w"})


@dataclass(frozen=True)
class Classification:
    """What a process is: ``type`` (a key of TYPES), its ``category`` and a short ``label``."""

    type: str
    category: str
    label: str


@dataclass(frozen=True)
class Command:
    """A command line with the interpreter looked through.

    ``program`` is what runs: the executable's name, a script's stem, or a ``-m`` module;
    ``package`` is the node_modules package the script belongs to (``@expo/cli``, ``vite``).
    """

    interpreter: str | None
    program: str
    args: tuple[str, ...]
    package: str | None = None
    script: str | None = None

    @property
    def tool(self) -> str:
        return self.package or self.program

    def names(self) -> frozenset[str]:
        return frozenset(n for n in (self.program, self.package) if n)


def normalize_cmdline(cmdline: list[str] | None) -> list[str]:
    """argv without the empty tail a retitled process leaves, split if it was retitled as one
    string (``postgres: 15/main: checkpointer``, ``npm run dev --port 5173``)."""
    args = list(cmdline or [])
    while args and not args[-1]:
        args.pop()
    if len(args) == 1 and " " in args[0].strip():
        args = args[0].split()
    return args


def _stem(path: str) -> str:
    base = PurePosixPath(path).name
    for suffix in _SCRIPT_SUFFIXES:
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base


def _package_of(path: str) -> str | None:
    """``.../node_modules/@expo/cli/build/bin/cli`` → ``@expo/cli``; ``.bin/vite`` → ``vite``."""
    marker = "node_modules/"
    at = path.rfind(marker)
    if at < 0:
        return None
    parts = path[at + len(marker) :].split("/")
    if parts[0] == ".bin":
        return parts[1] if len(parts) > 1 else None
    if parts[0].startswith("@") and len(parts) > 1:
        return f"{parts[0]}/{parts[1]}"
    return parts[0] or None


def parse_command(cmdline: list[str]) -> Command | None:
    """Look through node/bun/deno/python to the program they run."""
    args = normalize_cmdline(cmdline)
    if not args:
        return None
    base = PurePosixPath(args[0]).name
    rest = args[1:]
    if base in _NODE_LIKE:
        return _script_command(base, rest, _NODE_VALUE_FLAGS, node=True)
    if _PYTHON.match(base):
        return _script_command("python", rest, _PYTHON_VALUE_FLAGS, node=False)
    return Command(None, base, tuple(rest), _package_of(args[0]), None)


def _script_command(
    interpreter: str, rest: list[str], value_flags: frozenset[str], *, node: bool
) -> Command:
    i = 0
    while i < len(rest):
        arg = rest[i]
        if not node and arg == "-m" and i + 1 < len(rest):
            return Command(interpreter, rest[i + 1], tuple(rest[i + 2 :]))
        if not node and arg.startswith("-m") and len(arg) > 2:
            return Command(interpreter, arg[2:], tuple(rest[i + 1 :]))
        if arg in ("-c", "-e", "--eval", "-p", "--print"):
            return Command(interpreter, f"{interpreter} {arg}", tuple(rest[i + 1 :]))
        if arg in value_flags:
            i += 2
            continue
        if arg.startswith("-"):
            i += 1
            continue
        if interpreter in ("bun", "deno") and arg in _RUNNER_SUBCOMMANDS:
            return Command(interpreter, interpreter, tuple(rest[i:]))
        return Command(interpreter, _stem(arg), tuple(rest[i + 1 :]), _package_of(arg), arg)
    return Command(interpreter, interpreter, ())


def _first_positional(args: tuple[str, ...]) -> str | None:
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg in _FLAG_VALUE_FLAGS:
            skip = True
            continue
        if not arg.startswith("-"):
            return arg
    return None


def _make(type_: str, detail: str | None = None) -> Classification:
    category, display = TYPES[type_]
    label = f"{display} {detail}" if detail else display
    return Classification(type_, category, label[:80])


def _has_watch(args: tuple[str, ...]) -> bool:
    return any(a in ("--watch", "-w") or a.startswith("--watch=") for a in args)


def classify(name: str, cmdline: list[str] | None) -> Classification | None:
    """The dev-process kind of a process, or None when it is not one rsproxy recognises."""
    args = normalize_cmdline(cmdline)
    title = args[0] if args else name
    by_title = _by_title(name, title)
    if by_title is not None:
        return by_title
    command = parse_command(args)
    if command is None:
        return None
    joined = " ".join(args)
    if any(marker in joined for marker in _NOT_DEV):
        return None
    for rule in _RULES:
        found = rule(command)
        if found is not None:
            return found
    return _cargo_binary(args)


def _by_title(name: str, title: str) -> Classification | None:
    """Servers known by their process name or the title they give themselves."""
    base = PurePosixPath(title.split()[0]).name if title.strip() else name
    if base in ("postgres", "postmaster") or title.startswith("postgres:"):
        return _make("postgres")
    if base in ("mariadbd", "mariadbd-safe") or name == "mariadbd":
        return _make("mariadb")
    if base in ("mysqld", "mysqld_safe") or name == "mysqld":
        return _make("mysql")
    if base in ("mongod", "mongos"):
        return _make("mongodb")
    if base in ("redis-server", "valkey-server") or name in ("redis-server", "valkey-server"):
        return _make("redis")
    if base in ("ngrok",):
        return _make("ngrok")
    if base == "cloudflared":
        return _make("cloudflared", "tunnel" if "tunnel" in title else None)
    if base in ("dockerd", "containerd", "docker-proxy", "com.docker.backend") or base.startswith(
        "containerd-shim"
    ):
        return _make("docker", base)
    if title.startswith(("next-server", "next-router-worker", "next-render-worker")):
        return _make("nextjs", title.split(" ")[0])
    if title.startswith("gunicorn:"):
        return _make("gunicorn", title.removeprefix("gunicorn:").strip())
    return None


def _rsproxy(c: Command) -> Classification | None:
    if c.program == "rsproxy":
        sub = next((a for a in c.args if not a.startswith("-")), None)
        what = {"start": "daemon", "mcp": "MCP server"}.get(sub or "", sub)
        return _make("rsproxy", what)
    if c.program in ("mitmdump", "mitmproxy", "mitmweb") and any("rsproxy" in a for a in c.args):
        return _make("rsproxy", f"addons in {c.program}")
    return None


def _node_tools(c: Command) -> Classification | None:
    names = c.names()
    first = c.args[0] if c.args else None
    if "next" in names:
        return _make("nextjs", first if first in ("dev", "start", "build") else None)
    if "vite" in names:
        return _make("vite", first if first in ("preview", "build", "optimize") else None)
    if "webpack-dev-server" in names:
        return _make("webpack-dev-server")
    if names & {"webpack", "webpack-cli"}:
        if "serve" in c.args:
            return _make("webpack-dev-server")
        if _has_watch(c.args):
            return _make("webpack-watch")
    if names & {"expo", "@expo/cli", "expo-cli"}:
        return _make("expo", first)
    if "wrangler" in names:
        return _make("wrangler") if first == "dev" else None
    if "prisma" in names and "studio" in c.args:
        return _make("prisma-studio")
    if names & {"tsc", "typescript"} and _has_watch(c.args):
        return _make("tsc-watch")
    if "tsup" in names and _has_watch(c.args):
        return _make("tsup-watch")
    if "esbuild" in names and _has_watch(c.args):
        return _make("esbuild-watch")
    if "nodemon" in names:
        return _make("nodemon", _first_positional(c.args))
    if "vitest" in names and first not in ("run", "bench"):
        return _make("vitest")
    if "localtunnel" in names or (c.program == "lt" and "--port" in c.args):
        return _make("localtunnel")
    if "turbo" in names:
        return _make("turbo", " ".join(c.args[:2]) or None)
    return None


def _runners(c: Command) -> Classification | None:
    program = {"npm-cli": "npm", "npx-cli": "npm", "npx": "npm", "pnpm.cjs": "pnpm"}.get(
        c.tool, c.tool
    )
    if program in ("npm", "pnpm", "yarn", "bun", "deno"):
        first = c.args[0] if c.args else None
        if first in _RUNNER_SUBCOMMANDS or (program in ("pnpm", "yarn") and first):
            return _make(program, " ".join(c.args[:2]))
    if program in ("docker", "docker-compose", "podman"):
        return _make("docker", " ".join((program, *c.args[:2])))
    return None


def _python_servers(c: Command) -> Classification | None:
    program = c.program
    if program in ("uvicorn", "gunicorn", "hypercorn", "daphne", "granian"):
        return _make(program, _first_positional(c.args))
    if program == "fastapi" and c.args[:1] in (("dev",), ("run",)):
        return _make("fastapi", " ".join(c.args[:2]))
    if program == "flask" and "run" in c.args:
        return _make("flask")
    if program in ("manage", "django-admin") and "runserver" in c.args:
        return _make("django", _first_positional(c.args[c.args.index("runserver") + 1 :]))
    if program == "http.server":
        return _make("http.server", _first_positional(c.args) or "8000")
    return None


def _rust(c: Command) -> Classification | None:
    if c.program == "cargo" and c.args[:1] in (("run",), ("watch",)):
        return _make("cargo", c.args[0])
    if c.program == "cargo-watch":
        return _make("cargo", "watch")
    return None


_RULES = (_rsproxy, _node_tools, _runners, _python_servers, _rust)


def _cargo_binary(args: list[str]) -> Classification | None:
    """A binary cargo built (``target/debug/app``): typed ``cargo`` so that under ``cargo run``
    it is folded into cargo's entry, and a dev build even when started by hand."""
    if args and ("/target/debug/" in args[0] or "/target/release/" in args[0]):
        return _make("cargo", PurePosixPath(args[0]).name)
    return None


def classify_listener(cmdline: list[str] | None) -> Classification | None:
    """An interpreter running an unknown script, for a process that listens on a TCP port inside
    a project: ``node server.js`` is a Node server, ``python app.py`` a Python server."""
    args = normalize_cmdline(cmdline)
    command = parse_command(args)
    if command is None or any(marker in " ".join(args) for marker in _NOT_DEV):
        return None
    if command.program in _NOT_SERVERS:
        return None
    script = PurePosixPath(command.script).name if command.script else None
    if command.package in ("tsx", "ts-node", "ts-node-dev"):
        return _make("node", " ".join((command.package, *command.args[:1])))
    if command.interpreter in _NODE_LIKE:
        return _make("node", script)
    if command.interpreter == "python":
        return _make("python", script or command.program)
    if command.program in ("ruby", "rails", "puma", "rackup"):
        return _make("ruby", " ".join((command.program, *command.args[:1])))
    if command.program in ("php", "artisan"):
        return _make("php", " ".join((command.program, *command.args[:2])))
    return None
