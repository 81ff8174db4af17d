"""backend="numba" equals backend="python": outputs, states, gates and every gradient.

The python backend (a loop over the readable cells) is the reference.  Each
case runs one layer on both backends, sharing one cell, and compares
everything: outputs, final states, ``tape.states``, ``tape.gates``, and the
gradients of full, truncated and per-step BPTT (weights, inputs, initial
state, ``state_grads``).  Tolerance: 1e-10 relative in float64 and 1e-5 in
float32, relative to each array's largest entry for entries near zero.

Compilation dominates the run time, so every case reuses a few shapes: each
kernel compiles once per dtype (and is cached on disk for the next run).
"""

import subprocess
import sys

import numpy as np
import pytest

import rnnlab as rl
from conftest import kinds_on, make_cell

RTOL = {"float32": 1e-5, "float64": 1e-10}
KINDS = kinds_on("numba")
# (batch, time, features, units): T=1, B=1, H=1 and odd sizes
SHAPES = [(1, 1, 1, 1), (3, 6, 2, 5)]


def assert_close(got, want, dtype, what=""):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    rtol = RTOL[dtype]
    scale = float(np.abs(want).max()) if want.size else 0.0
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale, err_msg=what)


def assert_all_close(got, want, dtype, what):
    if isinstance(want, dict):
        assert set(got) == set(want), what
        for key in want:
            assert_all_close(got[key], want[key], dtype, f"{what}[{key}]")
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want), what
        for k, (g, w) in enumerate(zip(got, want)):
            assert_all_close(g, w, dtype, f"{what}[{k}]")
    else:
        assert_close(got, want, dtype, what)


def both_backends(make_layer):
    """Two layers built by ``make_layer(backend)``, sharing weights."""
    python, numba = make_layer("python"), make_layer("numba")
    return python, numba


def run_and_compare(layers, x, dtype, mask=None, initial_state=None, dy_seed=7, truncate=2):
    """Forward, full, truncated and per-step backward on both layers; compare all of it."""
    results = []
    for layer in layers:
        y, tape = rl.bptt.forward(layer, x, initial_state=initial_state, mask=mask)
        leaves = rl.nest.flatten(y) if isinstance(y, list) else [y]  # a stack's states come nested
        probe = np.random.default_rng(dy_seed)
        dy = [probe.standard_normal(np.shape(a)).astype(dtype) for a in leaves]
        dy = rl.nest.pack_sequence_as(y, dy) if isinstance(y, list) else dy[0]
        full = rl.bptt.backward(tape, dy, per_step=True)
        truncated = rl.bptt.backward(tape, dy, truncate=truncate)
        results.append((y, tape, full, truncated))
    (y_p, tape_p, full_p, trunc_p), (y_n, tape_n, full_n, trunc_n) = results
    assert_all_close(y_n, y_p, dtype, "outputs")
    tapes = [(tape_p, tape_n)] if isinstance(tape_p, rl.bptt.Tape) else [(tape_p.forward, tape_n.forward),
                                                                        (tape_p.backward, tape_n.backward)]
    for p, n in tapes:
        assert n.backend == "numba"
        assert_all_close(n.states, p.states, dtype, "tape.states")
        assert_all_close(n.gates, p.gates, dtype, "tape.gates")
    for name, p, n in (("full", full_p, full_n), ("truncated", trunc_p, trunc_n)):
        assert_all_close(n.weights, p.weights, dtype, f"{name} weights")
        assert_close(n.inputs, p.inputs, dtype, f"{name} inputs")
        assert_all_close(n.initial_state, p.initial_state, dtype, f"{name} initial_state")
        assert_all_close(n.state_grads, p.state_grads, dtype, f"{name} state_grads")
    assert_all_close(full_n.weights_per_step, full_p.weights_per_step, dtype, "weights_per_step")
    return results


def random_mask(rng, batch, time):
    mask = rng.random((batch, time)) < 0.6
    mask[0, 0] = False  # a masked first step: the repeated output is zeros
    if time > 2:
        mask[-1, -2:] = False  # masked steps at the end
    return mask


OPTIONS = {
    "plain": (dict(return_sequences=True), {}),
    "last_output": (dict(), {}),
    "mask": (dict(return_sequences=True), {"mask": True}),
    "mask_zero_output": (dict(return_sequences=True, zero_output_for_mask=True), {"mask": True}),
    "go_backwards_mask": (dict(return_sequences=True, go_backwards=True), {"mask": True}),
    "return_state_initial_state": (dict(return_sequences=True, return_state=True), {"initial_state": True}),
    "time_major_state": (dict(time_major=True, return_state=True), {"mask": True}),
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shape", SHAPES, ids=["T1B1H1", "odd"])
@pytest.mark.parametrize("option", list(OPTIONS))
@pytest.mark.parametrize("kind", KINDS)
def test_numba_equals_python(kind, option, shape, dtype):
    batch, time, features, units = shape
    layer_kwargs, call = OPTIONS[option]
    rng = np.random.default_rng(0)
    cell = make_cell(kind, units, dtype)
    layers = both_backends(lambda backend: rl.RNN(cell, backend=backend, **layer_kwargs))
    x = rng.standard_normal((batch, time, features)).astype(dtype)
    if layer_kwargs.get("time_major"):
        x = np.ascontiguousarray(x.transpose(1, 0, 2))
    mask = random_mask(rng, batch, time) if call.get("mask") else None
    if mask is not None and layer_kwargs.get("time_major"):
        mask = mask.T  # the mask has the layout of x, as in tf.keras 2
    initial_state = None
    if call.get("initial_state"):
        initial_state = [rng.standard_normal((batch, size)).astype(dtype)
                         for size in rl.nest.flatten(cell.state_size)]
    run_and_compare(layers, x, dtype, mask=mask, initial_state=initial_state)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("kind", ["lstm", "gru_reset_before"])
def test_bidirectional(kind, dtype):
    rng = np.random.default_rng(1)
    forward = make_cell(kind, 5, dtype)
    backward_cell = make_cell(kind, 5, dtype, seed=3)

    def make(backend):
        layer = rl.RNN(forward, return_sequences=True, return_state=True, backend=backend)
        back = rl.RNN(backward_cell, return_sequences=True, return_state=True, go_backwards=True, backend=backend)
        return rl.Bidirectional(layer, backward_layer=back)

    x = rng.standard_normal((3, 6, 2)).astype(dtype)
    run_and_compare(both_backends(make), x, dtype, mask=random_mask(rng, 3, 6))


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "hard_sigmoid", "hard_sigmoid_keras3", "linear"])
def test_simple_rnn_activations(activation):
    rng = np.random.default_rng(2)
    cell = rl.SimpleRNNCell(5, activation=activation, dtype="float64", seed=0, bias_initializer="normal")
    layers = both_backends(lambda backend: rl.RNN(cell, return_sequences=True, backend=backend))
    x = rng.standard_normal((3, 6, 2)) * 2  # reaches the kinks of relu and hard_sigmoid
    run_and_compare(layers, x, "float64", mask=random_mask(rng, 3, 6))


@pytest.mark.parametrize("gate", ["hard_sigmoid", "hard_sigmoid_keras3"])
@pytest.mark.parametrize("kind", ["lstm", "gru", "gru_reset_before"])
def test_gates_with_a_hard_sigmoid(kind, gate):
    """tf.keras 2's hard sigmoid (old Keras weights were trained with it) and Keras 3's, as recurrent activation."""
    rng = np.random.default_rng(4)
    cell = make_cell(kind, 4, "float64", recurrent_activation=gate)
    layers = both_backends(lambda backend: rl.RNN(cell, return_sequences=True, return_state=True, backend=backend))
    x = rng.standard_normal((3, 6, 2)) * 4  # some gates clip at 0 or 1, where the derivative is 0
    (_, python_tape, _, _), _ = run_and_compare(layers, x, "float64", mask=random_mask(rng, 3, 6))
    clipped = [np.isin(python_tape.gates[name], (0.0, 1.0)).any() for name in python_tape.gates if name != "g"]
    assert any(clipped)


@pytest.mark.parametrize("layout", ["fortran", "strided", "float32_into_float64", "list"])
def test_inputs_in_any_layout_give_the_same_result(layout):
    rng = np.random.default_rng(3)
    cell = make_cell("lstm", 5, "float64")
    layers = both_backends(lambda backend: rl.RNN(cell, return_sequences=True, backend=backend))
    x = rng.standard_normal((3, 12, 4))
    x = {"fortran": np.asfortranarray(x), "strided": x[:, ::2, 1:3], "float32_into_float64": x.astype("float32"),
         "list": x.tolist()}[layout]
    run_and_compare(layers, x, "float64")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_stateful_layers_carry_the_same_states(dtype):
    rng = np.random.default_rng(4)
    cell = make_cell("gru", 5, dtype)
    python, numba = both_backends(lambda backend: rl.RNN(cell, stateful=True, return_sequences=True, backend=backend))
    for _ in range(3):
        x = rng.standard_normal((3, 4, 2)).astype(dtype)
        assert_close(numba(x), python(x), dtype, "stateful outputs")
        assert_all_close(numba.states, python.states, dtype, "carried states")


@pytest.mark.parametrize("truncate", [1, 3])
def test_truncation_lengths(truncate):
    rng = np.random.default_rng(5)
    cell = make_cell("stacked", 3, "float64")
    layers = both_backends(lambda backend: rl.RNN(cell, return_sequences=True, return_state=True, backend=backend))
    run_and_compare(layers, rng.standard_normal((2, 6, 2)), "float64", mask=random_mask(rng, 2, 6),
                    initial_state=[rng.standard_normal((2, s)) for s in rl.nest.flatten(cell.state_size)],
                    truncate=truncate)


def test_truncated_initial_state_gradient_matches_finite_differences():
    """With truncate=k only outputs 0..k-1 reach the initial state (both backends)."""
    rng = np.random.default_rng(6)
    cell = make_cell("lstm", 2, "float64")
    x, probe = rng.standard_normal((2, 6, 2)), rng.standard_normal((2, 6, 2))
    s0 = [rng.standard_normal((2, 2)) for _ in range(2)]
    k = 2
    stepper = rl.RNN(cell, return_sequences=True, return_state=True, backend="python")

    def windowed_loss(initial):
        states, total = [initial], 0.0
        for t in range(6):  # the states entering each step, from the unperturbed initial state
            states.append(stepper(x[:, t : t + 1], initial_state=states[-1] if t else s0)[1:])
        for t in range(6):
            start = max(0, t - k + 1)
            y = stepper(x[:, start : t + 1], initial_state=initial if start == 0 else states[start])[0]
            total += float(np.sum(probe[:, t] * y[:, -1]))
        return total

    for backend in ("python", "numba"):
        _, tape = rl.bptt.forward(rl.RNN(cell, return_sequences=True, backend=backend), x, initial_state=s0)
        grads = rl.bptt.backward(tape, probe, truncate=k)
        for leaf in range(2):
            numeric = np.zeros((2, 2))
            for index in np.ndindex(2, 2):
                plus, minus = [s.copy() for s in s0], [s.copy() for s in s0]
                plus[leaf][index] += 1e-6
                minus[leaf][index] -= 1e-6
                numeric[index] = (windowed_loss(plus) - windowed_loss(minus)) / 2e-6
            np.testing.assert_allclose(grads.initial_state[leaf], numeric, rtol=1e-6, atol=1e-9)


# -- which cells run on numba, and the errors ----------------------------------------------------


class SubclassedLSTM(rl.LSTMCell):
    pass


@pytest.mark.parametrize("cell, reason", [
    (rl.LSTMCell(3, recurrent_activation="relu"), "recurrent_activation in \\('sigmoid', 'hard_sigmoid'"),
    (rl.GRUCell(3, activation="relu"), "activation='tanh'"),
    (rl.SimpleRNNCell(3, activation=np.sin), "activations"),
    (rl.MinimalRNNCell(3), "no kernel for MinimalRNNCell"),
    (SubclassedLSTM(3), "no kernel for SubclassedLSTM"),
    (rl.StackedRNNCells([rl.LSTMCell(3), rl.MinimalRNNCell(2)]), "MinimalRNNCell inside StackedRNNCells"),
    (rl.StackedRNNCells([rl.StackedRNNCells([rl.LSTMCell(3)])]), "StackedRNNCells inside StackedRNNCells"),
])
def test_unsupported_cells_fall_back_under_auto_and_are_refused_by_numba(cell, reason):
    assert rl.backends.resolve("auto", cell) == "python"
    with pytest.raises(ValueError, match=reason):
        rl.backends.resolve("numba", cell)
    with pytest.raises(ValueError, match="available for this cell: \\['python'"):
        rl.RNN(cell, backend="numba")(np.ones((1, 2, 2), cell.dtype))
    y = rl.RNN(cell, backend="auto")(np.ones((1, 2, 2), cell.dtype))  # runs on python
    assert np.isfinite(y).all()


@pytest.mark.parametrize("kind", KINDS)
def test_auto_picks_numba_for_builtin_cells(kind):
    assert rl.backends.resolve("auto", make_cell(kind, 2)) == "numba"


BAD_CALLS = {
    "integer inputs": lambda layer: layer(np.ones((2, 3, 2), dtype=int)),
    "boolean inputs": lambda layer: layer(np.ones((2, 3, 2), dtype=bool)),
    "complex inputs": lambda layer: layer(np.ones((2, 3, 2), dtype=complex)),
    "2-D inputs": lambda layer: layer(np.ones((3, 2))),
    "wrong features": lambda layer: layer(np.ones((2, 3, 5))),
    "no timesteps": lambda layer: layer(np.ones((2, 0, 2))),
    "NaN inputs": lambda layer: layer(np.full((2, 3, 2), np.nan)),
    "ragged list": lambda layer: layer([[[1.0, 2.0]], [[1.0]]]),
    "integer initial state": lambda layer: layer(np.ones((2, 3, 2)), initial_state=[np.ones((2, 4), int)] * 2),
    "wrong initial state shape": lambda layer: layer(np.ones((2, 3, 2)), initial_state=[np.ones((3, 4))] * 2),
    "too few initial states": lambda layer: layer(np.ones((2, 3, 2)), initial_state=[np.ones((2, 4))]),
    "wrong mask shape": lambda layer: layer(np.ones((2, 3, 2)), mask=np.ones((3, 2), bool)),
    "non-binary mask": lambda layer: layer(np.ones((2, 3, 2)), mask=np.full((2, 3), 2.0)),
}


@pytest.mark.parametrize("case", list(BAD_CALLS))
def test_bad_input_gives_the_python_backends_error(case):
    """Same exception type and message on both backends: checked before any kernel runs."""
    errors = []
    for backend in ("python", "numba"):
        layer = rl.RNN(rl.LSTMCell(4, seed=0, dtype="float64"), backend=backend)
        layer(np.ones((1, 1, 2)))  # built for 2 features
        before = layer.get_weights()
        with pytest.raises((TypeError, ValueError)) as info:
            BAD_CALLS[case](layer)
        errors.append((type(info.value), str(info.value)))
        assert "Typing" not in str(info.value) and "numba" not in str(info.value).lower()
        for w, b in zip(layer.get_weights(), before):
            np.testing.assert_array_equal(w, b)  # a failed call changes nothing
    assert errors[0] == errors[1]


def test_bad_gradients_give_the_python_backends_error():
    errors = []
    for backend in ("python", "numba"):
        layer = rl.RNN(rl.GRUCell(3, seed=0), return_sequences=True, return_state=True, backend=backend)
        y, tape = rl.bptt.forward(layer, np.ones((2, 4, 2), "float32"))
        for bad in ([np.ones((2, 4, 3), int), None], [np.ones((2, 5, 3)), None], np.ones((2, 4, 3))):
            with pytest.raises((TypeError, ValueError)) as info:
                rl.bptt.backward(tape, bad)
            errors.append((type(info.value), str(info.value)))
    half = len(errors) // 2
    assert errors[:half] == errors[half:]


def test_mixed_dtypes_are_cast_like_the_python_backend():
    """float64 inputs and initial states into a float32 layer are cast, on both backends."""
    rng = np.random.default_rng(8)
    cell = make_cell("lstm", 3, "float32")
    python, numba = both_backends(lambda backend: rl.RNN(cell, return_state=True, backend=backend))
    x, s0 = rng.standard_normal((2, 5, 2)), [rng.standard_normal((2, 3)).astype("float32"), rng.standard_normal((2, 3))]
    got, want = numba(x, initial_state=s0), python(x, initial_state=s0)
    assert all(g.dtype == np.float32 for g in got)
    assert_all_close(got, want, "float32", "mixed dtypes")


def test_import_compiles_nothing():
    """``import rnnlab`` loads no numba; importing the backend creates dispatchers but compiles nothing."""
    code = ("import sys, rnnlab; assert 'numba' not in sys.modules; "
            "import rnnlab.backends.numba.host; "
            "from rnnlab.cells.gru import cpu as gru_cpu; from rnnlab.cells.lstm import cpu as lstm_cpu; "
            "from rnnlab.cells.simple_rnn import cpu as simple_rnn_cpu; "
            "print(sum(len(k.signatures) for k in (lstm_cpu.forward, lstm_cpu.backward, "
            "gru_cpu.forward_reset_after, simple_rnn_cpu.forward)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "0"


# -- threads and the memory pool --------------------------------------------------------------------


@pytest.mark.parametrize("threads", ["sample_blocks", "blas"])
@pytest.mark.parametrize("kind", ["lstm", "gru", "gru_reset_before", "stacked"])
def test_threaded_runs_equal_python(kind, threads, monkeypatch):
    """Blocks of samples in threads (forced on for small shapes), or BLAS threads: the same numbers."""
    from rnnlab.backends.numba import host as numba_backend

    monkeypatch.setattr(numba_backend, "BLOCK_MIN_FLOPS", 0)
    monkeypatch.setattr(numba_backend, "THREADS", 3)  # uneven blocks of the 5 samples
    if threads == "blas":
        monkeypatch.setattr(numba_backend, "BLAS_THREADS_MIN_BYTES", 0)
    rng = np.random.default_rng(9)
    cell = make_cell(kind, 4, "float64")
    layers = both_backends(lambda backend: rl.RNN(cell, return_sequences=True, return_state=True, backend=backend))
    run_and_compare(layers, rng.standard_normal((5, 7, 3)), "float64", mask=random_mask(rng, 5, 7))


def test_reused_memory_never_overwrites_a_live_tape(monkeypatch):
    """The pool hands an array out again only when nothing refers to it any more."""
    from rnnlab.backends.numba import host as numba_backend

    monkeypatch.setattr(numba_backend.Memory, "MIN_BYTES", 0)  # pool even these small arrays
    rng = np.random.default_rng(10)
    cell = make_cell("lstm", 4, "float64")
    python, numba = both_backends(lambda backend: rl.RNN(cell, return_sequences=True, backend=backend))
    x1, x2 = rng.standard_normal((2, 5, 3)), rng.standard_normal((2, 5, 3))
    dy = rng.standard_normal((2, 5, 4))
    y1, tape1 = rl.bptt.forward(numba, x1)
    y1_copy, states1 = y1.copy(), [s.copy() for s in tape1.states]
    for _ in range(3):  # same shapes: these calls would reuse tape1's arrays if the pool were careless
        y2, tape2 = rl.bptt.forward(numba, x2)
        rl.bptt.backward(tape2, dy)
    np.testing.assert_array_equal(y1, y1_copy)
    for got, want in zip(tape1.states, states1):
        np.testing.assert_array_equal(got, want)
    reference = rl.bptt.backward(rl.bptt.forward(python, x1)[1], dy)
    assert_all_close(rl.bptt.backward(tape1, dy).weights, reference.weights, "float64", "weights")
    assert_close(y2, python(x2), "float64", "second call")
