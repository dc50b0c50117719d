"""jujusim: a multi-unit Juju model simulator that runs real charms.

The model (:mod:`jujusim.model`), each unit's agent (:mod:`jujusim.agent`) and the
discrete-event engine (:mod:`jujusim.engine`) reproduce Juju's hook semantics in
logical time; runtimes (:mod:`jujusim.inprocess`, ``jujusim.process``) execute the
charm code for one hook against a :class:`jujusim.context.HookContext`.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
