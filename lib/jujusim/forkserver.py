"""The fork runtime's server: imports a charm's libraries once, forks a child per hook.

``jujusim/fork.py`` starts it and talks to it; nothing else imports it.

Run as ``python3 forkserver.py SOCKET`` through the machine shim's ``python3``, so that the
shim's ``sitecustomize`` is loaded first, exactly as in a hook process. Standard library
only. Requests are single JSON lines on a Unix socket, one connection each:

- ``{"op": "hello"}`` -> the server's ``sys.path`` (minus its own directory) and the
  top-level modules imported since start-up with where they came from;
- ``{"op": "preload", "modules": [...]}`` -> imports them (failures are ignored), then
  answers as ``hello`` does;
- ``{"op": "run", ...}`` -> forks; the child becomes a hook process (new session, stdio,
  cwd, environment, ``sys.argv``, ``sys.path``, the shim's clock) and runs the script as
  ``__main__``; the server answers ``pid N`` at once and ``exit CODE`` when the child has
  exited (it reaps it).

The server never runs charm code itself, so every child starts from "libraries imported,
nothing run". It is single-threaded: children are forked from a process with one thread.
"""

from __future__ import annotations

import sys

del sys.path[0]  # this file's directory is not on a hook's path
_AT_START = frozenset(sys.modules)

import contextlib  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import selectors  # noqa: E402
import socket  # noqa: E402
import traceback  # noqa: E402
from typing import Any  # noqa: E402


def _origin(module: Any) -> list[str]:
    """Where a module was loaded from: its file, or its package directories."""
    locations = getattr(module, "__path__", None)
    if locations is not None:
        return [os.path.realpath(p) for p in locations]
    file = getattr(module, "__file__", None)
    return [os.path.realpath(file)] if file else []


def _state() -> dict[str, Any]:
    tops: dict[str, list[str]] = {}
    for name, module in list(sys.modules.items()):
        top = name.partition(".")[0]
        if name in _AT_START or top in tops or top == "__main__" or module is None:
            continue
        root = sys.modules.get(top)
        if root is not None and top not in _AT_START:
            tops[top] = _origin(root)
    return {"path": list(sys.path), "modules": tops, "lc_ctype": os.environ.get("LC_CTYPE")}


def _preload(names: list[str]) -> None:
    for name in names:
        try:
            importlib.import_module(name)
        except BaseException as e:
            print(f"forkserver: preload {name}: {type(e).__name__}: {e}", file=sys.stderr)
    sys.stderr.flush()
    sys.stdout.flush()


def _read_request(conn: socket.socket) -> dict[str, Any]:
    chunks = []
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
        if chunk.endswith(b"\n"):
            break
    request: dict[str, Any] = json.loads(b"".join(chunks))
    return request


def _exit_code(e: SystemExit) -> int:
    code = e.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _child(request: dict[str, Any], closing: list[Any]) -> None:
    """Become the hook process and run its script; never returns."""
    code = 1
    try:
        os.setsid()
        for thing in closing:
            thing.close()
        fd = os.open(os.devnull, os.O_RDONLY)
        os.dup2(fd, 0)
        os.close(fd)
        for target, path in ((1, request["stdout"]), (2, request["stderr"])):
            fd = os.open(path, os.O_WRONLY)
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv[:] = request["argv"]
        sys.path[:] = request["sys_path"]
        sys.path_importer_cache.clear()
        importlib.invalidate_caches()
        reset = getattr(sys.modules.get("sitecustomize"), "jujusim_reset", None)
        if reset is not None:
            reset()
        code = _run_main(request["file"])
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        os._exit(_finalize(code))


def _run_main(file: str) -> int:
    """Run ``file`` as ``__main__`` as ``python FILE`` does."""
    import builtins
    import importlib.machinery
    import types

    main = types.ModuleType("__main__")
    main.__file__ = file
    main.__cached__ = None  # type: ignore[attr-defined]
    main.__loader__ = importlib.machinery.SourceFileLoader("__main__", file)
    main.__builtins__ = builtins  # type: ignore[attr-defined]
    sys.modules["__main__"] = main
    try:
        with open(file, "rb") as f:
            source = f.read()
        exec(compile(source, file, "exec"), main.__dict__)
    except SystemExit as e:
        return _exit_code(e)
    except BaseException:
        etype, value, tb = sys.exc_info()
        tb = tb.tb_next if tb is not None else None  # the script's frames only
        if value is not None:
            value.__traceback__ = tb
        sys.excepthook(etype, value, tb)  # type: ignore[arg-type]
        return 1
    return 0


def _finalize(code: int) -> int:
    """What the interpreter does at exit: join threads, atexit, flush."""
    try:
        threading = sys.modules.get("threading")
        if threading is not None:
            threading._shutdown()
        import atexit

        atexit._run_exitfuncs()
    except BaseException:
        traceback.print_exc()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BaseException):
            stream.flush()
    return code & 0xFF


def main(argv: list[str]) -> int:
    """Serve on the Unix socket ``argv[1]`` until told to stop."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(argv[1])
    listener.listen(64)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, None)
    # pidfd -> (pid, connection) of each running child
    children: dict[int, tuple[int, socket.socket]] = {}
    os.write(1, b"ready\n")
    parent = os.getppid()
    while True:
        events = selector.select(timeout=1.0)
        if not events and os.getppid() != parent:
            return 0  # the runtime's process is gone (killed without close()): so are we
        for key, _ in events:
            if key.data is None:
                conn, _ = listener.accept()
                try:
                    request = _read_request(conn)
                except (OSError, ValueError):
                    conn.close()
                    continue
                op = request.get("op")
                if op in ("hello", "preload"):
                    if op == "preload":
                        _preload(list(request.get("modules", [])))
                    conn.sendall(json.dumps(_state()).encode() + b"\n")
                    conn.close()
                    continue
                if op == "stop":
                    conn.close()
                    return 0
                sys.stdout.flush()
                sys.stderr.flush()
                closing = [selector, listener, conn, *(c for _, c in children.values())]
                pid = os.fork()
                if pid == 0:
                    for pidfd in children:
                        os.close(pidfd)
                    _child(request, closing)
                pidfd = os.pidfd_open(pid)
                children[pidfd] = (pid, conn)
                selector.register(pidfd, selectors.EVENT_READ, "child")
                with contextlib.suppress(OSError):
                    conn.sendall(f"pid {pid}\n".encode())
            else:
                pidfd = key.fd
                pid, conn = children.pop(pidfd)
                selector.unregister(pidfd)
                os.close(pidfd)
                _, status = os.waitpid(pid, 0)
                with contextlib.suppress(OSError):
                    conn.sendall(f"exit {os.waitstatus_to_exitcode(status)}\n".encode())
                conn.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
