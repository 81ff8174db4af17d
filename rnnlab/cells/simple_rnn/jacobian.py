"""SimpleRNNCell: its step Jacobians, written out from the equations in ``cell.py``.

See `rnnlab.analysis.jacobians` for what a rule returns and for the
helpers; the tests check every formula against central finite differences.
"""

from ...analysis.jacobians import StepJacobians, diag, product_weights, scaled_blocks


def step_jacobians(cell, x, h, weights):
    """h' = act(a), a = x K + h R + b.  With d = act'(a) and G = diag(d) = dh'/da:

    ```text
        J = diag(d) R^T     Jx = diag(d) K^T
    ```
    """
    K, R = cell.kernel, cell.recurrent_kernel
    a = x @ K + h @ R  # (B, U)
    if cell.use_bias:
        a = a + cell.bias
    h_new = cell.activation(a)
    d = cell.activation.grad(a, h_new)
    w = product_weights([x, h], diag(d), cell.use_bias) if weights else None
    return StepJacobians(h_new, scaled_blocks([d], R), scaled_blocks([d], K), w)
