"""``python -m jujusim``."""

from __future__ import annotations

import sys

from jujusim.cli import main

sys.exit(main())
