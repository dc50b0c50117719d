"""What the process runtime's hook tools cost, measured side by side in one run.

(a) a bare ``python -c "import ops"``: the floor for any ops hook;
(b) real ops hooks (update-status, peer relation-changed) of tests/charms/proc_ops run
    through ProcessRuntime, with their tool-call counts;
(c) one hook-tool call as ops makes it (``subprocess.run``), next to ``/bin/true``;
and the ratio (b)/(a).

    /work/venv/bin/python benchmarks/hooktool_cost.py [--repeat N] [--client bash|python]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "lib"), os.path.join(ROOT, "tests", "sim")]

from memcontext import MemContext  # noqa: E402

from jujusim.context import HookInvocation  # noqa: E402
from jujusim.process import ProcessRuntime  # noqa: E402

CHARM = os.path.join(ROOT, "tests", "charms", "proc_ops")
PEER_ENV = {
    "JUJU_RELATION": "peer",
    "JUJU_RELATION_ID": "peer:1",
    "JUJU_REMOTE_UNIT": "proc/1",
    "JUJU_REMOTE_APP": "proc",
}


def medians_ms(fns: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Median wall time of each fn; rounds interleave them so load drift hits all alike."""
    for fn in fns.values():
        fn()  # warm caches (pyc, page cache)
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(xs) * 1000 for name, xs in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--client", choices=("bash", "python"), default="bash")
    opts = parser.parse_args()
    os.environ.pop("PROC_TEST_OUT", None)

    with tempfile.TemporaryDirectory() as tmp:
        runtime = ProcessRuntime(CHARM, tmp, prefer_bash=opts.client == "bash")
        ctx = MemContext("proc/0", leader=True, config={"greeting": "hi", "count": 3})
        ctx.unit_bags["proc/1"]["value"] = "7"
        calls: dict[str, int] = {}

        def hook(name: str, env: dict[str, str]) -> Callable[[], None]:
            invocation = HookInvocation(unit="proc/0", kind="hook", name=name, env=env)

            def run() -> None:
                outcome = runtime.run(invocation, ctx)
                assert outcome.exit_code == 0, outcome.stderr
                calls[name] = outcome.tool_calls
                ctx.discard()

            return run

        # One live session so that tool calls from this process can be measured.
        from jujusim.hooktools import ToolSession

        session = ToolSession(ctx, HookInvocation(unit="proc/0", kind="hook", name="x"), {})
        runtime._server.register("bench", session)
        tool_env = dict(os.environ, JUJU_CONTEXT_ID="bench")
        is_leader = [os.path.join(runtime.tools_dir, "is-leader"), "--format=json"]
        rel_get = [os.path.join(runtime.tools_dir, "relation-get"), "--format=json",
                   "-r", "peer:1", "-", "proc/1"]  # fmt: skip
        rel_set = [os.path.join(runtime.tools_dir, "relation-set"), "-r", "peer:1",
                   "--file", "-"]  # fmt: skip

        def tool(argv: list[str], stdin: str | None = None) -> Callable[[], None]:
            def run() -> None:
                subprocess.run(argv, env=tool_env, input=stdin, capture_output=True,
                               text=True, check=True)  # fmt: skip

            return run

        hooks = medians_ms(
            {
                "import": lambda: subprocess.run([sys.executable, "-c", "import ops"], check=True),
                "update-status": hook("update-status", {}),
                "peer-relation-changed": hook("peer-relation-changed", PEER_ENV),
            },
            opts.repeat,
        )
        tools = medians_ms(
            {
                "true": tool(["/bin/true"]),
                "is-leader": tool(is_leader),
                "relation-get": tool(rel_get),
                "relation-set": tool(rel_set, '{"seen": "2"}'),
            },
            opts.repeat * 4,
        )
        runtime.close()

    import_ops, leader_ms = hooks["import"], tools["is-leader"]
    print(f"hook-tool client: {runtime.client_kind}; medians of {opts.repeat} interleaved runs")
    label = "(a) python -c 'import ops'"
    print(f"{label:<40}{import_ops:7.1f} ms")
    for name in ("update-status", "peer-relation-changed"):
        ms, spent = hooks[name], calls[name] * leader_ms
        print(
            f"(b) {name:<36}{ms:7.1f} ms  ratio (b)/(a) {ms / import_ops:4.2f}  "
            f"tool calls {calls[name]:2d} (~{spent:.0f} ms, {spent / import_ops:.0%} of (a); "
            f"without them {(ms - spent) / import_ops:4.2f})"
        )
    print(f"(c) /bin/true via subprocess.run          {tools['true']:7.2f} ms  (process floor)")
    print(f"(c) is-leader --format=json               {leader_ms:7.2f} ms")
    print(f"(c) relation-get --format=json -r .. - u  {tools['relation-get']:7.2f} ms")
    print(f"(c) relation-set -r .. --file - (stdin)   {tools['relation-set']:7.2f} ms")


if __name__ == "__main__":
    main()
