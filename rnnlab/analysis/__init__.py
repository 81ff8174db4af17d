"""Dynamics and gradient analysis of recurrent cells.

Every analysis sees a cell as a map on its *joint state* s (h, or [h, c] for
LSTM, every cell's states for a stack), ``s' = F(x, s)``.  See docs/analysis.md
for a guide with timings.

=============================  ==================================================
step Jacobians                 `step_jacobians`, `state_jacobian`,
                               `input_jacobian`
Jacobian products over a lag   `trajectory_jacobians`, `jacobian_products`
recurrent eigenvalues          `recurrent_eigenvalues`
gradient flow (BPTT tape)      `gradient_norms`, `gradient_map`
fixed and slow points          `find_fixed_points`, `FixedPoints`
Lyapunov spectrum              `lyapunov_spectrum`, `kaplan_yorke_dimension`
RTRL                           `rtrl`
PCA of trajectories            `pca`, `PCA`
trajectories and states        `trajectory`, `split_state`, `join_states`
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
