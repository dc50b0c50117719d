"""The simulated machine a unit runs on: its clock, and the files Juju puts on it.

Some charm libraries reach past the hook tools to the machine itself:

- ``charmhelpers`` reads the Juju version from ``/var/lib/juju/tools/machine-*/jujud``;
- ``charmlibs-rollingops`` starts ``/usr/bin/python3 <charm>/venv/.../_rollingops.py`` in
  the background, which sleeps 10 s and then runs ``/usr/bin/juju-exec -u UNIT
  "JUJU_DISPATCH_PATH=hooks/... <charm>/dispatch"`` to queue a hook-like run on its unit;
- anything that orders by timestamps reads the machine's clock, and clocks disagree.

The process runtime gives every unit such a machine without touching the host, through a
*machine shim*: a directory ``<root>`` holding the Juju files (``<root>/usr/bin/juju-exec``,
``<root>/var/lib/juju/tools/machine-N/jujud``), a ``python3`` wrapper first on ``PATH``
that appends ``<root>/shim`` to ``PYTHONPATH``, and ``<root>/shim/sitecustomize.py``, which
Python imports at start-up in every interpreter of the unit, the hook's and the background
ones it starts (``PYTHONPATH`` is inherited). ``sitecustomize`` does three things, and only
when ``JUJUSIM_MACHINE_ROOT`` is set:

1. **Paths.** An absolute path under ``/usr/bin/juju-exec`` or ``/var/lib/juju/`` given to
   ``subprocess`` or ``glob`` is looked up under ``<root>`` first: the machine's files,
   as a bind mount would show them. Nothing else is remapped (``/usr/bin/python3`` is the
   host's, as on a Juju machine).
2. **Clock.** ``time.time``/``time_ns`` and ``datetime.now/utcnow/today`` follow the
   simulator's *logical* time: ``JUJUSIM_NOW`` (the hook's logical start, on an epoch of
   2026-01-01T00:00:00Z) plus the unit's skew ``JUJUSIM_CLOCK_SKEW`` (seconds, may be
   negative), plus the logical time the process has slept, plus 1 us per reading (so
   that successive readings increase). Wall time never enters it: timestamps differ
   between hooks by what the model says, not by how fast the simulator runs or how
   loaded the machine is, and a run is the same in the ``process`` and ``fork``
   runtimes. ``time.monotonic`` is real, except while ops commits
   (``Framework.commit``), when it is ahead by the hook's logical length
   (``JUJUSIM_HOOK_SECONDS``), as in the direct runtime: a lease checked as the hook
   commits sees the time the hook took. ``perf_counter`` is left alone.
3. **Sleeps are logical.** ``time.sleep(s)`` advances the process's clock by ``s``. In a
   hook it also sleeps for real (a hook waiting for something outside keeps waiting); in
   a process outside any hook (no ``JUJU_CONTEXT_ID``, e.g. rollingops' worker) it
   returns at once. A ``juju-exec`` such a process runs carries the logical time it
   slept, and the simulator queues the run at ``hook start + slept``.

``sitecustomize`` keeps ``jujusim_reset()``, which re-reads the clock's variables: the
fork runtime's children call it once their environment is the hook's.

Faithful enough for Python charms; a charm in another language would need Debian's
``faketime`` (LD_PRELOAD) for the clock and the files at their real paths.
"""

from __future__ import annotations

import os
import stat
import sys

__all__ = ["CLOCK_EPOCH", "install_machine"]

CLOCK_EPOCH = 1767225600.0
"""Epoch seconds of logical time 0 (2026-01-01T00:00:00Z)."""

_SITECUSTOMIZE = r"""# jujusim machine shim (jujusim/machine.py), loaded by every Python of a unit.
import os as _os


def _jujusim_machine():
    root = _os.environ.get("JUJUSIM_MACHINE_ROOT")
    if not root:
        return None
    import datetime as _dt
    import glob as _glob
    import subprocess as _sp
    import time as _time

    real_time, real_sleep, real_monotonic = _time.time, _time.sleep, _time.monotonic
    # base: None (real time), or logical start + skew in epoch seconds. The clock then
    # advances by the logical time slept and by 1 us per reading, never by wall time.
    # length: the hook's logical length, added to time.monotonic while ops commits.
    state = {
        "slept": 0.0, "base": None, "background": False, "ticks": 0,
        "length": 0.0, "committing": 0,
    }

    def reset():
        # Read the hook's clock from the environment; at start-up, and again in a child
        # forked by the fork runtime's server (jujusim/forkserver.py) once its environment
        # is the hook's.
        state["slept"], state["ticks"], state["committing"] = 0.0, 0, 0
        try:
            state["length"] = float(_os.environ.get("JUJUSIM_HOOK_SECONDS") or 0.0)
        except ValueError:
            state["length"] = 0.0
        try:
            now = float(_os.environ["JUJUSIM_NOW"])
            skew = float(_os.environ.get("JUJUSIM_CLOCK_SKEW") or 0.0)
        except (KeyError, ValueError):
            state["base"] = None
        else:
            state["base"] = %(epoch)r + now + skew
        # a process outside any hook (a background worker): its sleeps take no wall time
        state["background"] = "JUJU_CONTEXT_ID" not in _os.environ

    def fake_time():
        base = state["base"]
        if base is None:
            return real_time()
        state["ticks"] += 1
        return base + state["slept"] + state["ticks"] * 1e-6

    _real_time_ns = _time.time_ns

    def fake_time_ns():
        if state["base"] is None:
            return _real_time_ns()
        return int(fake_time() * 1e9)

    class datetime(_dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return cls.fromtimestamp(fake_time(), tz)

        @classmethod
        def utcnow(cls):
            return cls.fromtimestamp(fake_time(), _dt.timezone.utc).replace(tzinfo=None)

        @classmethod
        def today(cls):
            return cls.fromtimestamp(fake_time())

    def fake_sleep(seconds):
        if state["base"] is None:
            return real_sleep(seconds)
        state["slept"] += max(0.0, float(seconds))
        real_sleep(0 if state["background"] else seconds)

    _time.time, _time.time_ns, _time.sleep = fake_time, fake_time_ns, fake_sleep

    def fake_monotonic():
        return real_monotonic() + (state["length"] if state["committing"] else 0.0)

    _time.monotonic = fake_monotonic

    # As the direct runtime does: charm code runs at the hook's start and the engine
    # commits it JUJUSIM_HOOK_SECONDS later, so while ops commits (Framework.commit,
    # where pre-commit handlers write) time.monotonic is ahead by that much. ops is
    # patched as soon as ops.framework is imported (builtins.__import__ watches for it,
    # then steps aside).
    import builtins as _builtins
    import sys as _sys

    real_import = _builtins.__import__

    def patch_ops():
        framework = _sys.modules.get("ops.framework")
        cls = getattr(framework, "Framework", None)
        if cls is None or getattr(cls, "_jujusim_commit", False):
            return cls is not None
        commit = cls.commit

        def framework_commit(self, *a, **kw):
            state["committing"] += 1
            try:
                return commit(self, *a, **kw)
            finally:
                state["committing"] -= 1

        cls.commit = framework_commit
        cls._jujusim_commit = True
        return True

    def watching_import(name, *a, **kw):
        module = real_import(name, *a, **kw)
        if "ops.framework" in _sys.modules and patch_ops():
            _builtins.__import__ = real_import
        return module

    _builtins.__import__ = watching_import
    _dt.datetime = datetime

    prefixes = ("/usr/bin/juju-exec", "/var/lib/juju/")

    def remap(path):
        if isinstance(path, str) and path.startswith(prefixes):
            mapped = root + path
            if _os.path.exists(mapped) or "*" in path:
                return mapped
        return path

    real_init = _sp.Popen.__init__

    def popen_init(self, args, *a, **kw):
        if isinstance(args, (list, tuple)) and args:
            args = [remap(args[0]), *args[1:]]
        elif isinstance(args, str) and not kw.get("shell"):
            args = remap(args)
        if kw.get("executable"):
            kw["executable"] = remap(kw["executable"])
        first = args[0] if isinstance(args, list) else args
        if isinstance(first, str) and first.endswith("/usr/bin/juju-exec"):
            env = dict(_os.environ if kw.get("env") is None else kw["env"])
            env["JUJUSIM_LOGICAL_ELAPSED"] = repr(state["slept"])
            kw["env"] = env
        real_init(self, args, *a, **kw)

    _sp.Popen.__init__ = popen_init
    real_glob, real_iglob = _glob.glob, _glob.iglob
    _glob.glob = lambda pathname, *a, **kw: real_glob(remap(pathname), *a, **kw)
    _glob.iglob = lambda pathname, *a, **kw: real_iglob(remap(pathname), *a, **kw)
    reset()
    return reset


jujusim_reset = _jujusim_machine()
del _jujusim_machine
"""

_PYTHON_WRAPPER = """#!/bin/sh
# jujusim machine shim: the unit's python3 (see jujusim/machine.py).
PYTHONPATH="${{PYTHONPATH:+$PYTHONPATH:}}{shim}" exec {python} "$@"
"""

_JUJUD = """#!/bin/sh
# jujusim machine shim: the machine agent binary, as far as charms ask it anything.
case "$1" in
  version|--version) echo "{version}-ubuntu-amd64" ;;
  *) echo "jujusim jujud: $1 not supported" >&2; exit 1 ;;
esac
"""

_JUJU_EXEC = """#!{python} -SE
# jujusim machine shim: juju-exec queues a hook-like run on a unit and waits for it.
import _socket, os, sys
elapsed = os.environ.get("JUJUSIM_LOGICAL_ELAPSED", "0")
args = ["--jujusim-pgid", str(os.getpgid(0)), "--jujusim-elapsed", elapsed] + sys.argv[1:]
fields = ["", "juju-exec", os.getcwd(), str(len(args))] + args + ["0"]
s = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
s.connect(("127.0.0.1", {port}))
s.sendall(b"".join(f.encode("utf-8", "surrogateescape") + b"\\0" for f in fields))
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


def _write(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def install_machine(root: str, *, port: int, juju_version: str) -> str:
    """Write the machine shim under ``root``; returns the directory to put first on PATH."""
    python = sys.executable
    shim = os.path.join(root, "shim")
    _write(os.path.join(shim, "sitecustomize.py"), _SITECUSTOMIZE % {"epoch": CLOCK_EPOCH})
    bin_dir = os.path.join(root, "bin")
    for name in ("python3", "python", f"python3.{sys.version_info.minor}"):
        _write(os.path.join(bin_dir, name), _PYTHON_WRAPPER.format(shim=shim, python=python))
    _write(
        os.path.join(root, "usr", "bin", "juju-exec"), _JUJU_EXEC.format(python=python, port=port)
    )
    # One tools directory serves every unit (Juju: machine-<n>; charmhelpers globs machine-*).
    _write(
        os.path.join(root, "var", "lib", "juju", "tools", "machine-0", "jujud"),
        _JUJUD.format(version=juju_version),
    )
    return bin_dir
