"""Import time the library adds on top of `import ops`, measured side by side in one run.

Each sample is a fresh interpreter; the variants are interleaved so machine noise hits
them alike. Prints the median wall time of each and the difference to plain `import ops`.
Goal: charm_coordinator adds at most 15 ms.

    python benchmarks/import_cost.py [--runs 30]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import time

VARIANTS = {
    "python -c pass": "pass",
    "import ops": "import ops",
    "import ops + charm_coordinator": "import ops; from charm_coordinator import Coordinator",
    "charm_coordinator.classic (no ops)": "import charm_coordinator.classic",
    "import ops + charmlibs.rollingops": "import ops; import charmlibs.rollingops",
    "charmhelpers.core.hookenv": "import charmhelpers.core.hookenv",
    "charmhelpers.coordinator": "import charmhelpers.coordinator",
}


def available(code: str) -> bool:
    for name in ("charmlibs.rollingops", "charmhelpers", "charm_coordinator.classic"):
        if name in code:
            try:
                if importlib.util.find_spec(name) is None:
                    return False
            except ModuleNotFoundError:
                return False
    return True


# Juju's hooks write bytecode caches; measure that steady state, not recompilation.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def sample(code: str) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code],
        check=True,
        env=ENV,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    variants = {k: v for k, v in VARIANTS.items() if available(v)}
    for code in variants.values():  # warm the page cache and .pyc files
        sample(code)
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(args.runs):
        for name, code in variants.items():
            times[name].append(sample(code))
    base = statistics.median(times["import ops"])
    print(f"{'variant':40} {'median ms':>10} {'vs import ops':>14}")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"{name:40} {med * 1000:10.1f} {(med - base) * 1000:+13.1f}")
    added = statistics.median(times["import ops + charm_coordinator"]) - base
    print(f"\nwhole process: charm_coordinator adds {added * 1000:+.1f} ms to `import ops`")
    # The difference of two ~230 ms medians is noisy; time the import itself as well.
    probe = (
        "import ops, time; t = time.perf_counter(); from charm_coordinator import Coordinator; "
        "print(time.perf_counter() - t)"
    )
    inner = []
    for _ in range(args.runs):
        out = subprocess.run(
            [sys.executable, "-c", probe], check=True, env=ENV, capture_output=True, text=True
        )
        inner.append(float(out.stdout))
    print(
        f"in process: `from charm_coordinator import Coordinator` after `import ops` takes "
        f"{statistics.median(inner) * 1000:.1f} ms median (goal: <= 15 ms)"
    )


if __name__ == "__main__":
    main()
