"""Dynamics and gradient analysis of recurrent cells.

Every analysis sees a cell as a map on its *joint state* s (h, or [h, c] for
LSTM, every cell's states for a stack), ``s' = F(x, s)``.  See docs/analysis.md
for a guide with timings.

=============================  ==================================================
step Jacobians                 :func:`step_jacobians`, :func:`state_jacobian`,
                               :func:`input_jacobian`
Jacobian products over a lag   :func:`trajectory_jacobians`, :func:`jacobian_products`
recurrent eigenvalues          :func:`recurrent_eigenvalues`
gradient flow (BPTT tape)      :func:`gradient_norms`, :func:`gradient_map`
fixed and slow points          :func:`find_fixed_points`, :class:`FixedPoints`
Lyapunov spectrum              :func:`lyapunov_spectrum`, :func:`kaplan_yorke_dimension`
RTRL                           :func:`rtrl`
PCA of trajectories            :func:`pca`, :class:`PCA`
trajectories and states        :func:`trajectory`, :func:`split_state`, :func:`join_states`
=============================  ==================================================
"""

from .fixed_points import FixedPoints, find_fixed_points, minimize_speed, sample_starts
from .gradient_flow import gradient_map, gradient_norms
from .jacobians import (JacobianProducts, StepJacobians, input_jacobian, jacobian_products, recurrent_eigenvalues,
                        state_jacobian, step_jacobians, trajectory_jacobians)
from .lyapunov import kaplan_yorke_dimension, lyapunov_spectrum
from .pca import PCA, pca
from .rtrl import rtrl
from .states import join_states, joint_size, split_state, step, trajectory

__all__ = [
    "FixedPoints", "find_fixed_points", "minimize_speed", "sample_starts",
    "gradient_map", "gradient_norms",
    "JacobianProducts", "StepJacobians", "input_jacobian", "jacobian_products", "recurrent_eigenvalues",
    "state_jacobian", "step_jacobians", "trajectory_jacobians",
    "kaplan_yorke_dimension", "lyapunov_spectrum",
    "PCA", "pca",
    "rtrl",
    "join_states", "joint_size", "split_state", "step", "trajectory",
]
