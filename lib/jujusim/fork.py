"""The ``fork`` runtime: the process runtime, with Python hooks forked from a warm server.

A hook process of a Python charm spends most of its time importing its libraries (ops,
charmhelpers, charmlibs: 0.2 to 0.5 s a hook here, against a few ms of work).
:class:`ForkRuntime` is :class:`~jujusim.process.ProcessRuntime` with one difference:
when a hook's handler is a Python script run by the simulator's interpreter, the
interpreter is not started afresh. A server (``jujusim/forkserver.py``), started once per
runtime through the machine shim's ``python3``, imports the modules the charm's entry
scripts import at top level, then forks one child per hook; the child takes the hook's
session, stdio, working directory, environment, ``sys.argv`` and ``sys.path`` and runs the
script as ``__main__``. Everything else is the process runtime's: per-unit charm
directories, the environment, the hook tools (real executables on ``PATH``, served by the
same tool server), the machine shim (clock, ``juju-exec``, background processes in the
hook's process group), ports, timeouts.

The handler is not executed, so the runtime finds the script the way the kernel and the
shell would (see :func:`entry_point`); when it cannot, or when the hook would not see the
modules the server imported (a charm's own copy earlier on its path, another interpreter,
other ``PYTHON*`` start-up variables), the hook runs as a process, as in ``process``.
``ForkRuntime.fallbacks`` counts those, by reason. docs/process-runtime.md lists what
differs.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import importlib.machinery
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from .context import ExecRequest
from .process import ProcessRuntime

__all__ = ["EntryPoint", "ForkRuntime", "entry_point"]

_SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "forkserver.py")
_PYTHON_NAMES = frozenset({"python3", "python", f"python3.{sys.version_info.minor}"})
_SHELLS = frozenset({"sh", "bash", "dash"})
# Start-up variables: a child inherits the server's start-up, so these must agree.
_STARTUP_EXEMPT = frozenset({"PYTHONPATH"})


@dataclasses.dataclass(frozen=True)
class EntryPoint:
    """What ``exec HANDLER`` would end up running: ``INTERPRETER FILE ARGS`` with ``env``."""

    interpreter: str
    """As named (``python3``) or as a path; resolved against the hook's ``PATH``."""
    argv: tuple[str, ...]
    """The script's ``sys.argv``: the script as named, then its arguments."""
    env: Mapping[str, str]
    """Variables the handler sets for the interpreter (the dispatch's assignments)."""
    via_shell: bool
    """The handler is a shell script (dispatch): the shell exports ``PWD``."""


class _NotForkable(Exception):
    """The handler cannot be run by the fork server; the message is the reason."""


def _shebang(path: str) -> list[str]:
    try:
        with open(path, "rb") as f:
            head = f.read(256)
    except OSError as e:
        raise _NotForkable("unreadable handler") from e
    if not head.startswith(b"#!"):
        raise _NotForkable("no #! line")
    line = head[2:].split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    words = line.split()
    if not words:
        raise _NotForkable("empty #! line")
    if os.path.basename(words[0]) == "env" and len(words) >= 2:
        return words[1:]
    return words


def _expand(text: str, env: Mapping[str, str], argv0: str) -> str:
    """Expand ``$0``, ``$NAME``, ``${NAME}``, ``${NAME:-w}``, ``${NAME:+w}`` (and ``-``/``+``)."""
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if c != "$":
            out.append(c)
            i += 1
            continue
        if text.startswith("$0", i):
            out.append(argv0)
            i += 2
            continue
        if text.startswith("${", i):
            depth, j = 1, i + 2
            while j < len(text) and depth:
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                j += 1
            if depth:
                raise _NotForkable("unbalanced ${")
            body = text[i + 2 : j - 1]
            i = j
            name, op, word = body, "", ""
            for candidate in (":-", ":+", "-", "+"):
                k = body.find(candidate)
                if k > 0 and body[:k].isidentifier():
                    name, op, word = body[:k], candidate, body[k + len(candidate) :]
                    break
            if not name.isidentifier():
                raise _NotForkable(f"unsupported expansion ${{{body}}}")
            value = env.get(name)
            if op == ":-":
                out.append(value if value else _expand(word, env, argv0))
            elif op == "-":
                out.append(value if value is not None else _expand(word, env, argv0))
            elif op == ":+":
                out.append(_expand(word, env, argv0) if value else "")
            elif op == "+":
                out.append(_expand(word, env, argv0) if value is not None else "")
            else:
                out.append(value or "")
            continue
        j = i + 1
        while j < len(text) and (text[j].isalnum() or text[j] == "_"):
            j += 1
        name = text[i + 1 : j]
        if not name or name[0].isdigit():
            raise _NotForkable(f"unsupported expansion {text[i : i + 2]}")
        out.append(env.get(name, ""))
        i = j
    return "".join(out)


def _shell_words(line: str, env: Mapping[str, str], argv0: str) -> list[str]:
    """Split one simple command into words, expanding parameters as ``sh`` would.

    Quotes, backslashes and the expansions of :func:`_expand`; an unquoted expansion
    whose value would be split into fields or globbed is refused, as is any operator.
    """
    words: list[str] = []
    current: list[str] = []
    started = False
    i = 0
    while i < len(line):
        c = line[i]
        if c in " \t":
            if started:
                words.append("".join(current))
                current, started = [], False
            i += 1
            continue
        started = True
        if c == "'":
            j = line.find("'", i + 1)
            if j < 0:
                raise _NotForkable("unbalanced quote")
            current.append(line[i + 1 : j])
            i = j + 1
        elif c == '"':
            j = i + 1
            while j < len(line) and line[j] != '"':
                j += 2 if line[j] == "\\" else 1
            if j >= len(line):
                raise _NotForkable("unbalanced quote")
            inner = line[i + 1 : j]
            if "$(" in inner or "`" in inner:
                raise _NotForkable("command substitution")
            current.append(_expand(inner, env, argv0))
            i = j + 1
        else:
            j = i
            while j < len(line) and line[j] not in " \t'\"":
                if line[j] in ";&|<>()`*?[~#":
                    raise _NotForkable(f"shell syntax {line[j]!r}")
                if line[j] == "\\":
                    j += 2
                elif line.startswith("${", j):
                    k = line.find("}", j)
                    if k < 0:
                        raise _NotForkable("unbalanced ${")
                    j = k + 1
                else:
                    j += 1
            raw = line[i:j]
            value = _expand(raw, env, argv0)
            if "$" in raw and any(ch in value for ch in " \t\n*?["):
                raise _NotForkable("unquoted expansion would be split or globbed")
            current.append(value)
            i = j
    if started:
        words.append("".join(current))
    return words


def entry_point(handler: str, env: Mapping[str, str]) -> EntryPoint:
    """What executing ``handler`` (an absolute path) would run, for the forms charms use.

    - A Python script (``#!/usr/bin/env python3``, ``#!/path/to/python3``): itself.
    - A shell script (``#!/bin/sh``) whose only command is charmcraft's dispatch,
      ``[NAME=VALUE ...] [exec] python3 SCRIPT`` or ``[NAME=VALUE ...] [exec] SCRIPT``
      with SCRIPT a Python script: that script, with the assignments, expanded as the
      shell would (``$0`` is the handler, ``${X:-...}``, ``${X:+...}``, ``$X``).

    Anything else (options to the interpreter, pipes, ``;``, several commands, command
    substitution) raises ``_NotForkable``: the hook then runs as a process.
    """
    words = _shebang(handler)
    first = os.path.basename(words[0])
    if first in _PYTHON_NAMES or first.startswith("python3"):
        if len(words) > 1:
            raise _NotForkable("interpreter options in #!")
        return EntryPoint(words[0], (handler,), {}, via_shell=False)
    if first not in _SHELLS or len(words) > 1:
        raise _NotForkable(f"handler run by {first}")
    with open(handler, encoding="utf-8", errors="replace") as f:
        text = f.read()
    commands = [
        line.strip()
        for line in text.replace("\\\n", " ").splitlines()[1:]
        if line.strip() and not line.strip().startswith("#")
    ]
    if len(commands) != 1:
        raise _NotForkable("dispatch is not one command")
    assigned: dict[str, str] = {}
    words = _shell_words(commands[0], env, handler)
    while words and "=" in words[0] and words[0].split("=", 1)[0].isidentifier():
        name, value = words.pop(0).split("=", 1)
        assigned[name] = value
    if words[:1] == ["exec"]:
        words.pop(0)
    if not words:
        raise _NotForkable("dispatch runs nothing")
    if os.path.basename(words[0]) == "env" and len(words) > 1:
        words.pop(0)
    if os.path.basename(words[0]) in _PYTHON_NAMES:
        if len(words) < 2 or words[1].startswith("-"):
            raise _NotForkable("interpreter options in dispatch")
        return EntryPoint(words[0], tuple(words[1:]), assigned, via_shell=True)
    script = os.path.join(os.path.dirname(handler), words[0])
    if os.sep not in words[0] or not os.path.isfile(script):
        raise _NotForkable("shell script runs a non-Python program")
    try:
        inner = _shebang(script)
    except _NotForkable:
        inner = ["?"]
    if os.path.basename(inner[0]) not in _PYTHON_NAMES or len(inner) > 1:
        raise _NotForkable("shell script runs a non-Python program")
    return EntryPoint(inner[0], tuple(words), assigned, via_shell=True)


def _top_imports(path: str) -> list[str]:
    """Modules a script imports at module level (absolute imports only).

    ``from a import b`` also tries ``a.b``: a submodule, or harmlessly not one.
    """
    try:
        with open(path, "rb") as f:
            tree = ast.parse(f.read(), path)
    except (OSError, SyntaxError, ValueError):
        return []
    names: list[str] = []
    body: list[ast.stmt] = list(tree.body)
    while body:
        node = body.pop(0)
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            if node.module == "__future__":
                continue
            names.append(node.module)
            names += [f"{node.module}.{a.name}" for a in node.names if a.name != "*"]
        elif isinstance(node, (ast.If, ast.Try)):
            body += [*node.body, *getattr(node, "orelse", []), *getattr(node, "finalbody", [])]
            for handler in getattr(node, "handlers", []):
                body += handler.body
    return list(dict.fromkeys(names))


class ForkRuntime(ProcessRuntime):
    """:class:`ProcessRuntime` whose Python hooks are forked from a pre-importing server."""

    name = "fork"
    concurrent = True

    def __init__(
        self,
        charm_dir: str,
        workdir: str,
        *,
        preload: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(charm_dir, workdir, **kwargs)
        self.preload = tuple(preload)
        """Modules to import in the server besides those the entry scripts import."""
        self.forked = 0
        """Hooks run by forking."""
        self.fallbacks: Counter[str] = Counter()
        """Hooks run as processes instead, by reason."""
        self._fork_lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._socket = ""
        self._base: list[str] = []
        self._modules: dict[str, list[str]] = {}
        self._scanned: set[str] = set()
        self._shadow: dict[tuple[str, ...], str] = {}
        self._server_env: dict[str, str] = {}
        self._coerced_lc_ctype: str | None = None
        self._pythons = self._accepted_interpreters()

    # -- the server ---------------------------------------------------------------------------

    def _accepted_interpreters(self) -> dict[str, bool]:
        """Real paths of interpreters the server stands for -> whether it is the shim's."""
        if self._machine_bin is not None:
            return {
                os.path.realpath(os.path.join(self._machine_bin, n)): True for n in _PYTHON_NAMES
            }
        return {os.path.realpath(sys.executable): False}

    def _request(self, message: Mapping[str, Any]) -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.connect(self._socket)
            conn.sendall(json.dumps(message).encode() + b"\n")
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = conn.recv(1 << 20)
                if not chunk:
                    break
                reply += chunk
        return dict(json.loads(reply)) if reply else {}

    def _start_server(self) -> None:
        env = self._server_environment()
        sock_dir = tempfile.mkdtemp(prefix="fork-", dir=self.workdir)
        self._socket = os.path.join(sock_dir, "server.sock")
        python = (
            os.path.join(self._machine_bin, "python3") if self._machine_bin else sys.executable
        )
        log = open(os.path.join(sock_dir, "server.log"), "ab")  # noqa: SIM115
        try:
            self._proc = subprocess.Popen(
                [python, _SERVER, self._socket], cwd=self.workdir, env=env,
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                start_new_session=True,
            )  # fmt: skip
        finally:
            log.close()
        assert self._proc.stdout is not None
        if self._proc.stdout.readline() != b"ready\n":
            raise RuntimeError(f"the fork server did not start (see {sock_dir}/server.log)")
        self._server_env = env
        self._update(self._request({"op": "hello"}))

    def _server_environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("JUJU_")}
        for name in ("CHARM_DIR", "OPERATOR_DISPATCH", "UNIT_STATE_DB", "PYTHONDONTWRITEBYTECODE"):
            env.pop(name, None)
        env.pop("PYTHONPATH", None)  # the shim's python3 adds the shim, and only it
        if self.machine_root is not None:
            env["JUJUSIM_MACHINE_ROOT"] = self.machine_root
        return env

    def _update(self, state: Mapping[str, Any]) -> None:
        path = list(state["path"])
        shim = os.path.join(self.machine_root, "shim") if self.machine_root else None
        self._base = [p for p in path if p != shim]
        self._modules = {k: list(v) for k, v in state["modules"].items()}
        lc_ctype = state.get("lc_ctype")
        if lc_ctype is not None and "LC_CTYPE" not in self._server_env:
            self._coerced_lc_ctype = str(lc_ctype)
        self._shadow.clear()

    def _ensure_server(self) -> None:
        with self._fork_lock:
            if self._proc is None:
                self._start_server()

    def _preload_for(self, script: str, prefix: Sequence[str]) -> None:
        """Have the server import what ``script`` imports, unless the charm has its own."""
        with self._fork_lock:
            real = os.path.realpath(script)
            if real in self._scanned:
                return
            self._scanned.add(real)
            wanted = [*_top_imports(script), *self.preload]
            local = [
                name
                for name in wanted
                if importlib.machinery.PathFinder.find_spec(name.partition(".")[0], list(prefix))
            ]
            wanted = [
                n
                for n in wanted
                if n not in local and n.partition(".")[0] not in sys.builtin_module_names
            ]
            if wanted:
                self._update(self._request({"op": "preload", "modules": wanted}))

    def upgrade_unit(self, unit: str, charm_dir: str) -> None:
        """As the process runtime does; new code may import other modules, or ship its own."""
        super().upgrade_unit(unit, charm_dir)
        with self._fork_lock:
            self._shadow.clear()

    # -- running a hook -----------------------------------------------------------------------

    def _spawn(
        self, argv: Sequence[str], cwd: str, env: Mapping[str, str]
    ) -> tuple[int, str, str, tuple[ExecRequest, ...]]:
        if len(argv) == 1:
            try:
                plan = self._plan(argv[0], cwd, env)
            except _NotForkable as e:
                self.fallbacks[str(e)] += 1
            else:
                return self._spawn_forked(plan)
        return super()._spawn(argv, cwd, env)

    def _plan(self, handler: str, cwd: str, env: Mapping[str, str]) -> dict[str, Any]:
        """The fork server's request for this hook, or ``_NotForkable``."""
        if not os.access(handler, os.X_OK):
            raise _NotForkable("handler not executable")
        entry = entry_point(handler, env)
        self._ensure_server()
        child_env = dict(env)
        child_env.update(entry.env)
        interpreter = entry.interpreter
        if os.sep not in interpreter:
            found = shutil.which(interpreter, path=child_env.get("PATH", ""))
            if found is None:
                raise _NotForkable(f"{interpreter} not on PATH")
            interpreter = found
        shimmed = self._pythons.get(os.path.realpath(interpreter))
        if shimmed is None:
            raise _NotForkable(f"interpreter {interpreter} is not the simulator's")
        if shimmed:  # the shim's python3 is a sh script: PWD, then PYTHONPATH += shim
            entry = dataclasses.replace(entry, via_shell=True)
            old = child_env.get("PYTHONPATH")
            shim = os.path.join(self.machine_root or "", "shim")
            child_env["PYTHONPATH"] = f"{old}:{shim}" if old else shim
        if entry.via_shell:
            child_env["PWD"] = cwd
        for name in {*child_env, *self._server_env}:
            if (
                name.startswith("PYTHON")
                and name not in _STARTUP_EXEMPT
                and child_env.get(name) != self._server_env.get(name)
            ):
                raise _NotForkable(f"{name} differs from the server's")
        script_arg = entry.argv[0]
        file = script_arg if os.path.isabs(script_arg) else os.path.join(cwd, script_arg)
        if not os.path.isfile(file):
            raise _NotForkable("script not found")
        path0 = os.path.dirname(os.path.realpath(file))
        pythonpath = child_env.get("PYTHONPATH", "")
        entries = (
            [path0, *(os.path.abspath(os.path.join(cwd, p)) for p in pythonpath.split(":"))]
            if pythonpath
            else [path0]
        )
        self._preload_for(file, entries)
        sys_path = list(dict.fromkeys([*entries, *self._base]))
        prefix = tuple(p for p in sys_path if p not in self._base)
        reason = self._shadowed(prefix)
        if reason:
            raise _NotForkable(reason)
        if (
            self._coerced_lc_ctype is not None
            and "LC_CTYPE" not in child_env
            and all(child_env.get(k) == self._server_env.get(k) for k in ("LC_ALL", "LANG"))
        ):  # Python's C locale coercion, which the server did at its start-up
            child_env["LC_CTYPE"] = self._coerced_lc_ctype
        return {
            "op": "run",
            "argv": list(entry.argv),
            "file": file,
            "cwd": cwd,
            "env": child_env,
            "sys_path": sys_path,
        }

    def _shadowed(self, prefix: tuple[str, ...]) -> str:
        """Why a hook with these path entries before the server's would import other files."""
        with self._fork_lock:
            cached = self._shadow.get(prefix)
            if cached is not None:
                return cached
            modules = dict(self._modules)
        reason = ""
        for name, origin in modules.items():
            spec = importlib.machinery.PathFinder.find_spec(name, list(prefix))
            if spec is None:
                continue
            found = list(spec.submodule_search_locations or []) or [spec.origin or ""]
            if not {os.path.realpath(p) for p in found} <= set(origin):
                reason = f"{name} is shadowed by the charm's path"
                break
        with self._fork_lock:
            self._shadow[prefix] = reason
        return reason

    def _spawn_forked(
        self, request: dict[str, Any]
    ) -> tuple[int, str, str, tuple[ExecRequest, ...]]:
        fd_out, out_path = tempfile.mkstemp(prefix="out-", dir=os.path.dirname(self._socket))
        fd_err, err_path = tempfile.mkstemp(prefix="err-", dir=os.path.dirname(self._socket))
        os.close(fd_out)
        os.close(fd_err)
        request = dict(request, stdout=out_path, stderr=err_path)
        request["env"] = dict(request["env"], JUJUSIM_WALL_AT_START=repr(time.time()))
        extra = ""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.connect(self._socket)
                conn.sendall(json.dumps(request).encode() + b"\n")
                lines = _Lines(conn)
                line = lines.next()
                if not line.startswith(b"pid "):
                    return 126, "", "jujusim: the fork server did not run the hook\n", ()
                pid = int(line.split()[1])
                self.forked += 1
                conn.settimeout(self.timeout)
                try:
                    line = lines.next()
                except TimeoutError:
                    os.killpg(pid, signal.SIGKILL)
                    conn.settimeout(None)
                    line = lines.next()
                    extra = f"jujusim: hook killed after {self.timeout}s\n"
                code = int(line.split()[1]) if line.startswith(b"exit ") else 1
            execs = self._background_execs(pid) if self.machine_root else ()
            with open(out_path, "rb") as f:
                out = f.read().decode("utf-8", "replace")
            with open(err_path, "rb") as f:
                err = f.read().decode("utf-8", "replace") + extra
            return code, out, err, execs
        finally:
            os.unlink(out_path)
            os.unlink(err_path)

    def close(self) -> None:
        """Stop the fork server, then everything the process runtime stops."""
        with self._fork_lock:
            proc, self._proc = self._proc, None
        if proc is not None:
            with contextlib.suppress(OSError, ValueError):
                self._request({"op": "stop"})
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
            shutil.rmtree(os.path.dirname(self._socket), ignore_errors=True)
        super().close()


class _Lines:
    """Lines from a socket, a timeout leaving it usable (unlike ``makefile``)."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.buffer = b""

    def next(self) -> bytes:
        while b"\n" not in self.buffer:
            chunk = self.conn.recv(4096)
            if not chunk:
                line, self.buffer = self.buffer, b""
                return line
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line + b"\n"
