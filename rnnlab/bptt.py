"""Backpropagation through time, written by hand.

``forward`` runs a layer and keeps a `Tape`: the inputs, the states
after every step, each cell's gates and whatever the cells' ``backward``
needs.  ``backward`` walks the tape from the last step to the first, calling
the cell's ``backward`` once per step, and returns `Gradients`.

The backward protocol
---------------------
A cell takes part in BPTT by implementing two methods beside ``call``:

```text
    forward(inputs, states) -> (output, new_states, cache)
    backward(cache, d_output, d_new_states) -> (d_inputs, d_states, d_weights)
```

``d_output`` is dL/d(output) (B, O); ``d_new_states`` mirrors ``new_states``;
``d_states`` mirrors ``states``; ``d_weights`` is aligned with
``get_weights()``.  Each step's gradient is *local*: the loop adds them up.
A cell whose ``call`` takes ``constants`` (tf.keras 2's attention-style cells)
gets them in ``forward(inputs, states, constants=...)`` and returns a fourth
result from ``backward``: ``d_constants``, aligned with the constants.
See ``docs/custom_cells.md`` for worked examples.

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
from .types import BidirectionalTape, Gradients, Tape


# -- forward ---------------------------------------------------------------------


def forward(layer, x, initial_state=None, mask=None, constants=None, training=None, dropout_mask=None,
            recurrent_dropout_mask=None):
    """Run ``layer`` like ``layer(x, ...)`` and return ``(y, tape)``.

    ``y`` is exactly what the call returns (a list with ``return_state``).  A
    stateful layer advances its states as a normal call would.  With
    ``training=True`` the cell's dropout acts, and ``tape.dropout`` keeps the
    call's masks (drawn, or the explicit ``dropout_mask`` (B, F) and
    ``recurrent_dropout_mask`` (B, U)), so the backward pass is exact.
    """
    if isinstance(layer, Bidirectional):
        if dropout_mask is not None or recurrent_dropout_mask is not None:
            raise ValueError("explicit dropout masks are for an RNN layer; each direction of a "
                             "Bidirectional layer draws its own")
        return _forward_bidirectional(layer, x, initial_state, mask, constants, training)
    if not isinstance(layer, RNN):
        raise TypeError(f"bptt.forward takes an RNN or Bidirectional layer, got {type(layer).__name__}")
    _require_backward(layer.cell)
    run = layer.prepare(x, initial_state, mask, constants, training, dropout_mask, recurrent_dropout_mask)
    backend = run.backend
    outputs, final_states, record = backends.run(layer, run, record=True)
    y = layer.finish(run, outputs, final_states)
    return y, Tape(layer, run, outputs, final_states, record, backend)


def _forward_bidirectional(layer, x, initial_state, mask, constants, training):
    for inner in layer.layers:
        _require_backward(inner.cell)
    runs = layer.prepare(x, initial_state, mask, constants, training)
    scans = [backends.run(inner, run, record=True) for inner, run in zip(layer.layers, runs)]
    # Only now that both directions have run may a stateful layer advance its states.
    results = [inner.finish(run, outputs, final_states)
               for inner, run, (outputs, final_states, _) in zip(layer.layers, runs, scans)]
    tapes = [Tape(inner, run, outputs, final_states, record, run.backend)
             for inner, run, (outputs, final_states, record) in zip(layer.layers, runs, scans)]
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
    step's contribution to each weight gradient.  A forward with ``constants``
    also gives ``grads.constants``, dL/dc summed over the steps.
    """
    if truncate is not None and (isinstance(truncate, bool) or not isinstance(truncate, int) or truncate < 1):
        raise ValueError(f"truncate must be a positive int (steps) or None, got {truncate!r}")
    if isinstance(tape, BidirectionalTape):
        return _backward_bidirectional(tape, dy, truncate, per_step)
    if not isinstance(tape, Tape):
        raise TypeError(f"backward needs the tape returned by bptt.forward, got {type(tape).__name__}")
    d_outputs, d_final = _output_gradients(tape, dy)
    grads = backends.backward(tape, d_outputs, d_final, truncate, per_step)
    grads.inputs = _inputs_in_layer_layout(tape.layer, grads.inputs)
    return grads


def _output_gradients(tape, dy):
    """Turn dy (shaped like y) into (d_outputs (T, B, O) in processing order, flat d_final_states).

    O stands for the output's dims: one int, or several for a TensorShape output_size.
    """
    layer, dtype = tape.layer, tape.outputs.dtype
    T, B, *O = tape.outputs.shape
    states = layer.nested_states(tape.final_states)  # as the layer returned them
    if layer.return_state:
        if not isinstance(dy, (list, tuple)) or len(dy) != 1 + len(states):
            raise ValueError(
                f"this layer returns [y, *states], so dy must be a list of {1 + len(states)} arrays "
                f"(None for zero), nested like the states {nest.describe_shapes(states)}, "
                f"got {nest.describe_shapes(dy) if isinstance(dy, (list, tuple)) else type(dy).__name__}"
            )
        dy, d_final = dy[0], validation.gradients_like(list(dy[1:]), states, "dy for the states", dtype)
    else:
        d_final = validation.gradients_like(None, states, "dy for the states", dtype)
    if layer.return_sequences:
        expected = (T, B, *O) if layer.time_major else (B, T, *O)
        dy = validation.gradient(dy, "dy", expected, dtype)
        d_outputs = dy if layer.time_major else dy.swapaxes(0, 1)
    else:
        dy = validation.gradient(dy, "dy", (B, *O), dtype)
        d_outputs = np.zeros((T, B, *O), dtype)
        d_outputs[-1] = dy
    return np.ascontiguousarray(d_outputs), d_final


def _inputs_in_layer_layout(layer, d_inputs):
    """(T, B, F) in processing order -> the layout of the layer's x."""
    if layer.go_backwards:
        d_inputs = d_inputs[::-1]
    return np.ascontiguousarray(d_inputs if layer.time_major else d_inputs.transpose(1, 0, 2))


def _backward_bidirectional(tape, dy, truncate, per_step):
    layer = tape.layer
    dy_forward, dy_backward = layer.merge_backward(tape.forward_result, tape.backward_result, dy)
    forward = backward(tape.forward, dy_forward, truncate, per_step)
    backward_ = backward(tape.backward, dy_backward, truncate, per_step)
    per = None if not per_step else forward.weights_per_step + backward_.weights_per_step
    constants = None if forward.constants is None else [a + b for a, b in zip(forward.constants, backward_.constants)]
    return Gradients(forward.weights + backward_.weights, forward.inputs + backward_.inputs,
                     forward.initial_state + backward_.initial_state,
                     [forward.state_grads, backward_.state_grads], per, constants)


# -- truncated streaming: Williams & Peng BPTT(k1, k2) ------------------------------


class Chunk:
    """One update of `truncated_stream`: outputs ``start:stop`` and their gradients."""

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
    Yields `Chunk` objects whose ``grads.weights`` align with ``layer.get_weights()``.
    """
    k1, k2 = validation.count(k1, "k1"), validation.count(k2, "k2")
    if k1 > k2:
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
        grads = backward(tape, [dy] + [None] * len(stepper.nested_states(tape.final_states)))
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
                    seed=0, eps=1e-6, constants=None):
    """Compare `backward` with central finite differences, in float64.

    cell_or_layer: a cell (run in ``RNN(cell, return_sequences=True,
    return_state=True)``), an ``RNN`` or a ``Bidirectional`` layer.  The
    object is copied to float64; the original is never changed.  The loss is a
    fixed random linear function of every output, so every gradient path is used.
    ``initial_state="random"`` draws random initial states (``None`` for zeros).
    ``constants``: for a cell that takes constants, the list of (B, ...) arrays to check dL/dc at.
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
        batch, time = validation.count(batch, "batch"), validation.count(time, "time")
        features = layer.input_size or validation.count(features, "features")
        x = rng.normal(size=(batch, time, features))
        if getattr(layer, "time_major", False):
            x = x.transpose(1, 0, 2)
    x = validation.float_array(x, "x", "float64").copy()  # a copy: the differences perturb it in place
    if x.ndim != 3:
        raise ValueError(f"expected x of shape (batch, time, features), got an array of shape {x.shape}")
    _build(layer, x)
    batch = x.shape[1] if getattr(layer, "time_major", False) else x.shape[0]
    if isinstance(initial_state, str) and initial_state == "random":
        initial_state = [rng.normal(size=(batch, *nest.leaf_shape(size))) * 0.5 for size in _state_sizes(layer)]

    if constants is not None:
        constants = [validation.float_array(c, f"constants[{i}]", "float64").copy() for i, c in enumerate(
            constants if isinstance(constants, (list, tuple)) else [constants])]
    y, tape = forward(layer, x, initial_state, mask, constants)
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

    run = lambda: layer(x, initial_state=initial_state, mask=mask, constants=constants)
    errors = {}
    for name, w, g in zip(_weight_names(layer), layer.weights, grads.weights):
        errors[name] = _relative_error(g, numeric(w, run))
    errors["inputs"] = _relative_error(grads.inputs, numeric(x, run))
    if initial_state is not None:
        for i, state in enumerate(initial_state):
            errors[f"initial_state[{i}]"] = _relative_error(grads.initial_state[i], numeric(state, run))
    for i, constant in enumerate(constants or []):
        errors[f"constants[{i}]"] = _relative_error(grads.constants[i], numeric(constant, run))
    return GradientReport(errors, eps)


def _leaves(y):
    return nest.flatten(y) if isinstance(y, list) else [y]


def _repack(y, parts):
    return nest.pack_sequence_as(y, parts) if isinstance(y, list) else parts[0]


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
    return layer.cell.weight_names
