"""Build the benchmark charms as charmcraft would lay them out, without vendoring.

``charmcraft pack`` installs a charm's Python dependencies into
``<charm>/venv/lib/pythonX.Y/site-packages``; charmlibs-rollingops relies on that path (it
starts its worker from there). Here the charm source is copied and that directory is a
symlink to the running interpreter's site-packages, where the packages are installed.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig

HERE = os.path.dirname(os.path.abspath(__file__))

CHARMS = {
    "charm_coordinator": "coordinator-ops",
    "charm_coordinator.classic": "coordinator-classic",
    "charmhelpers": "charmhelpers-serial",
    "rollingops": "rollingops",
}
"""Implementation name -> charm directory under benchmarks/charms/."""


def build(impl: str, dest_root: str) -> str:
    """Copy the charm for ``impl`` under ``dest_root`` with its venv layout; return it."""
    src = os.path.join(HERE, CHARMS[impl])
    dest = os.path.join(dest_root, CHARMS[impl])
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(src, dest, symlinks=True)
    venv_lib = os.path.join(
        dest, "venv", "lib", f"python{sys.version_info[0]}.{sys.version_info[1]}"
    )
    os.makedirs(venv_lib, exist_ok=True)
    os.symlink(sysconfig.get_paths()["purelib"], os.path.join(venv_lib, "site-packages"))
    return dest
