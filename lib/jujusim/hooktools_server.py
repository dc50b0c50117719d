"""Serving hook tools to charm processes: a loopback socket server and tiny clients.

Speed decides the design. A hook makes about eight tool calls; a Python process per
call would cost ~20 ms each, more than the hook itself. So each tool name is a symlink
to one bash script that connects to this server over bash's ``/dev/tcp`` (no fork, no
interpreter start) and costs about a bash start-up. Where bash lacks ``/dev/tcp`` a
``python -SE`` client is written instead.

Wire format (all text UTF-8). Request: NUL-terminated fields ``context-id``, ``tool``,
``cwd``, ``argc``, the ``argc`` arguments, ``stdin-length``, then that many bytes of
stdin (sent only by the tools that read it, ``relation-set``/``state-set`` with
``--file -``). Reply: ``code``, ``stdout-length``, ``stderr-length`` (NUL-terminated),
then stdout and stderr bytes. The server closes the connection after the reply.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import socketserver
import subprocess
import sys
import threading
from collections.abc import Callable

from .hooktools import TOOL_NAMES, ToolResult, ToolSession, call_tool

__all__ = ["ToolServer", "install_tools"]

logger = logging.getLogger(__name__)

_BASH_CLIENT = r"""#!{bash}
# jujusim hook tool: forwards this call to the simulator (see jujusim.hooktools_server).
LC_ALL=C
t=${{0##*/}} in=
if [[ $t == relation-set || $t == state-set ]]; then
  p=
  for a; do
    if [[ $a == --file=- || ( $p == --file && $a == - ) ]]; then
      IFS= read -r -d '' -N 67108864 in  # -N reads in blocks, not byte by byte
      break
    fi
    p=$a
  done
fi
exec 3<>/dev/tcp/127.0.0.1/{port} ||
  {{ echo "ERROR cannot reach the jujusim simulator" >&2; exit 1; }}
printf '%s\0' "${{JUJU_CONTEXT_ID-}}" "$t" "$PWD" $# "$@" ${{#in}} >&3
printf '%s' "$in" >&3
IFS= read -r -d '' rc <&3 || {{ echo "ERROR no reply from the jujusim simulator" >&2; exit 1; }}
IFS= read -r -d '' ol <&3
IFS= read -r -d '' el <&3
if ((ol)); then IFS= read -r -d '' -N "$ol" o <&3; printf '%s' "$o"; fi
if ((el)); then IFS= read -r -d '' -N "$el" e <&3; printf '%s' "$e" >&2; fi
exit "$rc"
"""

_PYTHON_CLIENT = """#!{python} -SE
# jujusim hook tool (fallback client): forwards this call to the simulator.
# Uses _socket, not socket: importing socket costs more than the whole round trip.
import _socket, os, sys
tool = sys.argv[0].rpartition("/")[2]
args = sys.argv[1:]
data = b""
if tool in ("relation-set", "state-set") and any(
    a == "--file=-" or (p == "--file" and a == "-") for p, a in zip([""] + args, args)
):
    data = sys.stdin.buffer.read()
fields = [os.environ.get("JUJU_CONTEXT_ID", ""), tool, os.getcwd(), str(len(args))]
fields += args + [str(len(data))]
s = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
s.connect(("127.0.0.1", {port}))
s.sendall(b"".join(f.encode("utf-8", "surrogateescape") + b"\\0" for f in fields) + data)
chunks = []
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    chunks.append(chunk)
code, olen, elen, rest = b"".join(chunks).split(b"\\0", 3)
sys.stdout.buffer.write(rest[: int(olen)])
sys.stderr.buffer.write(rest[int(olen) : int(olen) + int(elen)])
sys.exit(int(code))
"""


class _Reader:
    """Reads NUL-terminated fields and raw bytes from a socket without over-reading."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = b""

    def _fill(self) -> None:
        chunk = self._sock.recv(65536)
        if not chunk:
            raise EOFError("hook tool client closed the connection early")
        self._buf += chunk

    def field(self) -> str:
        while (end := self._buf.find(b"\0")) < 0:
            self._fill()
        raw, self._buf = self._buf[:end], self._buf[end + 1 :]
        return raw.decode("utf-8", "surrogateescape")

    def raw(self, size: int) -> bytes:
        while len(self._buf) < size:
            self._fill()
        raw, self._buf = self._buf[:size], self._buf[size:]
        return raw


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        reader = _Reader(self.request)
        try:
            context_id, tool, cwd = reader.field(), reader.field(), reader.field()
            argv = [reader.field() for _ in range(int(reader.field()))]
            stdin = reader.raw(int(reader.field())).decode("utf-8", "surrogateescape")
        except (EOFError, ValueError, OSError) as e:
            logger.debug("incomplete hook tool request (a probe?): %s", e)
            return
        session = self.server.owner.session(context_id)
        exec_handler = self.server.owner.exec_handler
        if tool == "juju-exec" and exec_handler is not None:
            result = exec_handler(argv)  # blocks until the simulator has run it
        elif session is None:
            result = ToolResult(1, "", f"ERROR unknown hook context {context_id!r}\n")
        else:
            result = call_tool(session, tool, argv, stdin, cwd)
        out = result.stdout.encode("utf-8", "surrogateescape")
        err = result.stderr.encode("utf-8", "surrogateescape")
        header = f"{result.code}\0{len(out)}\0{len(err)}\0".encode()
        try:
            self.request.sendall(header + out + err)
        except OSError as e:
            logger.warning("hook tool %s: could not reply: %s", tool, e)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, owner: ToolServer) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)


class ToolServer:
    """Maps ``JUJU_CONTEXT_ID`` to the session of the hook that is running with it."""

    def __init__(self) -> None:
        self._sessions: dict[str, ToolSession] = {}
        self.exec_handler: Callable[[list[str]], ToolResult] | None = None
        """Serves ``juju-exec`` (no hook context), see :mod:`jujusim.machine`."""
        self._lock = threading.Lock()
        self._server = _Server(self)
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.5},
            name="jujusim-hook-tools", daemon=True,
        )  # fmt: skip
        self._thread.start()

    def register(self, context_id: str, session: ToolSession) -> None:
        """Serve tool calls carrying ``context_id`` from ``session`` until unregistered."""
        with self._lock:
            self._sessions[context_id] = session

    def unregister(self, context_id: str) -> None:
        """Stop serving ``context_id``: later calls (stray background processes) fail."""
        with self._lock:
            self._sessions.pop(context_id, None)

    def session(self, context_id: str) -> ToolSession | None:
        """Return the live session for ``context_id``, if any."""
        with self._lock:
            return self._sessions.get(context_id)

    def close(self) -> None:
        """Stop the server thread and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _bash_has_dev_tcp(bash: str, port: int) -> bool:
    """Debian's bash has ``/dev/tcp``; some builds do not. Probe it against our server."""
    try:
        probe = subprocess.run(
            [bash, "-c", f"exec 3<>/dev/tcp/127.0.0.1/{port}"],
            capture_output=True, timeout=10, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def install_tools(tools_dir: str, port: int, *, prefer_bash: bool = True) -> str:
    """Write the client into ``tools_dir`` and symlink every tool name to it.

    Returns which client was written (``"bash"`` or ``"python"``).
    """
    os.makedirs(tools_dir, exist_ok=True)
    bash = shutil.which("bash") if prefer_bash else None
    if bash and _bash_has_dev_tcp(bash, port):
        kind, text = "bash", _BASH_CLIENT.format(bash=bash, port=port)
    else:
        kind, text = "python", _PYTHON_CLIENT.format(python=sys.executable, port=port)
    client = os.path.join(tools_dir, "jujusim-hook-tool")
    with open(client, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(client, 0o755)
    for name in sorted(TOOL_NAMES):
        link = os.path.join(tools_dir, name)
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink("jujusim-hook-tool", link)
    return kind
