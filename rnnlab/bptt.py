"""Backpropagation through time, written by hand.

``forward`` runs a layer and keeps a :class:`Tape`: the inputs, the states
after every step, each cell's gates and whatever the cells' ``backward``
needs.  ``backward`` walks the tape from the last step to the first, calling
the cell's ``backward`` once per step, and returns :class:`Gradients`.

The backward protocol
---------------------
A cell takes part in BPTT by implementing two methods beside ``call``::

    forward(inputs, states) -> (output, new_states, cache)
    backward(cache, d_output, d_new_states) -> (d_inputs, d_states, d_weights)

``d_output`` is dL/d(output) (B, O); ``d_new_states`` mirrors ``new_states``;
``d_states`` mirrors ``states``; ``d_weights`` is aligned with
``get_weights()``.  Each step's gradient is *local*: the loop adds them up.
See ``docs/custom_cells.md`` for a worked example.

What the layer adds on top of the cell
--------------------------------------
With a mask, a masked step's states carry over and its output repeats the
previous output (or is zero).  So at a masked step the gradient of the new
state flows straight to the old state, and the gradient of the output flows to
the previous output; the cell sees zero gradient for that sample.

Truncation
----------
``backward(tape, dy, truncate=k)`` lets the gradient of the output at step t
reach only steps t, t-1, ..., t-k+1: the state entering step t-k+1 is treated
as a constant for that output.  ``truncated_stream`` runs the Williams & Peng
BPTT(k1, k2) schedule over a long sequence.
"""

import copy

import numpy as np

from . import backends, nest, validation
from .layers import RNN, Bidirectional


class Tape:
    """Everything ``backward`` needs from one ``forward``, and what a learner wants to see.

    Attributes:
        layer: the ``RNN`` layer that ran.
        inputs: (T, B, F) inputs in processing order.
        mask: (T, B) bool in processing order, or None.
        outputs: (T, B, O) outputs in processing order.
        initial_states: flat list of (B, size).
        record: the backend's per-step record (caches and states).
    """

    def __init__(self, layer, sequence_run, outputs, final_states, record, backend):
        self.layer = layer
        self.inputs = sequence_run.inputs
        self.mask = sequence_run.mask
        self.initial_states = sequence_run.initial_states
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
        """The states after every step: a flat list of (T, B, size) arrays (LSTM: [h, c])."""
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
    """The two tapes of a ``Bidirectional`` layer, plus its merged outputs."""

    def __init__(self, layer, forward_tape, backward_tape, forward_result, backward_result):
        self.layer = layer
        self.forward = forward_tape
        self.backward = backward_tape
        self.forward_result = forward_result
        self.backward_result = backward_result

    def __repr__(self):
        return f"BidirectionalTape({self.forward!r}, {self.backward!r})"


class Gradients:
    """The result of :func:`backward`.

    Attributes:
        weights: list aligned with ``layer.get_weights()``.
        inputs: dL/dx, shaped like the layer's input x.
        initial_state: flat list aligned with the initial states.
        state_grads: flat list of (T, B, size): dL/ds_t for the state after each
            step t (processing order), all paths included; for the built-in cells
            leaf 0 is dL/dh_t and, for LSTM, leaf 1 is dL/dc_t.  For
            ``StackedRNNCells`` the lower cells' leaves count the path through
            their own next step only, not the path up through the cell above.
        weights_per_step: with ``per_step=True``, a list aligned with ``weights`` of
            (T, *shape) arrays: each step's contribution.  They sum to ``weights``.
    """

    def __init__(self, weights, inputs, initial_state, state_grads=None, weights_per_step=None):
        self.weights = weights
        self.inputs = inputs
        self.initial_state = initial_state
        self.state_grads = state_grads
        self.weights_per_step = weights_per_step

    def global_norm(self):
        """sqrt of the sum of squares of every weight gradient."""
        return float(np.sqrt(sum(float(np.sum(g * g)) for g in self.weights)))

    def __repr__(self):
        shapes = [g.shape for g in self.weights]
        return f"Gradients(weights={shapes}, inputs={self.inputs.shape}, norm={self.global_norm():.3g})"


# -- forward ---------------------------------------------------------------------


def forward(layer, x, initial_state=None, mask=None):
    """Run ``layer`` like ``layer(x, ...)`` and return ``(y, tape)``.

    ``y`` is exactly what the call returns (a list with ``return_state``).  A
    stateful layer advances its states as a normal call would.
    """
    if isinstance(layer, Bidirectional):
        return _forward_bidirectional(layer, x, initial_state, mask)
    if not isinstance(layer, RNN):
        raise TypeError(f"bptt.forward takes an RNN or Bidirectional layer, got {type(layer).__name__}")
    _require_backward(layer.cell)
    run = layer.prepare(x, initial_state, mask)
    backend = backends.resolve(layer.backend, layer.cell)
    outputs, final_states, record = backends.run(layer, run, record=True)
    y = layer.finish(run, outputs, final_states)
    return y, Tape(layer, run, outputs, final_states, record, backend)


def _forward_bidirectional(layer, x, initial_state, mask):
    forward_state, backward_state = layer.split_initial_state(initial_state)
    for inner in (layer.forward_layer, layer.backward_layer):
        _require_backward(inner.cell)
    runs = [layer.forward_layer.prepare(x, forward_state, mask), layer.backward_layer.prepare(x, backward_state, mask)]
    tapes, results = [], []
    for inner, run in zip((layer.forward_layer, layer.backward_layer), runs):
        outputs, final_states, record = backends.run(inner, run, record=True)
        results.append(inner.finish(run, outputs, final_states))
        tapes.append(Tape(inner, run, outputs, final_states, record, backends.resolve(inner.backend, inner.cell)))
    return layer.merge(*results), BidirectionalTape(layer, *tapes, *results)


def _require_backward(cell):
    if not cell.has_backward:
        cell.backward(None, None, None)  # raises the protocol's NotImplementedError


# -- backward --------------------------------------------------------------------


def backward(tape, dy, truncate=None, per_step=False):
    """Gradients of a loss L given ``dy`` = dL/dy, for the ``y`` that ``forward`` returned.

    dy has the structure of y: one array, or a list ``[dy, *d_states]`` with
    ``return_state`` (entries may be None for zero).  ``truncate=k`` limits how
    far back each output's gradient flows; ``per_step=True`` also returns each
    step's contribution to each weight gradient.
    """
    if truncate is not None and (isinstance(truncate, bool) or not isinstance(truncate, int) or truncate < 1):
        raise ValueError(f"truncate must be a positive int (steps) or None, got {truncate!r}")
    if isinstance(tape, BidirectionalTape):
        return _backward_bidirectional(tape, dy, truncate, per_step)
    if not isinstance(tape, Tape):
        raise TypeError(f"backward needs the tape returned by bptt.forward, got {type(tape).__name__}")
    d_outputs, d_final = _output_gradients(tape, dy)
    if tape.backend == "python":
        grads = _python_backward(tape, d_outputs, d_final, truncate, per_step)
    else:
        grads = backends.kernel_for(tape.backend, tape.cell).backward(tape, d_outputs, d_final, truncate, per_step)
    grads.inputs = _inputs_in_layer_layout(tape.layer, grads.inputs)
    return grads


def _output_gradients(tape, dy):
    """Turn dy (shaped like y) into (d_outputs (T, B, O) in processing order, flat d_final_states)."""
    layer, dtype = tape.layer, tape.outputs.dtype
    T, B, O = tape.outputs.shape
    final_shapes = [s.shape for s in tape.final_states]
    if layer.return_state:
        if not isinstance(dy, (list, tuple)) or len(dy) != 1 + len(final_shapes):
            raise ValueError(
                f"this layer returns [y, *states], so dy must be a list of {1 + len(final_shapes)} arrays "
                f"(None for zero), got {nest.describe_shapes(dy) if isinstance(dy, (list, tuple)) else type(dy).__name__}"
            )
        dy, d_final = dy[0], list(dy[1:])
    else:
        d_final = [None] * len(final_shapes)
    d_final = [np.zeros(shape, dtype) if d is None else _gradient_array(d, f"dy for state {i}", shape, dtype)
               for i, (d, shape) in enumerate(zip(d_final, final_shapes))]
    if layer.return_sequences:
        expected = (T, B, O) if layer.time_major else (B, T, O)
        dy = _gradient_array(dy, "dy", expected, dtype)
        d_outputs = dy if layer.time_major else dy.transpose(1, 0, 2)
    else:
        dy = _gradient_array(dy, "dy", (B, O), dtype)
        d_outputs = np.zeros((T, B, O), dtype)
        d_outputs[-1] = dy
    return np.ascontiguousarray(d_outputs), d_final


def _gradient_array(value, name, shape, dtype):
    array = validation.float_array(value, name, dtype)
    if array.shape != shape:
        raise ValueError(f"expected {name} of shape {shape} (the shape of the matching output), got {array.shape}")
    return array


def _inputs_in_layer_layout(layer, d_inputs):
    """(T, B, F) in processing order -> the layout of the layer's x."""
    if layer.go_backwards:
        d_inputs = d_inputs[::-1]
    return np.ascontiguousarray(d_inputs if layer.time_major else d_inputs.transpose(1, 0, 2))


def _python_backward(tape, d_outputs, d_final, truncate, per_step):
    """Full BPTT is one sweep; truncated BPTT sums one short sweep per output step."""
    T = tape.time_steps
    if truncate is None or truncate >= T:
        return _sweep(tape, d_outputs, d_final, last=T - 1, first=0, per_step=per_step)
    total = None
    for origin in range(T):
        only_origin = np.zeros_like(d_outputs)
        only_origin[origin] = d_outputs[origin]
        final = d_final if origin == T - 1 else [np.zeros_like(d) for d in d_final]
        first = max(0, origin - truncate + 1)
        part = _sweep(tape, only_origin, final, last=origin, first=first, per_step=per_step)
        if first > 0:  # the sweep stopped at a constant intermediate state, not at the initial state
            part.initial_state = [np.zeros_like(d) for d in part.initial_state]
        total = part if total is None else _add_gradients(total, part)
    return total


def _sweep(tape, d_outputs, d_final, last, first, per_step):
    """Walk steps ``last`` down to ``first``; the state before ``first`` gets the carried gradient.

    d_outputs: (T, B, O) gradient on each emitted output; d_final: flat list of
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
    steps = [None] * T if per_step else None
    for t in range(last, first - 1, -1):
        d_out = d_outputs[t] + d_carry
        if mask is None:
            d_cell_out, d_new = d_out, d_states
        else:
            keep = mask[t][:, None]  # (B, 1)
            d_cell_out = np.where(keep, d_out, 0)
            d_carry = np.where(keep, 0, d_out) if carries_output else np.zeros_like(d_out)
            d_new = [np.where(keep, d, 0) for d in d_states]
        _record_state_grads(state_grads, t, d_states, d_cell_out, cell.output_state_index)
        d_inputs[t], d_prev, d_weights = cell.backward(caches[t], d_cell_out, cell.pack_states(d_new))
        d_prev = nest.flatten(d_prev)
        if mask is not None:  # masked samples pass their state gradient straight through
            d_prev = [p + np.where(keep, 0, d) for p, d in zip(d_prev, d_states)]
        d_states = d_prev
        for total, part in zip(weight_grads, d_weights):
            total += part
        if per_step:
            steps[t] = d_weights
    weights_per_step = None
    if per_step:
        zeros = [np.zeros_like(w) for w in cell.weights]
        weights_per_step = [np.stack([(steps[t] or zeros)[k] for t in range(T)]) for k in range(len(zeros))]
    return Gradients(weight_grads, d_inputs, d_states, state_grads, weights_per_step)


def _record_state_grads(state_grads, t, d_states, d_cell_out, output_index):
    """dL/ds_t: the gradient from later steps, plus the output's when the output is a state."""
    for k, d in enumerate(d_states):
        state_grads[k][t] += d
    if output_index is not None:
        state_grads[output_index][t] += d_cell_out


def _add_gradients(a, b):
    add = lambda xs, ys: [x + y for x, y in zip(xs, ys)]
    per_step = None if a.weights_per_step is None else add(a.weights_per_step, b.weights_per_step)
    return Gradients(add(a.weights, b.weights), a.inputs + b.inputs, add(a.initial_state, b.initial_state),
                     add(a.state_grads, b.state_grads), per_step)


def _backward_bidirectional(tape, dy, truncate, per_step):
    layer = tape.layer
    dy_forward, dy_backward = _split_merged_gradient(tape, dy)
    forward = backward(tape.forward, dy_forward, truncate, per_step)
    backward_ = backward(tape.backward, dy_backward, truncate, per_step)
    per = None if not per_step else forward.weights_per_step + backward_.weights_per_step
    return Gradients(forward.weights + backward_.weights, forward.inputs + backward_.inputs,
                     forward.initial_state + backward_.initial_state,
                     [forward.state_grads, backward_.state_grads], per)


def _split_merged_gradient(tape, dy):
    """Undo the merge: dL/d(merged y) -> (dL/d y_forward, dL/d y_backward), each shaped like its layer's result."""
    layer = tape.layer
    n_forward = len(tape.forward.final_states)
    parts = list(dy) if isinstance(dy, (list, tuple)) else [dy]
    n_merged = 2 if layer.merge_mode is None else 1
    expected = n_merged + (n_forward + len(tape.backward.final_states) if layer.return_state else 0)
    if len(parts) != expected:
        raise ValueError(f"dy must have the structure of the Bidirectional output: {expected} arrays, got {len(parts)}")
    merged, state_parts = parts[:n_merged], parts[n_merged:]
    y_forward = tape.forward_result[0] if layer.return_state else tape.forward_result
    y_backward = tape.backward_result[0] if layer.return_state else tape.backward_result
    if layer.return_sequences:
        y_backward = np.flip(y_backward, axis=0 if layer.time_major else 1)
    dtype = y_forward.dtype
    if layer.merge_mode is None:
        d_forward, d_backward = merged
    else:
        d = _gradient_array(merged[0], "dy", np.shape(merged[0]), dtype)
        if layer.merge_mode == "concat":
            width = y_forward.shape[-1]
            if d.shape[-1] != width + y_backward.shape[-1]:
                raise ValueError(f"expected dy with {width + y_backward.shape[-1]} features (concat), got {d.shape}")
            d_forward, d_backward = d[..., :width], d[..., width:]
        elif layer.merge_mode == "sum":
            d_forward, d_backward = d, d
        elif layer.merge_mode == "mul":
            d_forward, d_backward = d * y_backward, d * y_forward
        else:  # ave
            d_forward, d_backward = d / 2, d / 2
    if layer.return_sequences:
        d_backward = np.flip(np.asarray(d_backward), axis=0 if layer.time_major else 1)
    if layer.return_state:
        return [d_forward, *state_parts[:n_forward]], [d_backward, *state_parts[n_forward:]]
    return d_forward, d_backward


# -- truncated streaming: Williams & Peng BPTT(k1, k2) ------------------------------


class Chunk:
    """One update of :func:`truncated_stream`: outputs ``start:stop`` and their gradients."""

    def __init__(self, start, stop, outputs, grads):
        self.start, self.stop, self.outputs, self.grads = start, stop, outputs, grads

    def __repr__(self):
        return f"Chunk(steps {self.start}:{self.stop}, {self.grads!r})"


def truncated_stream(layer, x, k1, k2, loss_grad, initial_state=None, mask=None):
    """Williams & Peng BPTT(k1, k2): every k1 steps, backpropagate through the last k2 steps.

    The state is carried across chunks.  For the chunk of new outputs
    ``start:stop`` (k1 steps), the forward pass is re-run from step
    ``max(0, stop - k2)`` starting at the carried state there, which is treated
    as a constant, and ``loss_grad(outputs, start, stop)`` gives dL/d(outputs)
    for the new outputs (B, stop - start, O).

    layer: an RNN layer (its options other than the cell and
    ``zero_output_for_mask`` are ignored: the stream runs forwards and returns
    sequences).  x: (B, T, F).  mask: optional (B, T); it needs
    ``zero_output_for_mask=True``.
    Yields :class:`Chunk` objects whose ``grads.weights`` align with ``layer.get_weights()``.
    """
    if not (isinstance(k1, int) and isinstance(k2, int) and 1 <= k1 <= k2):
        raise ValueError(f"need integers 1 <= k1 <= k2, got k1={k1!r}, k2={k2!r}")
    if not isinstance(layer, RNN):
        raise TypeError(f"truncated_stream takes an RNN layer, got {type(layer).__name__}")
    x = validation.sequence(x, layer.dtype, layer.cell.input_size if layer.built else None)
    mask = validation.mask(mask, x.shape[0], x.shape[1])
    if mask is not None and not layer.zero_output_for_mask:
        # A masked step repeats the previous output, which may lie before the re-run window.
        raise ValueError("truncated_stream with a mask needs a layer with zero_output_for_mask=True "
                         "(masked outputs repeating an output from an earlier chunk are not supported)")
    stepper = RNN(layer.cell, return_sequences=True, return_state=True, zero_output_for_mask=True,
                  backend=layer.backend)
    states_at = {0: stepper.prepare(x[:, :1], initial_state).initial_states}  # checks the state, builds the cell
    for start in range(0, x.shape[1], k1):
        stop = min(start + k1, x.shape[1])
        window_start = max(0, stop - k2)
        window = slice(window_start, stop)
        window_mask = None if mask is None else mask[:, window]
        (outputs, *_), tape = forward(stepper, x[:, window], states_at[window_start], window_mask)
        new = outputs[:, start - window_start :]
        d_new = validation.float_array(loss_grad(new, start, stop), "loss_grad(...)", layer.dtype)
        if d_new.shape != new.shape:
            raise ValueError(f"loss_grad must return an array of shape {new.shape}, got {d_new.shape}")
        dy = np.zeros_like(outputs)
        dy[:, start - window_start :] = d_new
        grads = backward(tape, [dy] + [None] * len(tape.final_states))
        states_at.update(_states_after(tape, window_start))
        yield Chunk(start, stop, new, grads)


def _states_after(tape, offset):
    """{step index: flat states entering that step} for the steps covered by ``tape``."""
    per_step = tape.states
    return {offset + t + 1: [leaf[t] for leaf in per_step] for t in range(tape.time_steps)}


# -- gradient checks ---------------------------------------------------------------


class GradientReport:
    """Maximum relative error of hand-written gradients against central finite differences.

    ``errors`` maps a name (``kernel``, ``inputs``, ``initial_state[0]``...) to
    ``max|analytic - numeric| / max(max|analytic|, max|numeric|)``.
    """

    def __init__(self, errors, eps):
        self.errors = errors
        self.eps = eps

    @property
    def max_error(self):
        return max(self.errors.values())

    def ok(self, tolerance=1e-6):
        return self.max_error < tolerance

    def __str__(self):
        width = max(len(name) for name in self.errors)
        lines = [f"gradient check (central differences, eps={self.eps:g}, float64)"]
        lines += [f"  {name:<{width}}  max rel. error {err:.2e}  {'ok' if err < 1e-6 else 'LARGE'}"
                  for name, err in self.errors.items()]
        return "\n".join(lines)

    __repr__ = __str__


def check_gradients(cell_or_layer, x=None, batch=2, time=4, features=3, mask=None, initial_state="random",
                    seed=0, eps=1e-6):
    """Compare :func:`backward` with central finite differences, in float64.

    cell_or_layer: a cell (run in ``RNN(cell, return_sequences=True,
    return_state=True)``), an ``RNN`` or a ``Bidirectional`` layer.  The
    object is copied to float64; the original is never changed.  The loss is a
    fixed random linear function of every output, so every gradient path is used.
    ``initial_state="random"`` draws random initial states (``None`` for zeros).
    """
    from .contract import AbstractRNNCell

    rng = np.random.default_rng(seed)
    if isinstance(cell_or_layer, AbstractRNNCell):
        layer = RNN(cell_or_layer, return_sequences=True, return_state=True, backend="python")
    elif isinstance(cell_or_layer, (RNN, Bidirectional)):
        layer = cell_or_layer
    else:
        raise TypeError(f"check_gradients takes a cell or an RNN/Bidirectional layer, got {type(cell_or_layer).__name__}")
    if (layer.forward_layer if isinstance(layer, Bidirectional) else layer).stateful:
        raise ValueError("check_gradients needs a layer that is not stateful")
    layer = _float64_copy(layer)
    if x is None:
        features = layer.input_size or features
        x = rng.normal(size=(batch, time, features))
        if getattr(layer, "time_major", False):
            x = x.transpose(1, 0, 2)
    x = np.array(x, dtype=np.float64)
    _build(layer, x)
    batch = x.shape[1] if getattr(layer, "time_major", False) else x.shape[0]
    if isinstance(initial_state, str) and initial_state == "random":
        initial_state = [rng.normal(size=(batch, size)) * 0.5 for size in _state_sizes(layer)]

    y, tape = forward(layer, x, initial_state, mask)
    weights_probe = [rng.normal(size=np.shape(part)) for part in _leaves(y)]
    loss = lambda result: sum(float(np.sum(p * r)) for p, r in zip(weights_probe, _leaves(result)))
    dy = _repack(y, weights_probe)
    grads = backward(tape, dy)

    def numeric(array, run):
        result = np.zeros_like(array)
        for index in np.ndindex(array.shape):
            saved = array[index]
            array[index] = saved + eps
            plus = loss(run())
            array[index] = saved - eps
            minus = loss(run())
            array[index] = saved
            result[index] = (plus - minus) / (2 * eps)
        return result

    run = lambda: layer(x, initial_state=initial_state, mask=mask)
    errors = {}
    for name, w, g in zip(_weight_names(layer), layer.weights, grads.weights):
        errors[name] = _relative_error(g, numeric(w, run))
    errors["inputs"] = _relative_error(grads.inputs, numeric(x, run))
    if initial_state is not None:
        for i, state in enumerate(initial_state):
            errors[f"initial_state[{i}]"] = _relative_error(grads.initial_state[i], numeric(state, run))
    return GradientReport(errors, eps)


def _leaves(y):
    return nest.flatten(y) if isinstance(y, list) else [y]


def _repack(y, parts):
    return list(parts) if isinstance(y, list) else parts[0]


def _relative_error(analytic, numeric):
    scale = max(np.abs(analytic).max(), np.abs(numeric).max(), 1e-12)
    return float(np.abs(analytic - numeric).max() / scale)


def _float64_copy(layer):
    layer = copy.copy(layer)
    if isinstance(layer, Bidirectional):
        layer.forward_layer = _float64_copy(layer.forward_layer)
        layer.backward_layer = _float64_copy(layer.backward_layer)
        return layer
    layer.cell = layer.cell.astype("float64")
    layer.states = None
    return layer


def _build(layer, x):
    features = x.shape[-1]
    if isinstance(layer, Bidirectional):
        layer.ensure_built((None, None, features))
    else:
        layer.build((None, None, features))


def _state_sizes(layer):
    if isinstance(layer, Bidirectional):
        return _state_sizes(layer.forward_layer) + _state_sizes(layer.backward_layer)
    return nest.flatten(layer.cell.state_size)


def _weight_names(layer):
    if isinstance(layer, Bidirectional):
        return ([f"forward.{n}" for n in _weight_names(layer.forward_layer)]
                + [f"backward.{n}" for n in _weight_names(layer.backward_layer)])
    return _cell_weight_names(layer.cell)


def _cell_weight_names(cell, prefix=""):
    cells = getattr(cell, "cells", None)
    if cells is not None:
        return [n for k, inner in enumerate(cells) for n in _cell_weight_names(inner, f"{prefix}cells[{k}].")]
    return [prefix + name for name in cell._weight_names]
