"""The data that passes between layers, backends and BPTT, and the one rule for truncated sweeps.

Data flows one way:

```text
    inputs -> RNN layer -> SequenceRun -> backend -> (outputs, final states, Record)
           -> Tape -> backend backward -> Gradients
```

* `SequenceRun`: one checked call, time first, ready for a backend.
* `Record`: what a backend keeps of a forward pass for its own
  backward; every backend's record follows this protocol.
* `Tape`: a forward pass as BPTT and a learner see it.
* `Gradients`: what a backward pass returns.
* `truncation_windows` and `truncated_sweeps`: which steps each
  backward sweep walks, for full and truncated BPTT.

This module imports nothing from rnnlab, so every other module may import it.
"""

from typing import Protocol

import numpy as np


class SequenceRun:
    """One checked call, ready for a backend.

    Attributes:
        inputs: (T, B, F) in processing order (already reversed for ``go_backwards``).
        initial_states: flat list of (B, size) arrays ((B, *dims) for a TensorShape leaf).
        mask: (T, B) bool in processing order, or None.
        constants: list of (B, ...) arrays the cell sees at every step, or None.
        backend: the backend chosen for the call (``"python"``, ``"numba"``, ``"cuda"``), or None
            to let `rnnlab.backends.run` choose.
        dropout: the call's `DropoutMasks`, or None (no dropout: ``training`` not True, or rates 0).
    """

    def __init__(self, inputs, initial_states, mask, constants=None, backend=None, dropout=None):
        self.inputs = inputs
        self.initial_states = initial_states
        self.mask = mask
        self.constants = constants
        self.backend = backend
        self.dropout = dropout


class DropoutMasks:
    """The dropout masks of one layer call, the same at every step (tf.keras 2's default).

    Attributes:
        inputs: (B, F) or None.  It multiplies the inputs x_t before the kernel
            product x_t K, at every step.
        recurrent: (B, U) or None.  It multiplies the previous output h_{t-1} before the
            recurrent product h_{t-1} R, at every step (tf.keras 2 then runs
            ``implementation=1``, whose per-gate masks are all this one here).

    Entries are 0 (dropped) or 1 / (1 - rate) (kept).  A `Tape` keeps them, so BPTT is exact.
    """

    def __init__(self, inputs=None, recurrent=None):
        self.inputs, self.recurrent = inputs, recurrent

    def __repr__(self):
        shape = lambda m: None if m is None else m.shape
        return f"DropoutMasks(inputs={shape(self.inputs)}, recurrent={shape(self.recurrent)})"


def input_dropout(x, dropout):
    """x (T, B, F) times the input dropout mask (B, F) at every step, or x itself without one.

    For the kernel backends' hosts: a built-in cell sees its inputs only through
    x K, so masking x before the projection is exactly the cell's ``(x * m_x) @ K``,
    and the same product maps the gradient of the masked inputs back to the
    inputs'.  The recurrent mask acts inside the loops (every backend's kernels take it).
    """
    return x if dropout is None or dropout.inputs is None else x * dropout.inputs


class Record(Protocol):
    """What a backend's ``scan(..., record=True)`` keeps for its ``backward``.

    Each backend stores what its backward needs in its own way (the python
    loop keeps each step's cell cache, the numba host one array per state and
    gate); all of them can show the states and the gates.
    """

    def stacked_states(self) -> list:
        """Flat list of (T, B, size) ((T, B, *dims) for a TensorShape leaf): the states after every step."""

    def gates(self, cell):
        """``{name: (T, B, U)}`` for ``cell.gate_names`` (a list of such dicts for stacked cells)."""


class Tape:
    """Everything ``backward`` needs from one ``forward``, and what a learner wants to see.

    Attributes:
        layer: the ``RNN`` layer that ran.
        inputs: (T, B, F) inputs in processing order.
        mask: (T, B) bool in processing order, or None.
        outputs: (T, B, O) outputs in processing order.
        initial_states: flat list of (B, size) ((B, *dims) for a TensorShape leaf).
        final_states: flat list of (B, size), like ``initial_states``.
        record: the backend's `Record`.
        backend: the name of the backend that ran ("python", "numba", "cuda").
        dropout: the call's `DropoutMasks`, or None.
    """

    def __init__(self, layer, sequence_run, outputs, final_states, record, backend):
        self.layer = layer
        self.inputs = sequence_run.inputs
        self.mask = sequence_run.mask
        self.initial_states = sequence_run.initial_states
        self.constants = sequence_run.constants
        self.dropout = sequence_run.dropout
        self.outputs = outputs
        self.final_states = final_states
        self.record = record
        self.backend = backend

    @property
    def cell(self):
        return self.layer.cell

    @property
    def time_steps(self):
        return self.inputs.shape[0]

    @property
    def states(self):
        """The states after every step: a flat list of (T, B, size) arrays (LSTM: [h, c]; (T, B, *dims) for a
        TensorShape leaf)."""
        return self.record.stacked_states()

    @property
    def gates(self):
        """Gate activations over time: ``{name: (T, B, U)}``, e.g. i, f, g (= c~), o for LSTM.

        For ``StackedRNNCells`` a list with one such dict per cell.
        """
        return self.record.gates(self.cell)

    def __repr__(self):
        T, B, F = self.inputs.shape
        return f"Tape({type(self.cell).__name__}, T={T}, B={B}, F={F}, backend={self.backend!r})"


class BidirectionalTape:
    """The two tapes of a ``Bidirectional`` layer, plus each direction's result before the merge."""

    def __init__(self, layer, forward_tape, backward_tape, forward_result, backward_result):
        self.layer = layer
        self.forward = forward_tape
        self.backward = backward_tape
        self.forward_result = forward_result
        self.backward_result = backward_result

    def __repr__(self):
        return f"BidirectionalTape({self.forward!r}, {self.backward!r})"


class Gradients:
    """The result of a backward pass.

    Attributes:
        weights: list aligned with ``layer.get_weights()``.
        inputs: dL/dx, shaped like the layer's input x.
        initial_state: flat list aligned with the initial states.
        state_grads: flat list of (T, B, size) (or (T, B, *dims)): dL/ds_t for the state after each
            step t (processing order), all paths included; for the built-in cells
            leaf 0 is dL/dh_t and, for LSTM, leaf 1 is dL/dc_t.  For
            ``StackedRNNCells`` the lower cells' leaves count the path through
            their own next step only, not the path up through the cell above.
        weights_per_step: with ``per_step=True``, a list aligned with ``weights`` of
            (T, *shape) arrays: each step's contribution.  They sum to ``weights``.
        constants: dL/dc for each of the call's ``constants`` (summed over every
            step that saw them), or None for a call without constants.
    """

    def __init__(self, weights, inputs, initial_state, state_grads=None, weights_per_step=None, constants=None):
        self.weights = weights
        self.inputs = inputs
        self.initial_state = initial_state
        self.state_grads = state_grads
        self.weights_per_step = weights_per_step
        self.constants = constants

    def global_norm(self):
        """sqrt of the sum of squares of every weight gradient."""
        return float(np.sqrt(sum(float(np.sum(g * g)) for g in self.weights)))

    def __repr__(self):
        shapes = [g.shape for g in self.weights]
        return f"Gradients(weights={shapes}, inputs={self.inputs.shape}, norm={self.global_norm():.3g})"


def truncation_windows(steps, truncate):
    """The backward sweeps of BPTT over ``steps`` steps: a list of ``(last, first)`` step pairs.

    Full BPTT (``truncate`` None or >= steps) is one sweep from the last step
    to the first.  ``truncate=k`` is one short sweep per output step s, from s
    down to s-k+1: the output at step s reaches only its k latest steps, and
    the state entering step s-k+1 is a constant for it.
    """
    if truncate is None or truncate >= steps:
        return [(steps - 1, 0)]
    return [(origin, max(0, origin - truncate + 1)) for origin in range(steps)]


def truncated_sweeps(d_outputs, truncate, sweep, zeros_like=np.zeros_like):
    """Run ``sweep(d_out, last, first, with_final)`` for each window of `truncation_windows`.

    d_outputs: (T, B, O), the gradient on every output.  A truncated sweep
    sees the gradient of its own output step only (``d_out`` is zero
    elsewhere), and only the sweep from the last step carries the gradient of
    the final states (``with_final``).  The caller's ``sweep`` adds up.
    ``zeros_like`` makes the buffer of that one output's gradient (the numba
    host passes its memory pool's).
    """
    windows = truncation_windows(len(d_outputs), truncate)
    if len(windows) == 1:
        last, first = windows[0]
        sweep(d_outputs, last, first, True)
        return
    only_origin = zeros_like(d_outputs)
    for last, first in windows:
        only_origin[last] = d_outputs[last]
        sweep(only_origin, last, first, last == len(d_outputs) - 1)
        only_origin[last] = 0
