"""Mitogen's free strategy from the pinned mitogen package; ansible.cfg names this directory.

A file here rather than a path into the venv's site-packages, which changes with the Python
version (docs/decisions.md, "Mitogen runs the plays").
"""

from ansible_mitogen.plugins.strategy.mitogen_free import StrategyModule

__all__ = ["StrategyModule"]
