"""Matplotlib figures, one function per kind of picture.

Each function returns its ``Figure``, accepts an optional ``ax`` to draw into,
and has sensible defaults.  matplotlib is imported only when a plot is made.
"""

from .trajectories import state_trajectories

__all__ = ["state_trajectories"]
