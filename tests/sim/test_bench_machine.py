"""The process runtime's machine shim: per-unit clock skew, juju-exec, jujud."""

from __future__ import annotations

import json
import os
import stat
import textwrap
from pathlib import Path

import pytest

from jujusim.charmspec import load_charm_spec
from jujusim.engine import Simulator
from jujusim.fork import ForkRuntime
from jujusim.process import ProcessRuntime

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc")

_HOOK = """#!/usr/bin/env python3
import glob, json, os, subprocess, sys, time
unit = os.environ["JUJU_UNIT_NAME"]
out = os.path.join(os.environ["BENCH_TEST_OUT"], unit.replace("/", "-") + ".json")
name = os.path.basename(sys.argv[0])
jujud = glob.glob("/var/lib/juju/tools/machine-*/jujud")
record = {"hook": name, "time": time.time(), "jujud": jujud}
with open(out, "a") as f:
    f.write(json.dumps(record) + "\\n")
if name == "install" and unit.endswith("/0"):
    # As charmlibs-rollingops does: a background worker that sleeps, then juju-exec.
    worker = (
        "import subprocess, time; time.sleep(10); "
        f"subprocess.run(['/usr/bin/juju-exec', '-u', '{unit}', "
        f"'JUJU_DISPATCH_PATH=hooks/custom {os.environ['CHARM_DIR']}/hooks/custom'], check=True)"
    )
    env = dict(os.environ)
    env.pop("JUJU_CONTEXT_ID")
    subprocess.Popen(["python3", "-c", worker], env=env)
"""


def _charm(tmp_path: Path) -> str:
    charm = tmp_path / "charm"
    (charm / "hooks").mkdir(parents=True)
    (charm / "metadata.yaml").write_text("name: shim\npeers:\n  p:\n    interface: shim\n")
    for name in ("install", "custom"):
        hook = charm / "hooks" / name
        hook.write_text(textwrap.dedent(_HOOK))
        hook.chmod(hook.stat().st_mode | stat.S_IXUSR)
    return str(charm)


def _records(out: Path, unit: str) -> list[dict[str, object]]:
    path = out / (unit.replace("/", "-") + ".json")
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("runtime", [ProcessRuntime, ForkRuntime], ids=["process", "fork"])
def test_skew_shifts_a_units_clock_and_juju_exec_queues_a_hook(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runtime: type[ProcessRuntime]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setenv("BENCH_TEST_OUT", str(out))
    charm = _charm(tmp_path)
    work = tmp_path / "sim"
    work.mkdir()
    sim = Simulator(load_charm_spec(charm), runtime(charm, str(work)), workdir=str(work))
    try:
        sim.clock_skew["shim/1"] = -3600.0
        sim.deploy(2)
        assert sim.run_until_quiet(200) == "quiet"
        t0 = _records(out, "shim/0")[0]["time"]
        t1 = _records(out, "shim/1")[0]["time"]
        assert isinstance(t0, float) and isinstance(t1, float)
        assert -3600 - 10 < t1 - t0 < -3600 + 10  # logical clocks, one an hour behind
        # jujud is found where charmhelpers looks for it
        assert _records(out, "shim/1")[0]["jujud"]
        # the worker's juju-exec ran "custom" on shim/0, 10 s (logical) after install
        execs = [r for r in sim.records if r.hook.name == "juju-exec"]
        assert [r.unit for r in execs] == ["shim/0"] and execs[0].ok
        install = next(r for r in sim.records if r.unit == "shim/0" and r.hook.name == "install")
        assert 10.0 <= execs[0].start - install.start < 20.0  # queued behind busy hooks
        custom = [r for r in _records(out, "shim/0") if r["hook"] == "custom"]
        assert len(custom) == 1
    finally:
        sim.close()
