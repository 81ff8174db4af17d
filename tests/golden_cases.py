"""Replay the golden fixtures of tf.keras 2 (``tests/golden/fixtures``) on an rnnlab backend.

Each fixture is one layer call recorded by ``tests/golden/make_golden.py`` with
tf.keras 2 itself, in float64: its config, inputs, weights, outputs and
``GradientTape`` gradients of ``L = sum_i <probe_i, output_i>`` (the format is
that script's docstring).  :func:`replay` builds the same layer in rnnlab, sets
the same weights, runs ``bptt.forward``/``backward`` and compares everything at
rtol 1e-9.  No TensorFlow is needed.
"""

import json
import pathlib

import numpy as np

import rnnlab as rl

FIXTURES = pathlib.Path(__file__).resolve().parent / "golden" / "fixtures"
CASES = sorted(json.loads((FIXTURES / "MANIFEST.json").read_text())["cases"])
RTOL, ATOL = 1e-9, 1e-12


def load(name):
    """``(config, arrays)`` of one fixture."""
    with np.load(FIXTURES / f"{name}.npz") as data:
        arrays = {key: data[key] for key in data.files}
    return json.loads(str(arrays.pop("config"))), arrays


def indexed(arrays, prefix, count):
    return [arrays[f"{prefix}_{i}"] for i in range(count)]


# -- the custom cells of the fixtures, written from their equations --------------------


class NestedStateCell(rl.AbstractRNNCell):
    """state_size [units, [a_units, b_units]]; states [h, [a, b]] (make_golden.py's equations)::

        h' = tanh(x K + h R + a A + b Bk + bias)
        a' = 0.5 a + tanh(h' a_out)         b' = b * sigmoid(h' b_gate)
        output = [h', a']
    """

    def __init__(self, units, a_units, b_units, **kwargs):
        super().__init__(**kwargs)
        self.units, self.a_units, self.b_units = units, a_units, b_units

    @property
    def state_size(self):
        return [self.units, [self.a_units, self.b_units]]

    @property
    def output_size(self):
        return self.units + self.a_units

    def build(self, input_shape):
        U, A, B = self.units, self.a_units, self.b_units
        for name, shape in [("kernel", (input_shape[-1], U)), ("recurrent_kernel", (U, U)), ("a_kernel", (A, U)),
                            ("b_kernel", (B, U)), ("bias", (U,)), ("a_out", (U, A)), ("b_gate", (U, B))]:
            self.add_weight(name, shape, "zeros")

    def call(self, inputs, states):
        output, new_states, _ = self.forward(inputs, states)
        return output, new_states

    def forward(self, inputs, states):
        h, (a, b) = states
        h_new = np.tanh(inputs @ self.kernel + h @ self.recurrent_kernel + a @ self.a_kernel + b @ self.b_kernel
                        + self.bias)
        ta = np.tanh(h_new @ self.a_out)
        sb = 1 / (1 + np.exp(-(h_new @ self.b_gate)))
        a_new, b_new = 0.5 * a + ta, b * sb
        cache = (inputs, h, a, b, h_new, ta, sb)
        return np.concatenate([h_new, a_new], axis=-1), [h_new, [a_new, b_new]], cache

    def backward(self, cache, d_output, d_new_states):
        x, h, a, b, h_new, ta, sb = cache
        d_h_new, (d_a_new, d_b_new) = d_new_states
        g_h = d_output[:, : self.units] + d_h_new
        g_a = d_output[:, self.units :] + d_a_new
        p_a = g_a * (1 - ta * ta)  # dL/d(h' a_out)
        p_b = d_b_new * b * sb * (1 - sb)  # dL/d(h' b_gate)
        dz = (g_h + p_a @ self.a_out.T + p_b @ self.b_gate.T) * (1 - h_new * h_new)
        d_states = [dz @ self.recurrent_kernel.T, [0.5 * g_a + dz @ self.a_kernel.T, d_b_new * sb + dz @ self.b_kernel.T]]
        d_weights = [x.T @ dz, h.T @ dz, a.T @ dz, b.T @ dz, dz.sum(axis=0), h_new.T @ p_a, h_new.T @ p_b]
        return dz @ self.kernel.T, d_states, d_weights


class ConstantsCell(rl.AbstractRNNCell):
    """h' = tanh(x K + h R + c C) with the constant c (B, constant_units); output h'."""

    def __init__(self, units, constant_units, **kwargs):
        super().__init__(**kwargs)
        self.units, self.constant_units = units, constant_units

    @property
    def state_size(self):
        return self.units

    def build(self, input_shape):
        self.add_weight("kernel", (input_shape[-1], self.units), "glorot_uniform")
        self.add_weight("recurrent_kernel", (self.units, self.units), "orthogonal")
        self.add_weight("constant_kernel", (self.constant_units, self.units), "glorot_uniform")

    def call(self, inputs, states, constants):
        output, new_states, _ = self.forward(inputs, states, constants)
        return output, new_states

    def forward(self, inputs, states, constants):
        h, c = states[0], constants[0]
        h_new = np.tanh(inputs @ self.kernel + h @ self.recurrent_kernel + c @ self.constant_kernel)
        return h_new, [h_new], (inputs, h, c, h_new)

    def backward(self, cache, d_output, d_new_states):
        x, h, c, h_new = cache
        dz = (d_output + d_new_states[0]) * (1 - h_new * h_new)
        d_weights = [x.T @ dz, h.T @ dz, c.T @ dz]
        return dz @ self.kernel.T, [dz @ self.recurrent_kernel.T], d_weights, [dz @ self.constant_kernel.T]


def make_cell(spec):
    """The rnnlab cell of a fixture's ``cell`` entry, in float64."""
    name, args = spec["class"], dict(spec.get("args", {}))
    if name == "StackedRNNCells":
        return rl.StackedRNNCells([make_cell(inner) for inner in spec["cells"]])
    if name == "NestedStateCell":
        return NestedStateCell(args["units"], args["a_units"], args["b_units"], dtype="float64")
    if name == "ConstantsCell":
        return ConstantsCell(args["units"], args["constant_units"], dtype="float64")
    return getattr(rl, name)(**args, dtype="float64")


def make_layer(config, backend):
    rnn = {k: v for k, v in config["rnn"].items()}
    layer = rl.RNN(make_cell(config["cell"]), backend=backend, **rnn)
    if config["bidirectional"] is not None:
        layer = rl.Bidirectional(layer, merge_mode=config["bidirectional"]["merge_mode"])
    return layer


def runs_on(name, backend):
    """Whether ``backend`` can run the fixture's call (python runs them all), as ``rnnlab.backends.resolve`` says."""
    config, _ = load(name)
    try:
        rl.backends.resolve(backend, make_cell(config["cell"]), config["has_constants"])
    except ValueError:
        return False
    return True


def structure_of(value, counter):
    """The nesting of ``value`` with each array replaced by its depth-first index (the fixtures' encoding)."""
    if isinstance(value, (list, tuple)):
        return [structure_of(item, counter) for item in value]
    counter.append(None)
    return len(counter) - 1


def assert_close(got, want, what):
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=what)


def replay(name, backend):
    """Run fixture ``name`` on ``backend`` and compare outputs, states and every gradient with tf.keras 2."""
    config, arrays = load(name)
    layer = make_layer(config, backend)
    x = arrays["x"]
    layer.ensure_built(x.shape)
    layer.set_weights(indexed(arrays, "weight", config["n_weights"]))
    mask = arrays.get("mask")
    initial_state = indexed(arrays, "initial_state", config["n_initial_state"]) if config["has_initial_state"] else None
    constants = indexed(arrays, "constant", config["n_constants"]) if config["has_constants"] else None
    if config["stateful_calls"] == 2:  # the first call carries its states into the recorded one
        first = layer(arrays["x_first"], mask=arrays.get("mask_first"))
        for k, (got, want) in enumerate(zip(rl.nest.flatten(first), indexed(arrays, "first_output", config["n_outputs"]),
                                            strict=True)):
            assert_close(got, want, f"{name}: first call, output {k}")
        for k, (got, want) in enumerate(zip(layer.states, indexed(arrays, "carried_state", config["n_carried_state"]),
                                            strict=True)):
            assert_close(got, want, f"{name}: carried state {k}")
    dropout = {}  # tf.keras 2 ran with training=True and these masks (make_golden.py's "Dropout")
    if config.get("dropout_masks"):
        dropout = dict(training=True, dropout_mask=arrays["dropout_mask"],
                       recurrent_dropout_mask=arrays["recurrent_dropout_mask"])
    y, tape = rl.bptt.forward(layer, x, initial_state=initial_state, mask=mask, constants=constants, **dropout)
    assert structure_of(y, []) == config["output_structure"], f"{name}: the returned value is nested differently"
    outputs = rl.nest.flatten(y) if isinstance(y, list) else [y]
    for k, (got, want) in enumerate(zip(outputs, indexed(arrays, "output", config["n_outputs"]), strict=True)):
        assert_close(got, want, f"{name}: output {k} ({config['output_roles'][k]})")
    probes = indexed(arrays, "probe", config["n_outputs"])
    grads = rl.bptt.backward(tape, rl.nest.pack_sequence_as(y, probes) if isinstance(y, list) else probes[0])
    for k, (got, want) in enumerate(zip(grads.weights, indexed(arrays, "grad_weight", config["n_weights"]),
                                        strict=True)):
        assert_close(got, want, f"{name}: dL/d{config['weight_names'][k]}")
    assert_close(grads.inputs, arrays["grad_x"], f"{name}: dL/dx")
    if config["has_initial_state"]:
        wanted = indexed(arrays, "grad_initial_state", config["n_initial_state"])
    elif config["stateful_calls"] == 2:
        wanted = indexed(arrays, "grad_carried_state", config["n_carried_state"])
    else:
        wanted = []
    for k, want in enumerate(wanted):
        assert_close(grads.initial_state[k], want, f"{name}: dL/d initial state {k}")
    if config["has_constants"]:
        for k, (got, want) in enumerate(zip(grads.constants, indexed(arrays, "grad_constant", config["n_constants"]),
                                            strict=True)):
            assert_close(got, want, f"{name}: dL/d constant {k}")
