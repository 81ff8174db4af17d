"""MinimalRNNCell: its step Jacobians, written out from the equations in ``cell.py``.

See `rnnlab.analysis.jacobians` for what a rule returns and for the
helpers; the tests check every formula against central finite differences.
"""

import numpy as np

from ...analysis.jacobians import StepJacobians, diag, product_weights, scaled_blocks


def step_jacobians(cell, x, h, weights):
    """h' = x K + h R, so J = R^T and Jx = K^T everywhere: a linear map."""
    K, R = cell.kernel, cell.recurrent_kernel
    ones = np.ones_like(h)
    w = product_weights([x, h], diag(ones), False) if weights else None
    return StepJacobians(x @ K + h @ R, scaled_blocks([ones], R), scaled_blocks([ones], K), w)
