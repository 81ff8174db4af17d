"""Step Jacobians of the built-in cells, written out from their equations.

For one step ``s' = F(x, s)`` on the joint state (see `.states`):

```text
    state   J  = ds'/ds   (B, S, S)     J[b, k, l] = d s'_k / d s_l
    input   Jx = ds'/dx   (B, S, F)
    weights    = ds'/dW   (B, S, *W.shape) for each weight W, in get_weights() order
```

Every cell computes pre-activations that are linear in its weights, such as
``a = x K + h R + b``.  So each rule first finds G = ds'/da, the derivative of
the new state with respect to those pre-activations, and the rest follows by
the chain rule:

```text
    ds'/dx = G K^T     ds'/dh = (direct terms) + G R^T
    ds'_k/dK_ij = x_i G_kj     ds'_k/dR_ij = h_i G_kj     ds'/db = G
```

A cell without a hand-written rule (a custom cell) gets its Jacobians from
its own ``backward`` (see `_from_backward`), when it has one.

The tests check every formula here against central finite differences.
"""

import numpy as np

from .. import nest, validation
from ..cells import registry
from ..cells.stacked import StackedRNNCells
from .states import as_float64, join_states, joint_size, output_rows, split_state


class StepJacobians:
    """The result of `step_jacobians`.

    Attributes:
        new_state: s' (B, S).
        state: ds'/ds (B, S, S).
        input: ds'/dx (B, S, F).
        weights: list aligned with ``cell.get_weights()`` of (B, S, *W.shape), or
            None unless asked for.
    """

    def __init__(self, new_state, state, input, weights=None):
        self.new_state = new_state
        self.state = state
        self.input = input
        self.weights = weights

    def _unbatched(self):
        weights = None if self.weights is None else [w[0] for w in self.weights]
        return StepJacobians(self.new_state[0], self.state[0], self.input[0], weights)


def step_jacobians(cell, x, s, weights=False):
    """Jacobians of one step ``s' = F(x, s)`` at the point (x, s).

    cell: a built cell whose room has a Jacobian rule (every built-in cell:
    ``cells/<room>/jacobian.py``), a cell with a ``backward`` (the Jacobians
    then come from it), or StackedRNNCells of those.  x: (B, F) or (F,); s: the
    joint state (B, S) or (S,), a TensorShape leaf flattened (see `.states`).
    ``weights=True`` also returns ds'/dW for every weight (used by
    `rnnlab.analysis.rtrl`).  Returns
    `StepJacobians` (without the batch axis when x and s had none).
    """
    if not cell.built:
        raise ValueError(f"{cell.name} is not built yet; build it (or run it once) before taking Jacobians")
    F, S = cell.input_size, joint_size(cell)
    x = validation.shaped(x, "inputs", ("batch", F), (F,), dtype=cell.dtype)
    s = validation.shaped(s, "the joint state", ("batch", S), (S,), dtype=cell.dtype)
    single = x.ndim == 1 and s.ndim == 1
    x, s = np.atleast_2d(x), np.atleast_2d(s)
    if len(x) != len(s) and 1 not in (len(x), len(s)):
        raise ValueError(f"inputs and states must have the same batch size (or 1), got {len(x)} and {len(s)}")
    batch = max(len(x), len(s))  # a single input or state is shared by the whole batch
    x, s = np.broadcast_to(x, (batch, x.shape[1])), np.broadcast_to(s, (batch, s.shape[1]))
    result = _jacobians(cell, x, s, weights)
    return result._unbatched() if single else result


def state_jacobian(cell, x, s):
    """ds'/ds: (B, S, S) for s (B, S), or (S, S) for s (S,).  See `step_jacobians`."""
    return step_jacobians(cell, x, s).state


def input_jacobian(cell, x, s):
    """ds'/dx: (B, S, F) for x (B, F), or (S, F) for x (F,).  See `step_jacobians`."""
    return step_jacobians(cell, x, s).input


def _jacobians(cell, x, s, weights):
    if isinstance(cell, StackedRNNCells):
        return _stacked(cell, x, s, weights)
    rule = registry.room_module(cell, "jacobian")  # the rule sits in the cell's room: cells/<room>/jacobian.py
    if rule is not None:
        return rule.step_jacobians(cell, x, s, weights)
    if cell.has_backward and not cell.takes_constants:
        return _from_backward(cell, x, s, weights)
    raise TypeError(f"no hand-written Jacobian for {type(cell).__name__}, and no backward (without constants) "
                    f"to derive one from; supported cells: {', '.join(sorted(registry.short_names()))}, "
                    "cells with a backward, and StackedRNNCells of them")


def _from_backward(cell, x, s, weights):
    """The Jacobians of a cell without a rule, read off its ``backward``: one vector-Jacobian product per row.

    Seeding ``backward`` with d s' = e_k (and a zero output gradient) returns row k
    of ds'/ds, ds'/dx and ds'/dW.  The B*S seeds (sample b, coordinate k) run as one
    batch of B*S rows; ds'/dW takes one backward per row, since ``backward`` sums its
    weight gradients over the batch.
    """
    B, S = s.shape
    rows = np.repeat(np.arange(B), S)  # row b*S + k: sample b, seeding coordinate k
    xs, ss = x[rows], s[rows]
    seeds = np.tile(np.eye(S, dtype=s.dtype), (B, 1))  # (B*S, S)
    new_states, d_x, d_states, _ = _seeded_backward(cell, xs, ss, seeds)
    new_state = join_states(nest.flatten(new_states), cell)[::S]  # (B, S): every sample's first row
    state = join_states(nest.flatten(d_states), cell).reshape(B, S, S)
    w = None
    if weights:
        per_row = [_seeded_backward(cell, xs[r : r + 1], ss[r : r + 1], seeds[r : r + 1])[3] for r in range(B * S)]
        w = [np.stack([row[n] for row in per_row]).reshape((B, S) + weight.shape)
             for n, weight in enumerate(cell.weights)]
    return StepJacobians(new_state, state, d_x.reshape(B, S, x.shape[1]), w)


def _seeded_backward(cell, x, s, seeds):
    """``cell.forward`` at (x (N, F), joint s (N, S)), then ``cell.backward`` with d s' = seeds (N, S), d output 0.

    Returns ``(new_states, d_x, d_states, d_weights)``.
    """
    output, new_states, cache = cell.forward(x, cell.pack_states(split_state(cell, s)))
    d_x, d_states, d_weights = cell.backward(cache, np.zeros_like(output), cell.pack_states(split_state(cell, seeds)))
    return new_states, d_x, d_states, d_weights


# -- helpers for the rules in the cell rooms ---------------------------------------


def diag(v):
    """(B, n) -> (B, n, n) with v on each diagonal."""
    return v[:, :, None] * np.eye(v.shape[1], dtype=v.dtype)


def scaled_blocks(d_blocks, W):
    """sum over blocks of diag(d_k) W_k^T, where W = [W_1 | W_2 | ...] is split into equal column blocks.

    This is G W^T for the block-diagonal G = [diag(d_1) | diag(d_2) | ...],
    computed as row scalings (d_k[:, :, None] * W_k^T) with no matrix product:
    O(S^2) per sample instead of O(S^3).  Returns (B, U, rows of W).
    """
    return sum(d[:, :, None] * W_k.T for d, W_k in zip(d_blocks, np.split(W, len(d_blocks), axis=1)))


def outer(v, G):
    """d s'_k / d W_ij = v_i G_kj for a product ``v @ W``: (B, I) and (B, S, J) -> (B, S, I, J)."""
    return np.einsum("bi,bkj->bkij", v, G)


def product_weights(inputs, G, bias):
    """ds'/dK, ds'/dR (and ds'/db when ``bias``) for a = inputs[0] K + inputs[1] R (+ b) with G = ds'/da."""
    return [outer(inputs[0], G), outer(inputs[1], G)] + ([G] if bias else [])


# -- StackedRNNCells -------------------------------------------------------------------


def _stacked(cell, x, s, weights):
    """Cell k's input is cell k-1's new output y_{k-1}, so by the chain rule:

    ```text
        ds_k'/ds   = Jx_k  dy_{k-1}/ds + [J_k in cell k's own columns]
        ds_k'/dx   = Jx_k  dy_{k-1}/dx          (dy_0/dx = I: the input itself)
        ds_k'/dW_j = Jx_k  dy_{k-1}/dW_j  for an earlier cell j, its own Jacobian for j = k
    ```
    """
    B, S = s.shape
    sizes = [joint_size(c) for c in cell.cells]
    starts = np.cumsum([0] + sizes)
    n_weights = [len(c.weights) for c in cell.cells]
    rows_state, rows_input, rows_weights = [], [], []
    d_prev_state = np.zeros((B, x.shape[1], S))  # d y_{k-1} / ds: the stack's input does not depend on s
    d_prev_input = np.broadcast_to(np.eye(x.shape[1]), (B, x.shape[1], x.shape[1]))
    d_prev_weights = [np.zeros((B, x.shape[1]) + w.shape) for w in cell.weights]
    inputs, new_states = x, []
    for k, inner in enumerate(cell.cells):
        jac = _jacobians(inner, inputs, s[:, starts[k] : starts[k + 1]], weights)
        state = jac.input @ d_prev_state  # through the input ...
        state[:, :, starts[k] : starts[k + 1]] += jac.state  # ... and through the cell's own state
        rows_state.append(state)
        rows_input.append(jac.input @ d_prev_input)
        out = output_rows(inner)
        d_prev_state, d_prev_input = state[:, out], rows_input[-1][:, out]
        if weights:
            w_rows = [np.einsum("bkf,bf...->bk...", jac.input, d) for d in d_prev_weights]
            own = sum(n_weights[:k])
            for n, w in enumerate(jac.weights):
                w_rows[own + n] += w
            rows_weights.append(w_rows)
            d_prev_weights = [w[:, out] for w in w_rows]
        new_states.append(jac.new_state)
        inputs = jac.new_state[:, out]
    w = None
    if weights:
        w = [np.concatenate([rows[n] for rows in rows_weights], axis=1) for n in range(sum(n_weights))]
    return StepJacobians(join_states(new_states), np.concatenate(rows_state, axis=1),
                         np.concatenate(rows_input, axis=1), w)



# -- along a trajectory ------------------------------------------------------------------


def trajectory_jacobians(cell, x, initial_state=None):
    """Step Jacobians J_t = ds_t/ds_{t-1} along the trajectory driven by x.

    x: (B, T, F); initial_state: joint (B, S), default zeros (s_{-1}).  Computed in float64.
    Returns ``(states, jacobians)``: states (B, T, S) with s_t after step t,
    and jacobians (B, T, S, S) with J_t evaluated at (x_t, s_{t-1}).
    """
    cell = as_float64(cell)
    x = validation.shaped(x, "inputs", ("batch", "time", cell.input_size if cell.built else "features"))
    B, T, _ = x.shape
    S = joint_size(cell)
    s = np.zeros((B, S)) if initial_state is None else validation.shaped(initial_state, "initial_state", (B, S))
    states, jacobians = [], []
    for t in range(T):
        jac = step_jacobians(cell, x[:, t], s)
        s = jac.new_state
        states.append(s)
        jacobians.append(jac.state)
    return np.stack(states, axis=1), np.stack(jacobians, axis=1)


class JacobianProducts:
    """ds_T/ds_{T-k} for lags k = 0..T, from `jacobian_products`.

    Attributes:
        lags: (T+1,) the lags k = 0, 1, ..., T.
        singular_values: (B, T+1, S), descending, of ds_T/ds_{T-k}.
        norms: (B, T+1) the spectral norms ||ds_T/ds_{T-k}||_2 (largest singular value).

    Lag k = T reaches the initial state s_{-1}; lag 0 is the identity.
    """

    def __init__(self, singular_values):
        self.singular_values = singular_values
        self.norms = singular_values[..., 0]
        self.lags = np.arange(singular_values.shape[1])


def jacobian_products(jacobians):
    """Singular values of the products P_k = ds_T/ds_{T-k} = J_T J_{T-1} ... J_{T-k+1}.

    jacobians: (B, T, S, S) from `trajectory_jacobians` (or (T, S, S)).
    Growing singular values mean exploding gradients through that many steps,
    shrinking ones vanishing gradients.  Returns `JacobianProducts`.
    """
    jacobians = validation.shaped(jacobians, "jacobians", ("batch", "time", "S", "S"), ("time", "S", "S"))
    if jacobians.ndim == 3:
        jacobians = jacobians[None]
    B, T, S, S_columns = jacobians.shape
    if S != S_columns:
        raise ValueError(f"expected square step Jacobians (..., S, S), got shape {jacobians.shape}")
    product = np.broadcast_to(np.eye(S), (B, S, S))
    values = [np.ones((B, S))]
    for k in range(1, T + 1):
        product = product @ jacobians[:, T - k]  # multiply on the right: one step further back
        values.append(np.linalg.svd(product, compute_uv=False))
    return JacobianProducts(np.stack(values, axis=1))


# -- eigenvalues of the recurrent matrices --------------------------------------------------


def recurrent_eigenvalues(cell):
    """Eigenvalues of each square block of the recurrent kernel R.

    Returns ``{block: eigenvalues}``: ``{"h": ...}`` for SimpleRNN and MinimalRNN,
    ``{"z", "r", "h"}`` for GRU, ``{"i", "f", "c", "o"}`` for LSTM (Keras gate
    order), and ``"cells[k].<block>"`` keys for StackedRNNCells.  For a linear
    cell h' = x K + h R these are exactly the eigenvalues of the step Jacobian
    R^T: inside the unit circle the state forgets, outside it explodes.
    """
    if isinstance(cell, StackedRNNCells):
        return {f"cells[{k}].{name}": eig for k, inner in enumerate(cell.cells)
                for name, eig in recurrent_eigenvalues(inner).items()}
    declaration = registry.declaration_for(cell)
    if declaration is None or declaration.recurrent_blocks is None:
        raise TypeError(f"recurrent_eigenvalues needs a cell whose recurrent weight is square blocks "
                        f"(declared in rnnlab.cells), got {type(cell).__name__}")
    if not cell.built:
        raise ValueError(f"{cell.name} is not built yet; build it before asking for its eigenvalues")
    weight_name, names = declaration.recurrent_blocks
    blocks = np.split(getattr(cell, weight_name), len(names), axis=1)
    return {name: np.linalg.eigvals(block) for name, block in zip(names, blocks)}
