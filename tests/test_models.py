"""Sequential: end-to-end gradients against finite differences, weights, saving, atomic steps; the char model."""

import numpy as np
import pytest

import rnnlab as rl
from finite_differences import numeric_gradient, relative_error
from rnnlab.text_model import CharModel, sample, temperature_softmax

F64 = dict(dtype="float64")


def lstm_dense():
    """One LSTM reading the whole sequence, a tanh readout of the last output, mse."""
    return rl.Sequential([rl.RNN(rl.LSTMCell(3, seed=0, bias_initializer="normal", **F64), backend="python"),
                          rl.Dense(2, activation="tanh", seed=1, **F64)], loss="mse")


def stacked_classifier():
    """GRU -> SimpleRNN -> Dense logits at every step, cross-entropy."""
    return rl.Sequential([
        rl.RNN(rl.GRUCell(3, seed=2, bias_initializer="normal", **F64), return_sequences=True, backend="python"),
        rl.RNN(rl.SimpleRNNCell(4, seed=3, bias_initializer="normal", **F64), return_sequences=True,
               backend="python"),
        rl.Dense(5, seed=4, **F64),
    ], loss="cross_entropy")


def bidirectional_regressor():
    """Bidirectional LSTM (concat) -> GRU (last output) -> Dense, mse."""
    return rl.Sequential([
        rl.Bidirectional(rl.RNN(rl.LSTMCell(2, seed=5, **F64), return_sequences=True, backend="python")),
        rl.RNN(rl.GRUCell(3, reset_after=False, seed=6, **F64), backend="python"),
        rl.Dense(1, seed=7, **F64),
    ], loss="mse")


def problem(model, rng, batch=3, time=5, features=2, with_mask=False):
    """Random x, targets of the right kind for the model's loss, and an optional loss mask."""
    x = rng.normal(size=(batch, time, features))
    positions = (batch, time) if model.return_sequences else (batch,)
    if model.loss == "cross_entropy":
        y = rng.integers(0, model.readout.units, size=positions)
    else:
        y = rng.normal(size=positions + (model.readout.units,))
    mask = None
    if with_mask:
        mask = rng.random(positions) < 0.7
        mask[0] = True  # at least one position counts
        mask[-1, -1] = False
    return x, y, mask


@pytest.mark.parametrize("make, with_mask", [(lstm_dense, False), (stacked_classifier, True),
                                             (stacked_classifier, False), (bidirectional_regressor, False)])
def test_end_to_end_gradients_match_finite_differences(make, with_mask, rng):
    model = make()
    x, y, mask = problem(model, rng, with_mask=with_mask)
    loss, grads = model.loss_and_gradients(x, y, mask)
    # The reference loss goes through the ordinary layer calls, not the BPTT tapes.
    weights = [w for layer in model.layers for w in layer.weights]  # the live arrays, perturbed in place
    assert len(grads) == len(weights) == len(model.get_weights())
    objective = lambda: model.evaluate(x, y, mask)["loss"]
    assert loss == pytest.approx(objective(), rel=1e-12)
    for k, (w, g) in enumerate(zip(weights, grads)):
        assert g.shape == w.shape
        assert relative_error(g, numeric_gradient(objective, w)) < 1e-6, f"weight {k}"


def test_masked_positions_do_not_affect_the_loss_or_gradients(rng):
    model = stacked_classifier()
    x, y, mask = problem(model, rng, with_mask=True)
    loss, grads = model.loss_and_gradients(x, y, mask)
    changed = np.where(mask, y, (y + 1) % 5)  # new targets where the mask is off
    loss2, grads2 = model.loss_and_gradients(x, changed, mask)
    assert loss == loss2
    for a, b in zip(grads, grads2):
        np.testing.assert_array_equal(a, b)


def test_evaluate_matches_the_definitions(rng):
    model = stacked_classifier()
    x, y, mask = problem(model, rng, with_mask=True)
    z = model.predict(x)  # (B, T, C) logits
    log_p = z - z.max(-1, keepdims=True)
    log_p = log_p - np.log(np.exp(log_p).sum(-1, keepdims=True))
    picked = np.take_along_axis(log_p, y[..., None], -1)[..., 0]
    result = model.evaluate(x, y, mask)
    assert result["loss"] == pytest.approx(-picked[mask].mean(), rel=1e-12)
    assert result["accuracy"] == pytest.approx((z.argmax(-1) == y)[mask].mean())

    regressor = lstm_dense()
    x, y, _ = problem(regressor, rng)
    assert regressor.evaluate(x, y) == {"loss": pytest.approx(np.mean((regressor.predict(x) - y) ** 2))}


def test_predict_chains_the_layers(rng):
    model = stacked_classifier()
    x = rng.normal(size=(2, 4, 2))
    expected = model.layers[2](model.layers[1](model.layers[0](x)))
    np.testing.assert_array_equal(model.predict(x), expected)
    assert model.predict(x).shape == (2, 4, 5)
    assert lstm_dense().predict(x).shape == (2, 2)


def test_weights_are_the_layers_weights_in_order(rng):
    model = bidirectional_regressor()
    model.ensure_built((None, None, 2))
    per_layer = [layer.get_weights() for layer in model.layers]
    flat = model.get_weights()
    assert [w.shape for w in flat] == [w.shape for ws in per_layer for w in ws]
    new = [rng.normal(size=w.shape) for w in flat]
    model.set_weights(new)
    for a, b in zip(model.get_weights(), new):
        np.testing.assert_array_equal(a, b)
    # A wrong list changes nothing, even when only the last array is wrong.
    bad = [w * 0 for w in new[:-1]] + [np.zeros(new[-1].shape + (1,))]
    with pytest.raises(ValueError):
        model.set_weights(bad)
    with pytest.raises(ValueError):
        model.set_weights(new[:-1])
    for a, b in zip(model.get_weights(), new):
        np.testing.assert_array_equal(a, b)


def test_parameter_count_and_summary(capsys):
    model = rl.Sequential([rl.RNN(rl.LSTMCell(4, seed=0), return_sequences=True), rl.RNN(rl.GRUCell(3, seed=1)),
                           rl.Dense(2, seed=2)])
    model.ensure_built((None, 5))
    lstm = 4 * (5 * 4 + 4 * 4 + 4)  # four gates, each with kernel, recurrent kernel and bias
    gru = 3 * (4 * 3 + 3 * 3) + 2 * 3 * 3  # reset_after: input and recurrent biases
    dense = 3 * 2 + 2
    assert model.count_params() == lstm + gru + dense
    model.summary()
    text = capsys.readouterr().out
    for piece in ("RNN(LSTMCell)", "(batch, time, 4)", str(lstm), "RNN(GRUCell)", "(batch, 3)", str(gru),
                  "Dense", "(batch, 2)", f"{lstm + gru + dense:,}"):
        assert piece in text
    assert "LSTMCell" in repr(model) and "Adam" in repr(model)


def test_failed_train_step_changes_nothing(rng):
    model = rl.Sequential([rl.RNN(rl.LSTMCell(3, seed=0)), rl.Dense(2, seed=1)],
                          optimizer=rl.optimizers.Adam(0.1, clipnorm=1.0))
    x = rng.normal(size=(4, 6, 2)).astype("float32")
    y = rng.normal(size=(4, 2)).astype("float32")
    model.train_step(x, y)  # so the optimizer has moments to protect
    weights = model.get_weights()
    slots = [{k: v.copy() for k, v in s.items()} for s in model.optimizer.slots]
    bad_calls = [
        (x, y[:, :1]),  # wrong number of target features
        (x, y[:3]),  # wrong batch
        (x, y[:, None]),  # a sequence target for a last-output model
        (x[..., :1], y),  # wrong number of input features
        (np.where(np.arange(6)[None, :, None] == 2, np.nan, x), y),  # NaN input
        (x, np.full_like(y, np.inf)),  # inf target
    ]
    for bad_x, bad_y in bad_calls:
        with pytest.raises(ValueError):
            model.train_step(bad_x, bad_y)
        assert model.optimizer.iterations == 1
        for a, b in zip(model.get_weights(), weights):
            np.testing.assert_array_equal(a, b)
        for s, old in zip(model.optimizer.slots, slots):
            for key in old:
                np.testing.assert_array_equal(s[key], old[key])


def test_an_update_that_would_overflow_changes_nothing(rng):
    model = rl.Sequential([rl.RNN(rl.GRUCell(3, seed=0)), rl.Dense(2, seed=1)],
                          optimizer=rl.optimizers.SGD(1e308, momentum=0.5))
    x = rng.normal(size=(4, 6, 2)).astype("float32")
    y = rng.normal(size=(4, 2)).astype("float32")
    model.ensure_built(x.shape)
    weights = model.get_weights()
    with pytest.raises(ValueError, match="NaN or inf"), np.errstate(over="ignore", invalid="ignore"):
        model.train_step(x, y)  # the float32 weights would become inf
    assert model.optimizer.iterations == 0 and model.optimizer.slots is None
    for a, b in zip(model.get_weights(), weights):
        np.testing.assert_array_equal(a, b)


def test_bad_targets_for_the_loss_name_the_expected_shape(rng):
    x = rng.normal(size=(4, 6, 2))
    classifier = rl.Sequential([rl.RNN(rl.GRUCell(3, seed=0), return_sequences=True), rl.Dense(5, seed=1)],
                               loss="cross_entropy")
    with pytest.raises(ValueError, match=r"integer class ids of shape \(batch, time\) = \(4, 6\)"):
        classifier.train_step(x, rng.normal(size=(4, 6)))
    with pytest.raises(ValueError, match=r"\(4, 6\)"):
        classifier.train_step(x, np.zeros((4, 6, 5), dtype=int))
    with pytest.raises(ValueError, match="loss mask"):
        classifier.train_step(x, np.zeros((4, 6), dtype=int), mask=np.ones((4, 5), bool))
    regressor = rl.Sequential([rl.RNN(rl.GRUCell(3, seed=0)), rl.Dense(1, seed=1)])
    with pytest.raises(ValueError, match=r"float targets of shape \(batch, 1\) = \(4, 1\)"):
        regressor.train_step(x, np.zeros(4))
    with pytest.raises(ValueError, match=r"\(batch, time, features\)"):
        regressor.predict(x[0])


def test_layer_list_is_checked():
    with pytest.raises(ValueError, match="return_sequences=True"):
        rl.Sequential([rl.RNN(rl.GRUCell(3)), rl.RNN(rl.GRUCell(3)), rl.Dense(1)])
    with pytest.raises(TypeError, match="Dense"):
        rl.Sequential([rl.RNN(rl.GRUCell(3)), rl.RNN(rl.GRUCell(3))])
    with pytest.raises(ValueError, match="dtype"):
        rl.Sequential([rl.RNN(rl.GRUCell(3, dtype="float64")), rl.Dense(1)])
    with pytest.raises(ValueError, match="return_state"):
        rl.Sequential([rl.RNN(rl.GRUCell(3), return_state=True), rl.Dense(1)])
    with pytest.raises(ValueError, match="unknown loss"):
        rl.Sequential([rl.RNN(rl.GRUCell(3)), rl.Dense(1)], loss="hinge")


def test_save_load_round_trip_gives_identical_predictions(tmp_path, rng):
    model = rl.Sequential([rl.RNN(rl.LSTMCell(4, seed=0), return_sequences=True),
                           rl.RNN(rl.GRUCell(3, seed=1), return_sequences=True), rl.Dense(5, seed=2)],
                          loss="cross_entropy", optimizer=rl.optimizers.RMSprop(0.05, clipvalue=0.5))
    x = rng.normal(size=(8, 7, 2)).astype("float32")
    y = rng.integers(0, 5, size=(8, 7))
    model.fit(x, y, epochs=3, batch_size=4, seed=0, verbose=False)
    model.save(tmp_path / "model.npz")
    for loaded in (rl.load(tmp_path / "model.npz"), rl.Sequential.load(tmp_path / "model.npz")):
        assert type(loaded) is rl.Sequential
        np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
        assert loaded.loss == "cross_entropy"
        assert loaded.optimizer.get_config() == model.optimizer.get_config()
        assert loaded.optimizer.iterations == 0  # the state is not saved: a fresh optimizer


def test_unbuilt_model_cannot_be_saved(tmp_path):
    with pytest.raises(ValueError, match="not built"):
        rl.Sequential([rl.RNN(rl.GRUCell(3)), rl.Dense(1)]).save(tmp_path / "m.npz")


# -- the character model ------------------------------------------------------------------


def test_temperature_softmax():
    z = np.array([1.0, 3.0, 2.0, -1.0])
    np.testing.assert_allclose(temperature_softmax(z, 1.0), np.exp(z) / np.exp(z).sum())
    np.testing.assert_allclose(temperature_softmax(z, 0.5), np.exp(2 * z) / np.exp(2 * z).sum())
    np.testing.assert_array_equal(temperature_softmax(z, 0), [0, 1, 0, 0])
    np.testing.assert_allclose(temperature_softmax(z, 1e-3), [0, 1, 0, 0], atol=1e-300)
    np.testing.assert_allclose(temperature_softmax(z, 1e6), np.full(4, 0.25), rtol=1e-5)
    with pytest.raises(ValueError):
        temperature_softmax(z, -1)


@pytest.fixture(scope="module")
def reber_model():
    """A small LSTM trained briefly on embedded Reber strings (about two seconds)."""
    text, vocab = rl.tasks.reber_text(2000, seed=0)
    model = CharModel(vocab, units=32, seed=0)
    model.fit_text(text, steps=300, seed=0, verbose=False)
    return model, text, vocab


# Reber's automaton as {state: {symbol: next state}}, written out again here as the test's reference.
REBER = {1: {"T": 2, "P": 3}, 2: {"S": 2, "X": 4}, 3: {"T": 3, "V": 5}, 4: {"X": 3, "S": 6}, 5: {"P": 4, "V": 6},
         6: {"E": None}}


def is_reber(string):
    if not string.startswith("B"):
        return False
    state = 1
    for position, symbol in enumerate(string[1:], start=1):
        if symbol not in REBER[state]:
            return False
        state = REBER[state][symbol]
        if state is None:
            return position == len(string) - 1
    return False


def is_embedded_reber(string):
    return (len(string) > 4 and string[0] == "B" and string[1] in "TP" and string[-2:] == string[1] + "E"
            and is_reber(string[2:-2]))


def test_char_model_learns_the_grammar(reber_model):
    model, text, vocab = reber_model
    held_out, _ = rl.tasks.reber_text(300, seed=1)
    data = rl.tasks.next_char(held_out, 200, 20, vocab=vocab, seed=2)
    counts = np.array([text.count(c) for c in vocab], dtype=float)
    unigram = -(counts / counts.sum() * np.log(counts / counts.sum())).sum()  # predict character frequencies
    assert model.evaluate(data.x, data.y)["loss"] < 0.5 * unigram
    # Most sampled strings follow the grammar (one per line).
    written = sample(model, "\n", 1500, temperature=0.5, seed=0)
    strings = written.split("\n")[:-1]  # the last line may be unfinished
    assert len(strings) > 20
    assert np.mean([is_embedded_reber(s) for s in strings]) > 0.9


def test_sampling_is_seeded_and_stays_in_the_vocabulary(reber_model):
    model, _, vocab = reber_model
    a = sample(model, "BT", 80, temperature=1.0, seed=3)
    assert len(a) == 80 and set(a) <= set(vocab)
    assert sample(model, "BT", 80, temperature=1.0, seed=3) == a
    assert sample(model, "BT", 80, temperature=1.0, seed=4) != a
    assert sample(model, "BT", 0, seed=3) == ""
    with pytest.raises(ValueError, match="not in this model's vocabulary"):
        sample(model, "BTQ", 5)


def test_zero_temperature_is_greedy_decoding(reber_model):
    model, _, vocab = reber_model
    characters = sorted(vocab, key=vocab.get)
    # Reference: rerun the whole text through predict and append the most likely next character.
    text = "BP"
    for _ in range(25):
        x = np.eye(len(vocab), dtype="float32")[[vocab[c] for c in text]][None]
        text += characters[int(np.argmax(model.predict(x)[0, -1]))]
    greedy = text[2:]
    assert sample(model, "BP", 25, temperature=0, seed=0) == greedy
    assert sample(model, "BP", 25, temperature=1e-3, seed=1) == greedy
    assert sample(model, "BP", 25, temperature=1e-3, seed=2) == greedy


def test_char_model_save_load(reber_model, tmp_path):
    model, _, _ = reber_model
    model.save(tmp_path / "char.npz")
    loaded = CharModel.load(tmp_path / "char.npz")
    assert loaded.vocab == model.vocab
    assert sample(loaded, "BT", 30, seed=5) == sample(model, "BT", 30, seed=5)
