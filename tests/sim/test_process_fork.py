"""The fork runtime: a hook forked from the warm server sees what a hook process sees."""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from memcontext import MemContext

from jujusim.context import HookInvocation, HookOutcome
from jujusim.fork import EntryPoint, ForkRuntime, _NotForkable, entry_point
from jujusim.process import ProcessRuntime

pytestmark = pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs Linux pidfd")

# Reports, as JSON, what a hook process can observe about how it was started.
_PROBE = r"""#!/usr/bin/env python3
import __main__, json, os, sys, time
import yaml  # a library the server pre-imports
record = {
    "argv": sys.argv,
    "path": sys.path,
    "file": __file__,
    "main": [__main__.__spec__ is None, type(__main__.__loader__).__name__,
             __main__.__package__, getattr(__main__, "__cached__", "-"), __name__],
    "cwd": os.getcwd(),
    "env": {k: v for k, v in os.environ.items()
            if k not in ("JUJU_CONTEXT_ID", "JUJUSIM_WALL_AT_START", "JUJU_AGENT_SOCKET_ADDRESS")},
    "session": os.getsid(0) == os.getpid() and os.getpgid(0) == os.getpid(),
    "stdin": os.path.realpath("/proc/self/fd/0"),
    "flags": [sys.flags.dont_write_bytecode, sys.flags.hash_randomization],
    "time": time.time(),
    "yaml": yaml.__file__,
    "leader": os.popen("is-leader").read().strip(),
}
with open(os.environ["PROBE_OUT"], "a") as f:
    f.write(json.dumps(record) + "\n")
print("to stdout")
print("to stderr", file=sys.stderr)
code = os.environ.get("PROBE_EXIT")
if code:
    sys.exit(int(code) if code.isdigit() else code)
if os.environ.get("PROBE_RAISE"):
    raise RuntimeError("probe failure")
"""

_DISPATCH = (
    "#!/bin/sh\n# As charmcraft generates it.\n"
    'JUJU_DISPATCH_PATH="${JUJU_DISPATCH_PATH:-$0}" \\\n'
    '  PYTHONPATH="lib:venv${PYTHONPATH:+:$PYTHONPATH}" exec python3 ./src/charm.py\n'
)


def _exe(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _charm(tmp_path: Path, form: str) -> Path:
    charm = tmp_path / f"charm-{form}"
    charm.mkdir()
    (charm / "metadata.yaml").write_text("name: probe\npeers:\n  p:\n    interface: probe\n")
    if form == "dispatch":
        _exe(charm / "dispatch", _DISPATCH)
        _exe(charm / "src" / "charm.py", _PROBE)
        (charm / "lib").mkdir()
    else:  # charmhelpers style: hooks/<name> symlinks to one script
        _exe(charm / "hooks" / "hooks.py", _PROBE)
        for name in ("install", "update-status"):
            os.symlink("hooks.py", charm / "hooks" / name)
    return charm


def _run(rt: ProcessRuntime, name: str = "install", **env: str) -> HookOutcome:
    ctx = MemContext("probe/0", leader=True)
    return rt.run(HookInvocation(unit="probe/0", kind="hook", name=name, env=env), ctx)


@pytest.fixture
def probe_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    out = tmp_path / "probe.jsonl"
    monkeypatch.setenv("PROBE_OUT", str(out))
    return out


def _both(tmp_path: Path, charm: Path) -> Iterator[ProcessRuntime]:
    for kind in (ProcessRuntime, ForkRuntime):
        work = tmp_path / f"work-{kind.name}"
        rt = kind(str(charm), str(work), timeout=60)
        try:
            yield rt
        finally:
            rt.close()


@pytest.mark.parametrize("form", ["dispatch", "hooks"])
def test_forked_hook_sees_what_a_process_sees(tmp_path: Path, probe_out: Path, form: str) -> None:
    charm = _charm(tmp_path, form)
    seen: list[dict[str, Any]] = []
    outcomes = []
    for rt in _both(tmp_path, charm):
        outcome = _run(rt, JUJUSIM_NOW="100.0", JUJUSIM_CLOCK_SKEW="-3600")
        assert outcome.exit_code == 0, outcome.stderr
        outcomes.append(outcome)
        record = json.loads(probe_out.read_text().splitlines()[-1])
        # the two runtimes' work directories differ only by name
        text = json.dumps(record)
        for path, name in ((rt.machine_root, "MACHINE"), (rt.tools_dir, "TOOLS")):
            text = text.replace(str(path), name)
        text = text.replace(str(tmp_path / f"work-{rt.name}"), "WORK")
        seen.append(json.loads(text))
        if isinstance(rt, ForkRuntime):
            assert rt.forked == 1 and not rt.fallbacks
    process, forked = seen
    assert forked["env"] == process["env"]
    assert forked == process
    assert process["leader"] == "True" and process["session"]
    assert process["stdin"] == "/dev/null"
    assert process["time"] == pytest.approx(1767225600.0 + 100.0 - 3600, abs=0.1)
    assert [o.stdout for o in outcomes] == ["to stdout\n"] * 2
    assert [o.stderr for o in outcomes] == ["to stderr\n"] * 2
    assert outcomes[0].tool_calls == outcomes[1].tool_calls == 1


@pytest.mark.parametrize(
    ("env", "code", "stderr"),
    [
        ({"PROBE_EXIT": "3"}, 3, "to stderr\n"),
        ({"PROBE_EXIT": "bye"}, 1, "to stderr\nbye\n"),
        ({"PROBE_RAISE": "1"}, 1, "RuntimeError: probe failure"),
    ],
)
def test_exit_codes_and_uncaught_exceptions(
    tmp_path: Path, probe_out: Path, env: dict[str, str], code: int, stderr: str
) -> None:
    charm = _charm(tmp_path, "dispatch")
    errs = []
    for rt in _both(tmp_path, charm):
        outcome = _run(rt, **env)
        assert outcome.exit_code == code
        assert stderr in outcome.stderr
        errs.append(outcome.stderr.replace(str(tmp_path / f"work-{rt.name}"), "WORK"))
    assert errs[0] == errs[1]  # the traceback shows the script's frames only


def test_entry_point_forms(tmp_path: Path) -> None:
    env = {"PYTHONPATH": "/extra", "JUJU_DISPATCH_PATH": "hooks/install"}
    charm = _charm(tmp_path, "dispatch")
    got = entry_point(str(charm / "dispatch"), env)
    assert got == EntryPoint(
        "python3",
        ("./src/charm.py",),
        {"JUJU_DISPATCH_PATH": "hooks/install", "PYTHONPATH": "lib:venv:/extra"},
        via_shell=True,
    )
    # the other forms charms ship
    forms = {
        "PYTHONPATH=lib:$PYTHONPATH exec ./src/charm.py": ("python3", "lib:/extra"),
        'JUJU_DISPATCH_PATH="${JUJU_DISPATCH_PATH:-$0}" PYTHONPATH=lib:venv '
        "exec python3 ./src/charm.py": ("python3", "lib:venv"),
        "exec /usr/bin/env python3 ./src/charm.py": ("python3", None),
    }
    for line, (interpreter, pythonpath) in forms.items():
        _exe(charm / "dispatch", f"#!/bin/sh\n{line}\n")
        got = entry_point(str(charm / "dispatch"), {"PYTHONPATH": "/extra"})
        assert got.interpreter.endswith(interpreter) and got.argv == ("./src/charm.py",)
        assert got.env.get("PYTHONPATH") == pythonpath
    (charm / "dispatch").unlink()
    _exe(charm / "dispatch", "#!/bin/sh\nexec python3 ./src/charm.py\n")
    dollar0 = entry_point(str(charm / "dispatch"), {})
    assert dollar0.argv == ("./src/charm.py",)
    # what the fork runtime leaves to a real process
    refused = [
        "#!/bin/sh\ncd src; exec python3 charm.py\n",
        "#!/bin/sh\nexec python3 -u ./src/charm.py\n",
        "#!/bin/sh\nexec python3 $(pwd)/src/charm.py\n",
        "#!/bin/sh\nset -e\nexec python3 ./src/charm.py\n",
        "#!/bin/bash -e\nexec python3 ./src/charm.py\n",
        "#!/bin/sh\nexec ./bin/workload\n",
        "#!/usr/bin/env python3 -u\n",
        "#!/usr/bin/env ruby\n",
    ]
    _exe(charm / "bin" / "workload", "#!/bin/sh\n")
    for text in refused:
        (charm / "dispatch").write_text(text)
        with pytest.raises(_NotForkable):
            entry_point(str(charm / "dispatch"), {})


def test_charm_copies_of_libraries_are_respected(tmp_path: Path, probe_out: Path) -> None:
    charm = _charm(tmp_path, "dispatch")
    (charm / "lib" / "yaml.py").write_text("raise SystemExit('the charm has its own yaml')\n")
    _exe(charm / "hooks" / "stop", "#!/bin/sh\necho shell\n")
    rt = ForkRuntime(str(charm), str(tmp_path / "work"), timeout=60)
    try:
        # the server does not pre-import what the charm ships itself: the child imports it
        outcome = _run(rt)
        assert outcome.exit_code == 1 and "its own yaml" in outcome.stderr
        assert rt.forked == 1 and not rt.fallbacks
        # a shell charm: a process
        (charm / "dispatch").unlink()
        assert _run(rt, "stop").stdout == "shell\n"
        assert rt.forked == 1 and rt.fallbacks == {"shell script runs a non-Python program": 1}
    finally:
        rt.close()
    # a module the server did import (json, its own) that the charm shadows: a process
    charm = (
        _charm(tmp_path / "again", "dispatch") if (tmp_path / "again").mkdir() is None else charm
    )
    (charm / "lib" / "json.py").write_text("raise SystemExit('the charm has its own json')\n")
    rt = ForkRuntime(str(charm), str(tmp_path / "work-again"), timeout=60)
    try:
        outcome = _run(rt)
        assert outcome.exit_code == 1 and "its own json" in outcome.stderr
        assert rt.forked == 0 and rt.fallbacks == {"json is shadowed by the charm's path": 1}
    finally:
        rt.close()


def test_timeout_kills_the_forked_hook(tmp_path: Path) -> None:
    charm = tmp_path / "charm"
    _exe(charm / "hooks" / "install", "#!/usr/bin/env python3\nimport time\ntime.sleep(30)\n")
    rt = ForkRuntime(str(charm), str(tmp_path / "work"), timeout=1)
    try:
        outcome = _run(rt)
        assert outcome.exit_code == -9 and "killed after 1" in outcome.stderr
        assert rt.forked == 1
    finally:
        rt.close()


_BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "charms"


def _signature(impl: str, scenario: str, units: int, seed: int, runtime: str, tmp: Path) -> Any:
    sys.path.insert(0, str(_BENCH))
    try:
        from build import build  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(_BENCH))
    import jujusim.bench_scenarios  # noqa: F401 - registers the comparison's scenarios
    from jujusim.runner import make_runtime, run_scenario

    charm = build(impl, str(tmp / "build"))
    work = tmp / f"sim-{runtime}"
    work.mkdir()
    rt = make_runtime(runtime, charm, str(work))
    result = run_scenario(
        charm, units=units, scenario=scenario, runtime=rt, seed=seed, workdir=str(work)
    )
    if isinstance(rt, ForkRuntime):
        assert rt.forked and not rt.fallbacks
    records = [
        (r.unit, r.hook.name, r.start, r.end, r.exit_code, r.tool_calls, r.depth,
         [(j.unit, j.event) for j in r.journal])
        for r in result.records
    ]  # fmt: skip
    summary = {k: v for k, v in result.to_json().items() if k not in ("runtime", "wall_s")}
    return summary, records


@pytest.mark.slow
@pytest.mark.parametrize(
    "impl", ["charm_coordinator", "charm_coordinator.classic", "charmhelpers", "rollingops"]
)
@pytest.mark.parametrize(
    ("scenario", "units", "seed"), [("rolling-restart", 2, 1), ("skew-behind", 3, 2)]
)
def test_benchmark_charms_run_the_same_in_both_runtimes(
    tmp_path: Path, impl: str, scenario: str, units: int, seed: int
) -> None:
    """Same hooks, order, logical times, tool calls, rounds, workload lines and bytes."""
    forked = _signature(impl, scenario, units, seed, "fork", tmp_path)
    process = _signature(impl, scenario, units, seed, "process", tmp_path)
    assert forked[0] == process[0]
    assert forked[1] == process[1]


_LEASE_CHARM = """#!/usr/bin/env python3
import atexit, json, os, time
import ops


def note(**record):
    with open(os.environ["PROBE_OUT"], "a") as f:
        f.write(json.dumps(record) + "\\n")


class LeaseCharm(ops.CharmBase):
    def __init__(self, framework):
        super().__init__(framework)
        self.t0 = time.monotonic()
        atexit.register(lambda: note(after=time.monotonic() - self.t0))
        framework.observe(framework.on.pre_commit, self._on_pre_commit)

    def _on_pre_commit(self, _):
        note(committing=time.monotonic() - self.t0)


if __name__ == "__main__":
    ops.main(LeaseCharm)
"""


def test_a_long_hook_reaches_monotonic_as_ops_commits(tmp_path: Path, probe_out: Path) -> None:
    """As in the direct runtime: the hook's logical length is on the clock at commit."""
    charm = tmp_path / "charm-lease"
    charm.mkdir()
    (charm / "metadata.yaml").write_text("name: lease\n")
    _exe(charm / "dispatch", _DISPATCH)
    _exe(charm / "src" / "charm.py", _LEASE_CHARM)
    for rt in _both(tmp_path, charm):
        assert _run(rt, JUJUSIM_HOOK_SECONDS="330.0").exit_code == 0
    records = [json.loads(line) for line in probe_out.read_text().splitlines()]
    committing = [r["committing"] for r in records if "committing" in r]
    after = [r["after"] for r in records if "after" in r]
    assert len(committing) == len(after) == 2  # process, then fork
    assert all(330.0 <= c < 340.0 for c in committing)
    assert all(a < 10.0 for a in after)
