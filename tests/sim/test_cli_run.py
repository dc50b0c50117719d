"""The command line and its JSON, exactly as DESIGN.md names them."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from simkit import CHARMS, ROOT

from jujusim.cli import main

RUN_KEYS = {
    "units", "runtime", "completed", "operations", "max_concurrent", "violations", "hooks",
    "rounds", "hook_tool_calls", "databag_bytes_max", "wall_s",
}
CAMPAIGN_KEYS = {
    "schedules", "violations", "lost_requests", "stalled", "hooks", "wall_s", "failing_seeds",
}


def run_cli(*args):
    return main([str(a) for a in args])


def test_run_json_timeline_and_svg(tmp_path, capsys):
    out = tmp_path / "r.json"
    svg = tmp_path / "t.svg"
    rc = run_cli(
        "run", CHARMS / "ordered", "--units", 3, "--scenario", "rolling-restart",
        "--runtime", "inprocess", "--seed", 5, "--json", out, "--timeline", svg,
    )
    assert rc == 0
    data = json.loads(out.read_text())
    assert set(data) >= RUN_KEYS
    assert data["units"] == 3 and data["runtime"] == "inprocess" and data["completed"] is True
    assert data["operations"] == 3 and data["max_concurrent"] == 1 and data["violations"] == []
    stdout = capsys.readouterr().out
    assert "ordered/0" in stdout and "#" in stdout and "OK: rolling-restart" in stdout
    root = ET.fromstring(svg.read_text())
    assert root.tag.endswith("svg")


def test_run_reports_violations_with_exit_1(tmp_path, capsys):
    out = tmp_path / "r.json"
    rc = run_cli("run", CHARMS / "unsafe", "--units", 3, "--runtime", "inprocess", "--json", out)
    assert rc == 1
    assert json.loads(out.read_text())["violations"]
    assert "FAILED" in capsys.readouterr().out


def test_replaying_a_seed_gives_the_same_run(tmp_path):
    outputs = []
    for name in ("a", "b"):
        out = tmp_path / f"{name}.json"
        run_cli(
            "run", CHARMS / "ordered", "--units", 4, "--runtime", "inprocess", "--seed", 11,
            "--faults", "all", "--json", out, "--no-timeline",
        )
        data = json.loads(out.read_text())
        data.pop("wall_s")
        outputs.append(data)
    assert outputs[0] == outputs[1]


def test_bad_faults_spec_is_a_usage_error(capsys):
    assert run_cli("run", CHARMS / "ordered", "--units", 2, "--faults", "bogus=1") == 2
    assert "unknown fault" in capsys.readouterr().err


def test_missing_charm_dir_is_a_usage_error(tmp_path, capsys):
    assert run_cli("run", tmp_path / "nope", "--units", 2, "--runtime", "inprocess") == 2


def test_campaign_json(tmp_path, capsys):
    out = tmp_path / "c.json"
    rc = run_cli(
        "campaign", CHARMS / "ordered", "--schedules", 4, "--units", "2..4", "--seed", 3,
        "--json", out,
    )
    assert rc == 0
    data = json.loads(out.read_text())
    assert set(data) >= CAMPAIGN_KEYS
    assert data["schedules"] == 4 and data["violations"] == 0 and data["failing_seeds"] == []


def test_campaign_reports_failing_seeds_that_replay(tmp_path, capsys):
    out = tmp_path / "c.json"
    rc = run_cli(
        "campaign", CHARMS / "unsafe", "--schedules", 3, "--units", "2..3", "--json", out
    )
    assert rc == 1
    data = json.loads(out.read_text())
    assert len(data["failing_seeds"]) == 3 and data["violations"] >= 3
    first = data["failing"][0]
    replay = tmp_path / "r.json"
    run_cli(
        "run", CHARMS / "unsafe", "--units", first["units"], "--runtime", "inprocess",
        "--seed", first["seed"], "--json", replay, "--no-timeline",
    )
    assert json.loads(replay.read_text())["violations"] == first["violations"]


@pytest.mark.parametrize("spec", ["none", "all", "leader-change=0.1,remove=1,add=1,window=60"])
def test_ordered_charm_survives_faults(tmp_path, spec):
    out = tmp_path / "r.json"
    rc = run_cli(
        "run", CHARMS / "ordered", "--units", 4, "--runtime", "inprocess", "--seed", 2,
        "--faults", spec, "--json", out, "--no-timeline",
    )
    data = json.loads(out.read_text())
    assert rc == 0, data["violations"]
    assert data["completed"] and data["violations"] == []


def test_run_accepts_the_fork_runtime(tmp_path):
    out = tmp_path / "f.json"
    rc = run_cli(
        "run", ROOT, "--units", 2, "--runtime", "fork", "--json", out,
    )
    data = json.loads(out.read_text())
    assert rc == 0 and data["runtime"] == "fork" and data["completed"] is True
    assert data["operations"] == 2 and data["violations"] == []
