"""Matplotlib figures, one function per kind of picture.

Each function returns its ``Figure``, accepts an optional ``ax`` to draw into,
and has sensible defaults.  Figures are built with ``matplotlib.figure.Figure``
(never pyplot), so they work headless: save one with ``fig.savefig("x.png")``.
matplotlib is imported only when a plot is made.

==========================  ====================================================
state_trajectories          each unit against time
pca_trajectories            trajectories on 2 or 3 principal components
phase_portrait              vector field and nullclines of a 2-number state
gate_activations            GRU/LSTM gates over time, from ``tape.gates``
gradient_heatmap            |dL/dh_t| as a time x unit map, with colorbar
gradient_norm_vs_lag        gradient or Jacobian-product norm against lag, log scale
eigenvalues                 eigenvalues with the unit circle
fixed_points                fixed points by stability, with unstable modes
lyapunov_spectrum           Lyapunov exponents and the Kaplan-Yorke dimension
exponent_vs_gain            a population's exponent against gain, spread over seeds
fixed_point_counts          stable and unstable fixed points by cell type
memory_topologies           which memories each trained network holds
==========================  ====================================================
"""

from .dynamics import eigenvalues, fixed_points, lyapunov_spectrum, pca_trajectories, phase_portrait
from .gradients import gate_activations, gradient_heatmap, gradient_norm_vs_lag
from .populations import exponent_vs_gain, fixed_point_counts, memory_topologies
from .trajectories import state_trajectories

__all__ = [
    "state_trajectories", "pca_trajectories", "phase_portrait", "gate_activations", "gradient_heatmap",
    "gradient_norm_vs_lag", "eigenvalues", "fixed_points", "lyapunov_spectrum",
    "exponent_vs_gain", "fixed_point_counts", "memory_topologies",
]
