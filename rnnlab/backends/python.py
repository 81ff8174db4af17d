"""``backend="python"``: the readable loop, one ``cell`` step per timestep, and its BPTT.

This is the specification every other backend is checked against, and it runs
any cell: ``cell.call`` forward, and for BPTT ``cell.forward`` (which keeps a
cache per step) and ``cell.backward`` (see `rnnlab.bptt` for the protocol).
"""

import numpy as np

from .. import nest, validation
from ..types import Gradients, truncated_sweeps


def unsupported(cell):
    return None  # the readable loop runs every cell


def scan(layer, sequence_run, record=False):
    """Run ``layer.cell`` step by step with Keras masking: ``(outputs (T, B, O), final_states[, record])``.

    At a masked step every state carries over unchanged, and the output repeats
    the previous output (zeros before the first step), or is zeros with
    ``zero_output_for_mask``.  A TensorShape output is (T, B, *dims), and the
    states are (B, *dims) for a TensorShape leaf.
    """
    cell = layer.cell
    x, mask = sequence_run.inputs, sequence_run.mask  # (T, B, F), (T, B) or None
    states = sequence_run.initial_states
    outputs = np.zeros((x.shape[0], x.shape[1], *nest.leaf_shape(cell.output_size)), dtype=x.dtype)  # (T, B, O)
    record = PythonRecord() if record else None
    previous_output = outputs[0]
    extra = {} if sequence_run.constants is None else {"constants": sequence_run.constants}
    if sequence_run.dropout is not None:  # the cell applies the call's dropout masks at every step
        extra["dropout"] = sequence_run.dropout
    for t in range(x.shape[0]):
        packed = cell.pack_states(states)
        if record:
            output, new_states, cache = cell.forward(x[t], packed, **extra)
            record.caches.append(cache)
        else:
            output, new_states = cell.checked_call(x[t], packed, **extra)
        new_states = nest.flatten(new_states)
        if mask is not None:
            keep = mask[t]  # (B,): True where the step is real
            new_states = [np.where(per_sample(keep, new), new, old) for new, old in zip(new_states, states)]
            output = np.where(per_sample(keep, output), output, 0 if layer.zero_output_for_mask else previous_output)
        outputs[t] = output
        previous_output, states = outputs[t], new_states
        if record:
            record.states.append(states)
    if record:
        return outputs, states, record
    return outputs, states


def per_sample(keep, array):
    """The (B,) mask ``keep`` shaped (B, 1, ...) to broadcast over ``array`` (B, ...): one flag per sample."""
    return keep.reshape(keep.shape + (1,) * (array.ndim - 1))


class PythonRecord:
    """The python loop's `Record`: each step's cell cache and flat states after it."""

    def __init__(self):
        self.caches = []
        self.states = []

    def stacked_states(self):
        """Flat list of (T, B, size) (or (T, B, *dims)): the states after every step."""
        return [np.stack(leaf) for leaf in zip(*self.states)]

    def gates(self, cell):
        """``{name: (T, B, U)}`` for ``cell.gate_names`` (a list of such dicts for stacked cells)."""
        return _stacked_gates(cell, self.caches)


def _stacked_gates(cell, caches):
    inner_cells = getattr(cell, "cells", None)
    if inner_cells is not None:  # StackedRNNCells: each step's cache is a list, one per cell
        return [_stacked_gates(inner, [c[k] for c in caches]) for k, inner in enumerate(inner_cells)]
    return {name: np.stack([c[name] for c in caches]) for name in cell.gate_names}


def backward(tape, d_outputs, d_final, truncate, per_step):
    """BPTT through ``cell.backward``: one sweep, or with ``truncate`` one short sweep per output step."""
    total = None

    def sweep(d_out, last, first, with_final):
        nonlocal total
        final = d_final if with_final else [np.zeros_like(d) for d in d_final]
        part = _sweep(tape, d_out, final, last, first, per_step)
        if first > 0:  # the sweep stopped at a constant intermediate state, not at the initial state
            part.initial_state = [np.zeros_like(d) for d in part.initial_state]
        total = part if total is None else _add_gradients(total, part)

    truncated_sweeps(d_outputs, truncate, sweep)
    return total


def _sweep(tape, d_outputs, d_final, last, first, per_step):
    """Walk steps ``last`` down to ``first``; the state before ``first`` gets the carried gradient.

    d_outputs: (T, B, O) (or (T, B, *dims)) gradient on each emitted output; d_final: flat list of
    gradients on the states after step ``last``.
    """
    cell, caches, mask = tape.cell, tape.record.caches, tape.mask
    carries_output = not tape.layer.zero_output_for_mask
    T = tape.time_steps
    d_states = [d.copy() for d in d_final]
    d_carry = np.zeros_like(d_outputs[0])  # gradient on an output that later masked steps repeated
    d_inputs = np.zeros(tape.inputs.shape, d_outputs.dtype)
    state_grads = [np.zeros((T,) + s.shape, d_outputs.dtype) for s in tape.initial_states]
    weight_grads = [np.zeros_like(w) for w in cell.weights]
    # A cell that takes constants returns d_constants too: the constants reach every step.
    d_constants = None if tape.constants is None else [np.zeros(c.shape, d_outputs.dtype) for c in tape.constants]
    steps = [None] * T if per_step else None
    for t in range(last, first - 1, -1):
        d_out = d_outputs[t] + d_carry
        if mask is None:
            d_cell_out, d_new = d_out, d_states
        else:
            keep = mask[t]  # (B,)
            d_cell_out = np.where(per_sample(keep, d_out), d_out, 0)
            d_carry = np.where(per_sample(keep, d_out), 0, d_out) if carries_output else np.zeros_like(d_out)
            d_new = [np.where(per_sample(keep, d), d, 0) for d in d_states]
        _record_state_grads(state_grads, t, d_states, d_cell_out, cell.output_state_index)
        d_inputs[t], d_prev, d_weights, *d_step_constants = cell.backward(caches[t], d_cell_out,
                                                                          cell.pack_states(d_new))
        if d_constants is not None:
            for total, part in zip(d_constants, _constant_gradients(cell, d_step_constants, tape.constants)):
                total += part
        d_prev = nest.flatten(d_prev)
        if mask is not None:  # masked samples pass their state gradient straight through
            d_prev = [p + np.where(per_sample(keep, d), 0, d) for p, d in zip(d_prev, d_states)]
        d_states = d_prev
        for total, part in zip(weight_grads, d_weights):
            total += part
        if per_step:
            steps[t] = d_weights
    weights_per_step = None
    if per_step:
        zeros = [np.zeros_like(w) for w in cell.weights]
        weights_per_step = [np.stack([(steps[t] or zeros)[k] for t in range(T)]) for k in range(len(zeros))]
    return Gradients(weight_grads, d_inputs, d_states, state_grads, weights_per_step, d_constants)


def _constant_gradients(cell, extra, constants):
    """The ``d_constants`` of one backward step, checked: one array per constant, of its shape."""
    if len(extra) != 1 or len(extra[0]) != len(constants):
        raise ValueError(f"{type(cell).__name__}.backward gets constants, so it must return "
                         f"(d_inputs, d_states, d_weights, d_constants) with d_constants a list of "
                         f"{len(constants)} arrays; see docs/custom_cells.md")
    return [validation.gradient(d, f"d_constants[{i}]", c.shape, c.dtype) for i, (d, c) in
            enumerate(zip(extra[0], constants))]


def _record_state_grads(state_grads, t, d_states, d_cell_out, output_index):
    """dL/ds_t: the gradient from later steps, plus the output's when the output is a state."""
    for k, d in enumerate(d_states):
        state_grads[k][t] += d
    if output_index is not None:
        state_grads[output_index][t] += d_cell_out


def _add_gradients(a, b):
    add = lambda xs, ys: [x + y for x, y in zip(xs, ys)]
    per_step = None if a.weights_per_step is None else add(a.weights_per_step, b.weights_per_step)
    constants = None if a.constants is None else add(a.constants, b.constants)
    return Gradients(add(a.weights, b.weights), a.inputs + b.inputs, add(a.initial_state, b.initial_state),
                     add(a.state_grads, b.state_grads), per_step, constants)
