"""backend="cuda" against the readable cells (the python backend): forward, BPTT, tape.

Tiny shapes, because the simulator runs every GPU thread as a Python thread.
Each case runs once per schedule: "persistent" (one launch for all steps) and
"tiled" (one launch per step; the reset_after=False GRU is always persistent).
"""

import numpy as np
import pytest

import rnnlab as rl
from conftest import kinds_on, make_cell
from rnnlab.backends.cuda import device as cuda_device
from rnnlab.backends.cuda import host as cuda_host

_problem = cuda_device.availability_problem()
if _problem is not None:  # runs on a GPU, or in the simulator (tests/test_cuda_simulator.py)
    pytest.skip(f"CUDA kernels cannot run here: {_problem}", allow_module_level=True)

KINDS = kinds_on("cuda")
PATHS = ["persistent", "tiled"]
TOL = {"float32": dict(rtol=2e-4, atol=2e-5), "float64": dict(rtol=1e-10, atol=1e-12)}


def cases(kinds=KINDS):
    return [(k, p) for k in kinds for p in PATHS if not (k == "gru_reset_before" and p == "tiled")]


def both(kind, units, dtype, seed=0, **layer_options):
    """The same cell in a python layer and a cuda layer."""
    cell = make_cell(kind, units, dtype, seed=seed)
    python = rl.RNN(cell, backend="python", **layer_options)
    cuda = rl.RNN(cell, backend="cuda", **layer_options)
    return cell, python, cuda


def assert_close(actual, expected, dtype, what):
    np.testing.assert_allclose(actual, expected, err_msg=what, **TOL[dtype])


def compare(python, cuda, x, dtype, initial_state=None, mask=None, truncate=None, per_step=True, seed=1,
            path="persistent", rows=None, dropout_mask=None, recurrent_dropout_mask=None):
    rng = np.random.default_rng(seed)
    masks = dict(dropout_mask=dropout_mask, recurrent_dropout_mask=recurrent_dropout_mask)
    training = True if dropout_mask is not None or recurrent_dropout_mask is not None else None
    y_ref, tape_ref = rl.bptt.forward(python, x, initial_state, mask, training=training, **masks)
    with cuda_device.options(path=path, rows_per_block=rows):
        y, tape = rl.bptt.forward(cuda, x, initial_state, mask, training=training, **masks)
        leaves = rl.nest.flatten(y) if isinstance(y, list) else [y]  # a stack's states come nested
        dy = [rng.normal(size=a.shape).astype(dtype) for a in leaves]
        dy = rl.nest.pack_sequence_as(y, dy) if isinstance(y, list) else dy[0]
        grads = rl.bptt.backward(tape, dy, truncate=truncate, per_step=per_step)
    ref = rl.bptt.backward(tape_ref, dy, truncate=truncate, per_step=per_step)
    for k, (a, b) in enumerate(zip(leaves, rl.nest.flatten(y_ref) if isinstance(y_ref, list) else [y_ref])):
        assert a.dtype == np.dtype(dtype)
        assert_close(a, b, dtype, f"output {k}")
    for k, (a, b) in enumerate(zip(tape.states, tape_ref.states)):
        assert_close(a, b, dtype, f"tape.states[{k}]")
    gates_ref = tape_ref.gates
    assert set(tape.gates) == set(gates_ref)
    for name in gates_ref:
        assert_close(tape.gates[name], gates_ref[name], dtype, f"gate {name}")
    for k, (a, b) in enumerate(zip(grads.weights, ref.weights)):
        assert a.shape == b.shape and a.dtype == np.dtype(dtype)
        assert_close(a, b, dtype, f"grads.weights[{k}]")
    assert_close(grads.inputs, ref.inputs, dtype, "grads.inputs")
    for k, (a, b) in enumerate(zip(grads.initial_state, ref.initial_state)):
        assert_close(a, b, dtype, f"grads.initial_state[{k}]")
    for k, (a, b) in enumerate(zip(grads.state_grads, ref.state_grads)):
        assert_close(a, b, dtype, f"grads.state_grads[{k}]")
    if per_step:
        for k, (a, b) in enumerate(zip(grads.weights_per_step, ref.weights_per_step)):
            assert_close(a, b, dtype, f"grads.weights_per_step[{k}]")
    return tape


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind,path", cases())
def test_full_bptt_with_mask_and_initial_state(kind, path, dtype):
    """B=3 with two rows per persistent block: a full block and a partial one."""
    cell, python, cuda = both(kind, 3, dtype, return_sequences=True, return_state=True)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 3, 2)).astype(dtype)
    mask = np.array([[1, 1, 1], [0, 1, 1], [1, 0, 1]], bool)
    initial = [rng.normal(size=(3, 3)).astype(dtype) * 0.5 for _ in rl.nest.flatten(cell.state_size)]
    tape = compare(python, cuda, x, dtype, initial, mask, path=path, rows=2)
    assert tape.backend == "cuda"


@pytest.mark.parametrize("kind,path", cases())
def test_truncated_bptt_zero_output_for_mask(kind, path):
    _, python, cuda = both(kind, 3, "float64", return_sequences=True, zero_output_for_mask=True)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 4, 2))
    mask = np.array([[1, 0, 1, 1], [1, 1, 0, 1]], bool)
    compare(python, cuda, x, "float64", mask=mask, truncate=2, path=path)


@pytest.mark.parametrize("kind", KINDS)
def test_go_backwards_time_major_last_output(kind):
    _, python, cuda = both(kind, 2, "float32", go_backwards=True, time_major=True)
    x = np.random.default_rng(3).normal(size=(3, 2, 2)).astype("float32")  # (T, B, F)
    compare(python, cuda, x, "float32", per_step=False)


@pytest.mark.parametrize("kind", [k for k in KINDS if make_cell(k, 1).takes_dropout])
def test_input_dropout_mask(kind):
    """The host multiplies x by the (B, F) mask before the projection, as the cell does."""
    _, python, cuda = both(kind, 2, "float64", return_sequences=True)
    rng = np.random.default_rng(6)
    x = rng.normal(size=(2, 3, 3))
    dropout_mask = (rng.random((2, 3)) >= 0.5) / 0.5
    tape = compare(python, cuda, x, "float64", dropout_mask=dropout_mask)
    assert tape.dropout.inputs is not None and tape.backend == "cuda"


DROPOUT_CASES = [(k, p, "float64" if p == "persistent" else "float32")
                 for k, p in cases([k for k in KINDS if make_cell(k, 1).takes_dropout])]
DROPOUT_CASES.append(("gru_reset_before", "persistent", "float32"))  # its own kernels have no tiled path


@pytest.mark.parametrize("kind,path,dtype", DROPOUT_CASES)
def test_both_dropout_masks_with_a_sequence_mask_backwards(kind, path, dtype):
    """The recurrent mask (B, U) multiplies h in every product with R, and the gradient back through it.

    B=3 with two rows per persistent block; a masked step, and go_backwards.  Each path
    in one dtype, to keep the simulator's time down.
    """
    cell, python, cuda = both(kind, 3, dtype, return_sequences=True, return_state=True, go_backwards=True)
    rng = np.random.default_rng(8)
    x = rng.normal(size=(3, 3, 2)).astype(dtype)
    mask = np.array([[1, 1, 1], [1, 0, 1], [0, 1, 1]], bool)
    initial = [rng.normal(size=(3, 3)).astype(dtype) for _ in rl.nest.flatten(cell.state_size)]
    dropout_mask = ((rng.random((3, 2)) >= 0.5) / 0.5).astype(dtype)
    recurrent_dropout_mask = ((rng.random((3, 3)) >= 0.4) / 0.6).astype(dtype)
    tape = compare(python, cuda, x, dtype, initial, mask, path=path, rows=2, dropout_mask=dropout_mask,
                   recurrent_dropout_mask=recurrent_dropout_mask)
    assert tape.dropout.recurrent is not None and tape.backend == "cuda"


@pytest.mark.parametrize("kind", KINDS)
def test_one_step_one_sample_one_unit(kind):
    _, python, cuda = both(kind, 1, "float64", return_sequences=True, return_state=True)
    x = np.random.default_rng(4).normal(size=(1, 1, 1))
    compare(python, cuda, x, "float64")


def test_layer_call_and_bidirectional():
    cell = make_cell("lstm", 2, "float32")
    x = np.random.default_rng(5).normal(size=(2, 3, 2)).astype("float32")
    python = rl.Bidirectional(rl.RNN(cell, return_sequences=True, backend="python"))
    cuda = rl.Bidirectional(rl.RNN(cell, return_sequences=True, backend="cuda"))
    python.ensure_built(x.shape)
    cuda.ensure_built(x.shape)
    cuda.set_weights(python.get_weights())
    np.testing.assert_allclose(cuda(x), python(x), **TOL["float32"])


def test_stateful_layer_carries_states():
    cell = make_cell("gru", 2, "float64")
    python = rl.RNN(cell, stateful=True, backend="python")
    cuda = rl.RNN(cell, stateful=True, backend="cuda")
    x = np.random.default_rng(6).normal(size=(2, 2, 2))
    for _ in range(2):
        np.testing.assert_allclose(cuda(x), python(x), **TOL["float64"])


def test_unsupported_activation_is_a_clear_error():
    layer = rl.RNN(rl.SimpleRNNCell(2, activation="relu"), backend="cuda")
    with pytest.raises(ValueError, match="tanh"):
        layer(np.zeros((1, 2, 2), "float32"))
    lstm = rl.LSTMCell(2, recurrent_activation="relu")
    assert "sigmoid" in cuda_host.unsupported(lstm)
    assert cuda_host.unsupported(rl.LSTMCell(2)) is None
    assert cuda_host.unsupported(rl.LSTMCell(2, recurrent_activation="hard_sigmoid")) is None


@pytest.mark.parametrize("gate", ["hard_sigmoid", "hard_sigmoid_keras3"])
@pytest.mark.parametrize("kind", ["lstm", "gru", "gru_reset_before"])
def test_gates_with_a_hard_sigmoid(kind, gate):
    """tf.keras 2's hard sigmoid and Keras 3's as recurrent activation, some gates clipped."""
    cell = make_cell(kind, 3, "float64", recurrent_activation=gate)
    python, cuda = (rl.RNN(cell, return_sequences=True, return_state=True, backend=backend)
                    for backend in ("python", "cuda"))
    x = np.random.default_rng(4).normal(size=(2, 4, 2)) * 4
    tape = compare(python, cuda, x, "float64", mask=np.array([[1, 1, 0, 1], [1, 0, 1, 1]], bool))
    assert any(np.isin(tape.gates[name], (0.0, 1.0)).any() for name in tape.gates if name != "g")


def test_auto_never_picks_cuda():
    assert rl.backends.resolve("auto", rl.LSTMCell(2)) in ("numba", "python")


class _NumpyCupy:
    """A NumPy stand-in for CuPy in the simulator, where device arrays wrap NumPy arrays.

    It lets the CuPy code paths of the CUDA Device (cuBLAS GEMMs, the memory pool)
    run here and be compared with the python backend; on a GPU with CuPy they
    run for real in every test above.
    """

    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def asarray(array):
        return getattr(array, "_ary", array)  # the simulator's FakeCUDAArray shares its NumPy array


@pytest.mark.skipif(not cuda_device.simulator_active(), reason="the real CuPy paths run on a GPU")
@pytest.mark.parametrize("kind", ["gru", "gru_reset_before"])
def test_cupy_code_paths_with_a_numpy_stand_in(kind, monkeypatch):
    from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray

    device = cuda_device.get_device()
    monkeypatch.setattr(device, "_cupy", _NumpyCupy())
    monkeypatch.setattr(device, "_cupy_checked", True)
    monkeypatch.setattr(cuda_device, "simulator_active", lambda: False)
    monkeypatch.setattr(type(device), "_wrap", lambda self, array: FakeCUDAArray(array))
    _, python, cuda = both(kind, 3, "float64", return_sequences=True, return_state=True)
    x = np.random.default_rng(7).normal(size=(2, 3, 2))
    compare(python, cuda, x, "float64", mask=np.array([[1, 1, 0], [1, 1, 1]], bool), truncate=2)
