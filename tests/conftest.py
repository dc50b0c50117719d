"""Shared test set-up: the demo charm's code is importable as `charm`."""

from __future__ import annotations

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
for path in (ROOT / "charm", ROOT / "lib"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
