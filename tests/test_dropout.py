"""Dropout and recurrent dropout as tf.keras 2 applies them, on every backend.

The references are naive.py's one-sample steps with the masks multiplied in
by hand, and central finite differences with the masks held fixed.
"""

import numpy as np
import pytest

import naive
import rnnlab as rl
from finite_differences import numeric_gradient, probe_loss, relative_error
from conftest import make_cell

KINDS = ["simple", "gru", "gru_reset_before", "lstm"]


def masks(rng, batch, features, units, rate=0.4):
    keep = lambda shape: (rng.random(shape) >= rate) / (1 - rate)
    return keep((batch, features)), keep((batch, units))


def naive_outputs(cell, x, m_x, m_h):
    """Outputs (B, T, U) of naive.py's step, one sample at a time with its own masks."""
    config = {**cell.get_config(), **{name: getattr(cell, name).name
                                      for name in ("activation", "recurrent_activation") if hasattr(cell, name)}}
    weights = [w.astype(np.float64) for w in cell.get_weights()]
    outputs = []
    for b in range(x.shape[0]):
        step = naive.DROPOUT_REFERENCES[type(cell).__name__](config, weights, m_x[b], m_h[b])
        states = [np.zeros((1, cell.units)) for _ in rl.nest.flatten(cell.state_size)]
        outputs.append(naive.run_sequence(step, x[b : b + 1], states)[0][0])
    return np.array(outputs)


@pytest.mark.parametrize("kind", KINDS)
def test_training_false_or_rate_zero_equals_no_dropout(kind, rng):
    x = rng.normal(size=(3, 5, 2))
    plain = rl.RNN(make_cell(kind, 4), return_sequences=True, backend="python")
    expected = plain(x)
    with_dropout = rl.RNN(make_cell(kind, 4, dropout=0.5, recurrent_dropout=0.5), return_sequences=True,
                          backend="python")
    for training in (None, False):
        assert np.array_equal(with_dropout(x, training=training), expected)
    rates_zero = rl.RNN(make_cell(kind, 4, dropout=0.0, recurrent_dropout=0.0), return_sequences=True,
                        backend="python")
    y, tape = rl.bptt.forward(rates_zero, x, training=True)
    assert tape.dropout is None and np.array_equal(y, expected)


@pytest.mark.parametrize("kind", KINDS)
def test_given_masks_match_the_naive_step(kind, rng):
    cell = make_cell(kind, 4, dropout=0.3, recurrent_dropout=0.3)
    x = rng.normal(size=(3, 5, 2))
    m_x, m_h = masks(rng, 3, 2, 4)
    y = rl.RNN(cell, return_sequences=True, backend="python")(x, training=True, dropout_mask=m_x,
                                                              recurrent_dropout_mask=m_h)
    np.testing.assert_allclose(y, naive_outputs(cell, x, m_x, m_h), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_drawn_masks_are_constant_over_time_seeded_and_drop_the_rate(kind, rng):
    cell = make_cell(kind, 40, dropout=0.25, recurrent_dropout=0.5, seed=3)
    layer = rl.RNN(cell, return_sequences=True)
    x = rng.normal(size=(50, 4, 30))
    y, tape = rl.bptt.forward(layer, x, training=True)
    m_x, m_h = tape.dropout.inputs, tape.dropout.recurrent
    assert m_x.shape == (50, 30) and m_h.shape == (50, 40)
    for m, rate in ((m_x, 0.25), (m_h, 0.5)):
        assert set(np.unique(m)) <= {0.0, 1 / (1 - rate)}
        assert abs(np.mean(m == 0) - rate) < 0.04
    # one mask for every step: the naive steps with these masks, the same at every step, give y
    np.testing.assert_allclose(y, naive_outputs(cell, x, m_x, m_h), rtol=1e-12, atol=1e-13)
    # the next call draws new masks; the same seed draws the same ones again
    assert not np.array_equal(rl.bptt.forward(layer, x, training=True)[1].dropout.inputs, m_x)
    again = rl.RNN(make_cell(kind, 40, dropout=0.25, recurrent_dropout=0.5, seed=3), return_sequences=True)
    assert np.array_equal(rl.bptt.forward(again, x, training=True)[1].dropout.inputs, m_x)


@pytest.mark.parametrize("backend", ["python", "numba"])
@pytest.mark.parametrize("kind", KINDS)
def test_bptt_equals_finite_differences_with_masks_held_fixed(kind, backend, rng):
    cell = make_cell(kind, 3, dropout=0.4, recurrent_dropout=0.4)
    layer = rl.RNN(cell, return_sequences=True, return_state=True, backend=backend)
    x = rng.normal(size=(2, 4, 2))
    s0 = [rng.normal(size=(2, 3)) for _ in rl.nest.flatten(cell.state_size)]
    m_x, m_h = masks(rng, 2, 2, 3)
    run = lambda: layer(x, s0, training=True, dropout_mask=m_x, recurrent_dropout_mask=m_h)
    result = run()
    probes = [rng.normal(size=a.shape) for a in rl.nest.flatten(result)]
    y, tape = rl.bptt.forward(layer, x, s0, training=True, dropout_mask=m_x, recurrent_dropout_mask=m_h)
    assert tape.backend == backend
    grads = rl.bptt.backward(tape, rl.nest.pack_sequence_as(y, probes))
    loss = lambda: probe_loss(probes, run())
    for analytic, array in [*zip(grads.weights, cell.weights), (grads.inputs, x), *zip(grads.initial_state, s0)]:
        assert relative_error(analytic, numeric_gradient(loss, array)) < 1e-6


def python_and_numba(kind, dtype, x, m_x, m_h, mask=None, truncate=None, **options):
    """[outputs and states, gradients of the weights, inputs and initial states] on each backend, same masks."""
    batch, units = m_h.shape
    results = []
    for backend in ("python", "numba"):
        cell = make_cell(kind, units, dtype, dropout=0.5, recurrent_dropout=0.5)
        layer = rl.RNN(cell, return_sequences=True, return_state=True, backend=backend, **options)
        s0 = [np.random.default_rng(2).normal(size=(batch, units)).astype(dtype)
              for _ in rl.nest.flatten(cell.state_size)]
        y, tape = rl.bptt.forward(layer, x, s0, mask, training=True, dropout_mask=m_x, recurrent_dropout_mask=m_h)
        assert tape.backend == backend
        leaves = rl.nest.flatten(y)
        dy = [np.random.default_rng(5).normal(size=a.shape).astype(dtype) for a in leaves]
        g = rl.bptt.backward(tape, rl.nest.pack_sequence_as(y, dy), truncate=truncate)
        results.append([*leaves, *g.weights, g.inputs, *g.initial_state])
    return results


def assert_backends_agree(results, dtype):
    tolerance = 1e-10 if dtype == "float64" else 1e-5
    for python, numba in zip(*results):
        np.testing.assert_allclose(numba, python, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("batch, steps, features, units", [(3, 6, 2, 4), (1, 1, 1, 1), (2, 1, 3, 5), (1, 7, 5, 3)])
@pytest.mark.parametrize("kind", KINDS)
def test_numba_equals_python_with_both_masks(kind, batch, steps, features, units, dtype):
    rng = np.random.default_rng(batch * 100 + steps)
    x = rng.normal(size=(batch, steps, features)).astype(dtype)
    m_x, m_h = (m.astype(dtype) for m in masks(rng, batch, features, units))
    assert_backends_agree(python_and_numba(kind, dtype, x, m_x, m_h), dtype)


@pytest.mark.parametrize("options", [dict(go_backwards=True, truncate=2), dict(zero_output_for_mask=True),
                                     dict(time_major=True, truncate=3)])
@pytest.mark.parametrize("kind", KINDS)
def test_numba_equals_python_with_masks_sequence_masks_and_truncation(kind, options, rng):
    options = dict(options)
    truncate = options.pop("truncate", None)
    x = rng.normal(size=(3, 7, 2))
    m_x, m_h = masks(rng, 3, 2, 5)
    mask = np.ones((3, 7), bool)
    mask[0, 4:], mask[1, :2], mask[2, 3] = False, False, False
    if options.get("time_major"):
        x, mask = x.transpose(1, 0, 2), mask.T
    assert_backends_agree(python_and_numba(kind, "float64", x, m_x, m_h, mask, truncate, **options), "float64")


@pytest.mark.parametrize("kind", KINDS)
def test_auto_runs_recurrent_dropout_on_numba(kind, rng):
    """(The CUDA kernels take the masks too: tests/cuda/test_cuda_kernels.py compares them with python.)"""
    x = rng.normal(size=(3, 6, 2))
    auto = rl.RNN(make_cell(kind, 4, recurrent_dropout=0.5), backend="auto")
    assert rl.bptt.forward(auto, x, training=True)[1].backend == "numba"
    assert rl.bptt.forward(auto, x)[1].backend == "numba"


def test_bad_rates_masks_and_cells_are_refused(rng):
    for rate in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match=r"in \[0, 1\)"):
            rl.LSTMCell(3, dropout=rate)
        with pytest.raises(ValueError, match=r"in \[0, 1\)"):
            rl.GRUCell(3, recurrent_dropout=rate)
    layer = rl.RNN(rl.GRUCell(3, dropout=0.5, seed=0))
    x = rng.normal(size=(2, 4, 5)).astype("float32")
    with pytest.raises(ValueError, match=r"\(2, 5\), got \(2, 4\)"):
        layer(x, training=True, dropout_mask=np.ones((2, 4), "float32"))
    with pytest.raises(ValueError, match=r"\(2, 3\), got \(3, 3\)"):
        layer(x, training=True, recurrent_dropout_mask=np.ones((3, 3), "float32"))
    with pytest.raises(ValueError, match="only with training=True"):
        layer(x, dropout_mask=np.ones((2, 5), "float32"))
    with pytest.raises(TypeError, match="training must be"):
        layer(x, training="yes")
    with pytest.raises(ValueError, match="takes no dropout masks"):
        rl.RNN(rl.MinGRUCell(3))(x, training=True, dropout_mask=np.ones((2, 5), "float32"))
    with pytest.raises(ValueError, match="dropout inside StackedRNNCells"):
        rl.StackedRNNCells([rl.LSTMCell(3, dropout=0.2), rl.GRUCell(2)])
    assert not layer.built  # a refused call builds nothing


def test_config_and_save_load_round_trip(tmp_path, rng):
    cell = rl.GRUCell(3, dropout=0.25, recurrent_dropout=0.5, reset_after=False, seed=1)
    clone = rl.GRUCell.from_config(cell.get_config())
    assert (clone.dropout, clone.recurrent_dropout) == (0.25, 0.5)
    layer = rl.RNN(cell)
    x = rng.normal(size=(2, 3, 4)).astype("float32")
    layer(x)
    rl.save(layer, tmp_path / "gru.rnnlab")
    loaded = rl.load(tmp_path / "gru.rnnlab")
    assert (loaded.cell.dropout, loaded.cell.recurrent_dropout) == (0.25, 0.5)
    assert np.array_equal(loaded(x), layer(x))


def test_fit_trains_with_dropout_and_evaluate_predict_without(rng):
    x = rng.normal(size=(8, 5, 3))
    y = rng.normal(size=(8, 2))
    model = rl.Sequential([rl.RNN(rl.LSTMCell(6, dropout=0.5, recurrent_dropout=0.5, seed=0, dtype="float64")),
                           rl.Dense(2, dtype="float64", seed=0)], loss="mse", optimizer=rl.optimizers.SGD(1e-300))
    assert np.array_equal(model.predict(x), model.predict(x))  # no dropout: the same twice
    evaluated = model.evaluate(x, y)["loss"]
    history = model.fit(x, y, epochs=3, batch_size=8, shuffle=False)
    train_losses = history.loss
    # a learning rate below any rounding: the weights never move, so only dropout can make the training losses differ
    assert len(set(train_losses)) == 3 and evaluated not in train_losses
    assert model.evaluate(x, y)["loss"] == evaluated
