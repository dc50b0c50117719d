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


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm caches (pyc, page cache)
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


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

        import_ops = median_ms(
            lambda: subprocess.run([sys.executable, "-c", "import ops"], check=True),
            opts.repeat,
        )
        update_status = median_ms(hook("update-status", {}), opts.repeat)
        peer_changed = median_ms(hook("peer-relation-changed", PEER_ENV), opts.repeat)
        true_ms = median_ms(tool(["/bin/true"]), opts.repeat * 4)
        leader_ms = median_ms(tool(is_leader), opts.repeat * 4)
        get_ms = median_ms(tool(rel_get), opts.repeat * 4)
        set_ms = median_ms(tool(rel_set, '{"seen": "2"}'), opts.repeat * 4)
        runtime.close()

    print(f"hook-tool client: {runtime.client_kind}; median of {opts.repeat} runs")
    print(f"(a) python -c 'import ops'              {import_ops:7.1f} ms")
    for name, ms in (("update-status", update_status), ("peer-relation-changed", peer_changed)):
        tools = calls[name] * leader_ms
        print(
            f"(b) {name:<36}{ms:7.1f} ms  ratio (b)/(a) {ms / import_ops:4.2f}  "
            f"tool calls {calls[name]:2d} (~{tools:.0f} ms, {tools / import_ops:.0%} of (a))"
        )
    print(f"(c) /bin/true via subprocess.run          {true_ms:7.2f} ms  (process floor)")
    print(f"(c) is-leader --format=json               {leader_ms:7.2f} ms")
    print(f"(c) relation-get --format=json -r .. - u  {get_ms:7.2f} ms")
    print(f"(c) relation-set -r .. --file - (stdin)   {set_ms:7.2f} ms")


if __name__ == "__main__":
    main()
