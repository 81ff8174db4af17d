"""minGRU and minLSTM (Feng et al. 2024): what the tests over every cell kind do not already check.

Those tests (CELL_KINDS, kinds_on) compare every backend with naive.py, check
gradients and Jacobians against finite differences, and run the analyses.
Here: the activation g, the minLSTM's normalisation, the diagonal recurrence,
training, save/load and the gate names on the tape.
"""

import numpy as np
import pytest

import naive
import rnnlab as rl
from rnnlab import activations
from rnnlab import analysis as an

MIN_CELLS = [rl.MinGRUCell, rl.MinLSTMCell]


def test_g_is_the_papers_positive_activation_with_its_derivative():
    g = activations.get("g")
    x = np.array([-30.0, -2.0, -0.3, 0.0, 0.4, 3.0])
    np.testing.assert_allclose(g(x), [naive.ACTIVATIONS["g"](v) for v in x], rtol=1e-15)
    assert np.all(g(x) > 0) and g(np.array([0.0]))[0] == 0.5  # positive, and continuous at 0
    away = x[x != 0]  # its derivative jumps at 0 (1/4 below, 1 above)
    eps = 1e-6
    numeric = (g(away + eps) - g(away - eps)) / (2 * eps)
    np.testing.assert_allclose(g.grad(away, g(away)), numeric, rtol=1e-8, atol=1e-12)
    assert g(np.array([1.0], "float32")).dtype == np.float32
    assert activations.serialize(g) == "g"


@pytest.mark.parametrize("cls", MIN_CELLS)
@pytest.mark.parametrize("activation", ["linear", "g", "tanh"])
def test_numba_runs_every_candidate_activation_as_python_does(cls, activation, rng):
    cell = cls(3, activation=activation, dtype="float64", seed=0, bias_initializer="normal")
    x = 2 * rng.normal(size=(2, 5, 4))  # both halves of g
    y = {}
    for backend in ("python", "numba"):
        out, tape = rl.bptt.forward(rl.RNN(cell, return_sequences=True, backend=backend), x)
        y[backend] = (out, rl.bptt.backward(tape, np.ones_like(out)).weights)
    np.testing.assert_allclose(y["numba"][0], y["python"][0], rtol=1e-12, atol=1e-13)
    for a, b in zip(y["numba"][1], y["python"][1]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_min_lstm_gates_are_normalised_and_mix_h_with_the_candidate(rng):
    """f' + i' = 1: h' lies between h and the candidate, and dh'/dh = diag(f')."""
    cell = rl.MinLSTMCell(4, dtype="float64", seed=1, bias_initializer="normal")
    cell.build((None, 3))
    x, h = rng.normal(size=(5, 3)), rng.normal(size=(5, 4))
    _, [h_new], cache = cell.forward(x, [h])
    np.testing.assert_allclose(cache["f_norm"] + cache["i_norm"], 1, rtol=1e-15)
    np.testing.assert_allclose(h_new - cache["hh"], cache["f_norm"] * (h - cache["hh"]), atol=1e-15)
    J = an.step_jacobians(cell, x, h).state
    np.testing.assert_allclose(J, an.jacobians.diag(cache["f"] / (cache["f"] + cache["i"])), atol=1e-15)


@pytest.mark.parametrize("cls", MIN_CELLS)
def test_lyapunov_exponents_add_up_to_the_mean_log_forget_factors(cls, rng):
    """The step Jacobian is diag(a_t), a_t = 1 - z or f', in (0, 1) and free of h: every exponent is
    negative, and their sum is the time average of log det = sum_j log a_t[j]."""
    cell = cls(3, dtype="float64", seed=2, bias_initializer="normal")
    cell.build((None, 2))
    x = rng.normal(size=(60, 2))
    exponents = an.lyapunov_spectrum(cell, x, discard=10)
    a = np.array([np.diagonal(an.step_jacobians(cell, x_t, np.zeros(3)).state) for x_t in x[10:]])
    assert np.all(exponents < 0)
    np.testing.assert_allclose(exponents.sum(), np.log(a).sum(axis=1).mean(), rtol=1e-12)


@pytest.mark.parametrize("backend", ["python", "numba"])
@pytest.mark.parametrize("cls", MIN_CELLS)
def test_gate_names_on_the_tape(cls, backend, rng):
    cell = cls(3, seed=0)
    _, tape = rl.bptt.forward(rl.RNN(cell, backend=backend), rng.normal(size=(2, 4, 2)).astype("float32"))
    assert tuple(tape.gates) == cls.gate_names
    assert all(gate.shape == (4, 2, 3) for gate in tape.gates.values())


@pytest.mark.parametrize("cls", MIN_CELLS)
def test_fit_on_the_adding_problem_lowers_the_loss(cls):
    data = rl.tasks.adding_problem(64, 20, seed=0)
    model = rl.Sequential([rl.RNN(cls(8, seed=0)), rl.Dense(1, seed=1)], loss="mse",
                          optimizer=rl.optimizers.Adam(0.02))
    history = model.fit(data.x, data.y, epochs=15, batch_size=32, seed=0, verbose=False)
    assert history.epoch_loss[-1] < 0.5 * history.epoch_loss[0]


@pytest.mark.parametrize("cls", MIN_CELLS)
def test_save_load_round_trip(cls, tmp_path, rng):
    layer = rl.RNN(cls(3, activation="g", use_bias=False, seed=3, kernel_initializer="normal"),
                   return_sequences=True)
    x = rng.normal(size=(2, 4, 2)).astype("float32")
    before = layer(x)
    rl.save(layer, tmp_path / "layer.npz")
    loaded = rl.load(tmp_path / "layer.npz")
    assert loaded.cell.get_config() == layer.cell.get_config() and len(loaded.cell.get_weights()) == 1
    np.testing.assert_array_equal(loaded(x), before)


def test_not_in_the_spectral_radius_menu_but_in_the_model_menu():
    """No recurrent kernel, so no spectral radius to set; the model menus list them."""
    from rnnlab import interactive, models

    assert not {"MinGRU", "MinLSTM"} & set(interactive.cells())
    assert models.cell_class("MinGRU") is rl.MinGRUCell and models.cell_class("MinLSTM") is rl.MinLSTMCell
    with pytest.raises(TypeError, match="square blocks"):
        an.recurrent_eigenvalues(rl.MinGRUCell(2))
