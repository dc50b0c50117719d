"""The ``process`` runtime: run a charm's hooks as Juju does, as real subprocesses.

Juju runs ``$CHARM_DIR/dispatch`` if present, else ``hooks/<name>`` (``actions/<name>``
for actions), with ``cwd`` the charm directory, its hook environment, and its hook tools
first on ``PATH`` (juju-semantics.md 4.1-4.3). This runtime does the same, so any charm
runs unmodified: ops, charmhelpers, shell. The tools are served from this process by a
:class:`~jujusim.hooktools_server.ToolServer` against the hook's HookContext.

Each unit gets its own charm directory, ``<workdir>/units/<app>-<n>/charm``, made of
symlinks to the top-level entries of the real charm: code is shared, while the state
files that ops and charmhelpers write into ``CHARM_DIR`` (``.unit-state.db``,
``.juju-persistent-config``, ``.charmhelpers.*``) are real per-unit files.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence

import yaml

from .context import ExecRequest, HookContext, HookInvocation, HookOutcome
from .hooktools import ToolResult, ToolSession
from .hooktools_server import ToolServer, install_tools
from .machine import install_machine

__all__ = ["JUJU_VERSION", "ProcessRuntime"]

JUJU_VERSION = "3.6.8"

_STATE_NAMES = frozenset({".juju-persistent-config"})
_STATE_PREFIXES = (".unit-state.db", ".charmhelpers.")
# PYTHONDONTWRITEBYTECODE: Juju's hooks write bytecode caches; without them every hook
# would recompile the charm and its libraries (~20 ms each), which Juju never pays.
_SCRUBBED = frozenset(
    {"CHARM_DIR", "OPERATOR_DISPATCH", "UNIT_STATE_DB", "PYTHONDONTWRITEBYTECODE"}
)


def _is_state_file(name: str) -> bool:
    return name in _STATE_NAMES or name.startswith(_STATE_PREFIXES)


def _relation_endpoints(charm_dir: str) -> list[str]:
    """Endpoint names from ``metadata.yaml`` (or ``charmcraft.yaml``), peers first."""
    for filename in ("metadata.yaml", "charmcraft.yaml"):
        path = os.path.join(charm_dir, filename)
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8") as f:
            meta = yaml.safe_load(f) or {}
        if isinstance(meta, dict):
            return [
                str(name)
                for section in ("peers", "provides", "requires")
                for name in (meta.get(section) or {})
            ]
    return []


def _inherited_env() -> dict[str, str]:
    """Copy the simulator's environment minus what would leak another hook's identity."""
    return {
        k: v for k, v in os.environ.items() if not k.startswith("JUJU_") and k not in _SCRUBBED
    }


class ProcessRuntime:
    """Runs hooks and actions of any charm as subprocesses, with hook tools on ``PATH``."""

    name = "process"
    concurrent = True
    """Hooks of different units may execute at once: each is its own process, with its
    own context id on the threaded tool server (the engine keeps the run sequential)."""

    def __init__(
        self,
        charm_dir: str,
        workdir: str,
        *,
        timeout: float | None = None,
        juju_version: str = JUJU_VERSION,
        prefer_bash: bool = True,
        machine: bool = True,
        background_wait: float = 10.0,
    ) -> None:
        self.charm_dir = os.path.abspath(charm_dir)
        self.workdir = os.path.abspath(workdir)
        self.timeout = timeout
        self.juju_version = juju_version
        os.makedirs(self.workdir, exist_ok=True)
        self._endpoints = _relation_endpoints(self.charm_dir)
        self._server = ToolServer()
        self.tools_dir = tempfile.mkdtemp(prefix="hook-tools-", dir=self.workdir)
        self.client_kind = install_tools(
            self.tools_dir, self._server.port, prefer_bash=prefer_bash
        )
        """``"bash"`` or ``"python"``: which hook-tool client the charm processes use."""
        self.machine_root: str | None = None
        """The machine shim (``jujusim.machine``): Juju's files, the clock, juju-exec."""
        self._machine_bin: str | None = None
        self.background_wait = background_wait
        self._execs: dict[str, _PendingExec] = {}
        if machine:
            self.machine_root = tempfile.mkdtemp(prefix="machine-", dir=self.workdir)
            self._machine_bin = install_machine(
                self.machine_root, port=self._server.port, juju_version=juju_version
            )
            self._server.exec_handler = self._juju_exec
        self._lock = threading.Lock()
        self._prepared: set[str] = set()
        self._ports: dict[str, dict[str, tuple[str, ...]]] = {}
        self._sources: dict[str, str] = {}
        """Units upgraded to another charm directory (``upgrade_unit``)."""

    # -- per-unit charm directories -------------------------------------------------------

    def unit_charm_dir(self, unit: str) -> str:
        """Return the unit's own charm directory, creating it on first use."""
        path = os.path.join(self.workdir, "units", unit.replace("/", "-"), "charm")
        with self._lock:
            if path not in self._prepared:
                self._populate(path, self._sources.get(unit, self.charm_dir))
                self._prepared.add(path)
        return path

    def upgrade_unit(self, unit: str, charm_dir: str) -> None:
        """Point the unit's charm directory at new code (upgrade-charm); state files stay.

        Juju unpacks the new charm over the old one and keeps what the charm wrote
        there; here the symlinks are replaced and the real (state) files are kept.
        """
        source = os.path.abspath(charm_dir)
        path = os.path.join(self.workdir, "units", unit.replace("/", "-"), "charm")
        with self._lock:
            self._sources[unit] = source
            if os.path.isdir(path):
                for name in os.listdir(path):
                    link = os.path.join(path, name)
                    if os.path.islink(link):
                        os.unlink(link)
            self._populate(path, source)
            self._prepared.add(path)

    def _populate(self, target: str, charm_dir: str) -> None:
        os.makedirs(target, exist_ok=True)
        for name in os.listdir(charm_dir):
            if _is_state_file(name):
                continue
            source = os.path.join(charm_dir, name)
            link = os.path.join(target, name)
            if os.path.islink(link) and os.readlink(link) != source:
                os.unlink(link)
            if not os.path.lexists(link):
                os.symlink(source, link)

    def forget_unit(self, unit: str) -> None:
        """Delete a removed unit's directory and ports, so a unit of that name starts afresh."""
        path = os.path.join(self.workdir, "units", unit.replace("/", "-"))
        with self._lock:
            self._prepared.discard(os.path.join(path, "charm"))
            self._ports.pop(unit, None)
            self._sources.pop(unit, None)
            shutil.rmtree(path, ignore_errors=True)

    def unit_ports(self, unit: str) -> dict[str, tuple[str, ...]]:
        """Ports the unit has opened, as committed by its successful hooks."""
        with self._lock:
            return dict(self._ports.get(unit, {}))

    # -- running hooks ----------------------------------------------------------------------

    def _environment(
        self, invocation: HookInvocation, ctx: HookContext, charm: str, context_id: str
    ) -> dict[str, str]:
        env = _inherited_env()
        unit = ctx.unit_name or invocation.unit
        is_action = invocation.kind == "action"
        env.update({
            "JUJU_UNIT_NAME": unit,
            "JUJU_MODEL_NAME": ctx.model_name,
            "JUJU_MODEL_UUID": ctx.model_uuid,
            "JUJU_VERSION": self.juju_version,
            "JUJU_CHARM_DIR": charm,
            "CHARM_DIR": charm,
            "JUJU_CONTEXT_ID": context_id,
            "JUJU_HOOK_NAME": "" if is_action else invocation.name,
            "JUJU_DISPATCH_PATH": f"{'actions' if is_action else 'hooks'}/{invocation.name}",
            "JUJU_AVAILABILITY_ZONE": ctx.availability_zone,
            "JUJU_MACHINE_ID": unit.rsplit("/", 1)[-1],
            "JUJU_PRINCIPAL_UNIT": "",
            "JUJU_AGENT_SOCKET_ADDRESS": f"127.0.0.1:{self._server.port}",
            "JUJU_AGENT_SOCKET_NETWORK": "tcp",
            "JUJU_API_ADDRESSES": "127.0.0.1:17070",
            "JUJU_SLA": "unsupported",
            "CLOUD_API_VERSION": "",
            "PATH": os.pathsep.join(
                p for p in (self.tools_dir, self._machine_bin, os.path.dirname(sys.executable),
                            env.get("PATH"))
                if p
            ),
        })  # fmt: skip
        if self.machine_root is not None:
            env["JUJUSIM_MACHINE_ROOT"] = self.machine_root
        env.update(invocation.env)
        if is_action:
            uuid = env.setdefault("JUJU_ACTION_UUID", secrets.token_hex(16))
            env.setdefault("JUJU_ACTION_NAME", invocation.name)
            env.setdefault("JUJU_ACTION_TAG", f"action-{uuid}")
        return env

    def run(self, invocation: HookInvocation, ctx: HookContext) -> HookOutcome:
        """Run one hook or action to completion; tool calls are served meanwhile."""
        charm = self.unit_charm_dir(invocation.unit)
        if invocation.kind == "exec":
            return self._run_exec(invocation, ctx, charm)
        kind_dir = "actions" if invocation.kind == "action" else "hooks"
        argv0 = os.path.join(charm, "dispatch")
        if not os.path.exists(argv0):
            argv0 = os.path.join(charm, kind_dir, invocation.name)
            if not os.path.exists(argv0):
                if invocation.kind == "action":
                    return HookOutcome(exit_code=1, stderr="action not implemented on unit\n")
                return HookOutcome(exit_code=0)  # Juju skips a hook the charm lacks
        context_id = f"{invocation.unit}-{invocation.name}-{secrets.randbelow(1 << 63)}"
        env = self._environment(invocation, ctx, charm, context_id)
        session = ToolSession(
            ctx, invocation, env, self._endpoints, ports=self.unit_ports(invocation.unit)
        )
        self._server.register(context_id, session)
        try:
            code, out, err, execs = self._spawn([argv0], charm, env)
        finally:
            self._server.unregister(context_id)
        if code == 0:
            with self._lock:
                self._ports[invocation.unit] = dict(session.ports)
        return HookOutcome(
            exit_code=code, tool_calls=session.calls, stdout=out, stderr=err, execs=execs
        )

    # -- juju-exec (machine shim) -------------------------------------------------------------

    def _juju_exec(self, argv: list[str]) -> ToolResult:
        """Serve ``juju-exec [-u UNIT] COMMAND...``: park until the simulator runs it."""
        meta: dict[str, str] = {}
        while argv[:1] and argv[0] in ("--jujusim-pgid", "--jujusim-elapsed"):
            meta[argv[0]], argv = argv[1], argv[2:]
        unit = ""
        words: list[str] = []
        it = iter(argv)
        for a in it:
            if a in ("-u", "--unit"):
                unit = next(it, "")
            elif a.startswith("--unit="):
                unit = a.split("=", 1)[1]
            else:
                words.append(a)
        if not unit or not words:
            return ToolResult(2, "", "ERROR juju-exec: need -u UNIT and a command\n")
        try:
            pgid, elapsed = int(meta["--jujusim-pgid"]), float(meta["--jujusim-elapsed"])
        except (KeyError, ValueError):
            return ToolResult(2, "", "ERROR juju-exec: not called through the machine shim\n")
        pending = _PendingExec(
            ExecRequest(
                unit=unit, command=" ".join(words), delay=elapsed, id=secrets.token_hex(8)
            ),
            pgid,
        )
        with self._lock:
            self._execs[pending.request.id] = pending
        pending.done.wait()
        return pending.result

    def _run_exec(
        self, invocation: HookInvocation, ctx: HookContext, charm: str
    ) -> HookOutcome:
        """Run a queued ``juju-exec`` command in a hook context, then answer its caller."""
        request_id = str(invocation.action_params.get("id", ""))
        command = str(invocation.action_params.get("command", ""))
        context_id = f"{invocation.unit}-juju-exec-{secrets.randbelow(1 << 63)}"
        env = self._environment(invocation, ctx, charm, context_id)
        for name in ("JUJU_HOOK_NAME", "JUJU_DISPATCH_PATH"):
            env.pop(name, None)  # a juju-exec context has neither; the command sets its own
        session = ToolSession(
            ctx, invocation, env, self._endpoints, ports=self.unit_ports(invocation.unit)
        )
        self._server.register(context_id, session)
        try:
            code, out, err, execs = self._spawn(["/bin/sh", "-c", command], charm, env)
        finally:
            self._server.unregister(context_id)
        if code == 0:
            with self._lock:
                self._ports[invocation.unit] = dict(session.ports)
        with self._lock:
            pending = self._execs.pop(request_id, None)
        if pending is not None:
            pending.result = ToolResult(code, out, err)
            pending.done.set()
        return HookOutcome(
            exit_code=code, tool_calls=session.calls, stdout=out, stderr=err, execs=execs
        )

    def _background_execs(self, pgid: int) -> tuple[ExecRequest, ...]:
        """Wait until the hook's leftover processes have exited or parked in juju-exec.

        A background process (same process group as the hook) that calls ``juju-exec``
        does so at a wall time the simulator does not control; waiting for it here, while
        the model's clock stands at the hook's start, keeps runs reproducible.
        """
        deadline = time.monotonic() + self.background_wait
        while True:
            with self._lock:
                found = [
                    p for p in self._execs.values() if p.pgid == pgid and not p.reported
                ]
                for p in found:
                    p.reported = True
            if found or not _group_alive(pgid) or time.monotonic() > deadline:
                return tuple(p.request for p in found)
            time.sleep(0.002)

    def _spawn(
        self, argv: Sequence[str], cwd: str, env: Mapping[str, str]
    ) -> tuple[int, str, str, tuple[ExecRequest, ...]]:
        """Run the handler; output goes to files, so a lingering child cannot block us."""
        env = dict(env)
        env["JUJUSIM_WALL_AT_START"] = repr(time.time())
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                proc = subprocess.Popen(
                    list(argv), cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                    stderr=err, start_new_session=True,
                )  # fmt: skip
            except OSError as e:
                return 126, "", f"cannot run {argv[0]}: {e}\n", ()
            try:
                code = proc.wait(timeout=self.timeout)
                extra = ""
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                code = proc.wait()
                extra = f"jujusim: hook killed after {self.timeout}s\n"
            execs = self._background_execs(proc.pid) if self.machine_root else ()
            out.seek(0)
            err.seek(0)
            return (
                code,
                out.read().decode("utf-8", "replace"),
                err.read().decode("utf-8", "replace") + extra,
                execs,
            )

    def close(self) -> None:
        """Stop serving hook tools and remove the tool executables."""
        with self._lock:
            waiting, self._execs = list(self._execs.values()), {}
        for pending in waiting:  # the model is gone: juju-exec fails, as with no agent
            pending.result = ToolResult(1, "", "ERROR the unit agent is gone\n")
            pending.done.set()
        self._server.close()
        if self.machine_root is not None:
            shutil.rmtree(self.machine_root, ignore_errors=True)
        shutil.rmtree(self.tools_dir, ignore_errors=True)

    def __enter__(self) -> ProcessRuntime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _PendingExec:
    """A ``juju-exec`` caller waiting for the simulator to run its command."""

    def __init__(self, request: ExecRequest, pgid: int) -> None:
        self.request = request
        self.pgid = pgid
        self.reported = False
        self.done = threading.Event()
        self.result = ToolResult(1, "", "ERROR juju-exec was not run\n")


def _group_alive(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs (zombies do not count)."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and fields[0] != "Z" and fields[2] == str(pgid):
            return True
    return False
