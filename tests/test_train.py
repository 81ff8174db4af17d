"""The fit loop: learning the adding problem, backends, determinism, history, callbacks, progress bar."""

import io
import sys

import numpy as np
import pytest

import rnnlab as rl
from rnnlab.train import Callback, progress_enabled

# Predicting the mean (1) of U1 + U2, with U1, U2 ~ U[0, 1] independent, costs Var(U1) + Var(U2) = 2/12.
ADDING_BASELINE = 2 * (1.0 / 12.0)
ADDING_MAX_STEPS = 1500


def adding_model(dtype="float32", backend="auto"):
    return rl.Sequential([rl.RNN(rl.LSTMCell(16, seed=0, dtype=dtype), backend=backend),
                          rl.Dense(1, seed=1, dtype=dtype)],
                         loss="mse", optimizer=rl.optimizers.Adam(1e-2, clipnorm=1.0))


def train_on_adding(model, dtype):
    """Fresh batches of 32 sequences of length 50 until the validation MSE is below 10% of the baseline."""
    validation = rl.tasks.adding_problem(500, 50, seed=10**6, dtype=dtype)
    stop = rl.EarlyStopping(target=0.1 * ADDING_BASELINE, monitor="val_loss")
    return model.fit_generator(lambda step: rl.tasks.adding_problem(32, 50, seed=(0, step), dtype=dtype),
                               steps=ADDING_MAX_STEPS, steps_per_epoch=50, validation_data=validation,
                               callbacks=[stop], verbose=False)


def test_lstm_learns_the_adding_problem():
    """About 400 steps and 4 s on two cores with the python backend (seeds 0-6 all need 400-700 steps)."""
    model = adding_model()
    history = train_on_adding(model, "float32")
    assert history.stop_reason is not None, f"val_loss only reached {min(history.val_loss):.4f}"
    assert history.steps < ADDING_MAX_STEPS
    assert history.val_loss[0] > 0.5 * ADDING_BASELINE  # it did start near chance
    test = rl.tasks.adding_problem(1000, 50, seed=12345)  # data the run never saw
    assert np.mean((model.predict(test.x) - test.y) ** 2) < 0.1 * ADDING_BASELINE


def test_python_and_auto_backends_give_the_same_loss_curve():
    """The same run, once on the readable python loop and once on backend="auto" (numba when available).

    float64, because training amplifies tiny differences: the escape from the
    1/6 plateau (around step 350) multiplies a 1e-14 relative perturbation of
    the gradients by about 1e7 by the time the target is reached.  Kernels
    that agree to ~1e-15 per step stay well inside rtol=1e-4.
    """
    python = train_on_adding(adding_model("float64", "python"), "float64")
    auto = train_on_adding(adding_model("float64", "auto"), "float64")
    assert python.stop_reason is not None and python.steps == auto.steps
    np.testing.assert_allclose(auto.loss, python.loss, rtol=1e-4)
    np.testing.assert_allclose(auto.val_loss, python.val_loss, rtol=1e-4)


# -- small problems for the loop's bookkeeping ----------------------------------------------


def sum_model(seed=0, optimizer=None):
    return rl.Sequential([rl.RNN(rl.GRUCell(8, seed=seed)), rl.Dense(1, seed=seed + 1)],
                         optimizer=optimizer or rl.optimizers.Adam(3e-2))


def sum_data(n=40, seed=0):
    """Targets are the sums of the inputs over time."""
    x = np.random.default_rng(seed).uniform(-1, 1, size=(n, 5, 1)).astype("float32")
    return x, x.sum(axis=1)


def test_same_seed_same_history_and_another_seed_differs():
    x, y = sum_data()
    runs = [sum_model().fit(x, y, epochs=3, batch_size=8, seed=seed, verbose=False) for seed in (7, 7, 8)]
    assert runs[0].loss == runs[1].loss and runs[0].grad_norm == runs[1].grad_norm
    assert runs[0].epoch_loss == runs[1].epoch_loss
    assert runs[0].loss != runs[2].loss


def test_fit_generator_is_repeatable():
    make_batch = lambda step: sum_data(8, seed=step)
    first = sum_model().fit_generator(make_batch, steps=12, verbose=False)
    second = sum_model().fit_generator(make_batch, steps=12, verbose=False)
    assert first.loss == second.loss


def test_each_epoch_visits_every_sample_once_in_a_new_order():
    x, y = sum_data(10)
    model = sum_model()
    seen = []
    original = model.train_step

    def recording_step(bx, by, mask=None):
        seen.append(np.asarray(bx)[:, 0, 0].copy())  # the first input value names the sample
        return original(bx, by, mask)

    model.train_step = recording_step
    model.fit(x, y, epochs=2, batch_size=4, seed=0, verbose=False)
    assert [len(b) for b in seen] == [4, 4, 2, 4, 4, 2]
    epochs = [np.concatenate(seen[:3]), np.concatenate(seen[3:])]
    for order in epochs:
        np.testing.assert_array_equal(np.sort(order), np.sort(x[:, 0, 0]))
    assert not np.array_equal(epochs[0], epochs[1])


def test_unshuffled_fit_equals_a_hand_written_loop():
    x, y = sum_data(10)
    history = sum_model().fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=False)
    by_hand = sum_model()
    losses = [by_hand.train_step(x[i : i + 4], y[i : i + 4])["loss"] for _ in range(2) for i in (0, 4, 8)]
    assert history.loss == losses
    assert history.epoch_loss == [pytest.approx(np.mean(losses[:3])), pytest.approx(np.mean(losses[3:]))]
    assert history.epoch_end_step == [3, 6]


def test_steps_budget():
    x, y = sum_data(10)  # 3 batches of at most 4 per epoch
    assert sum_model().fit(x, y, batch_size=4, steps=5, verbose=False).epoch_end_step == [3, 5]
    assert sum_model().fit(x, y, batch_size=4, epochs=2, steps=100, verbose=False).steps == 6
    assert sum_model().fit(x, y, batch_size=4, verbose=False).steps == 3  # one epoch by default
    history = sum_model().fit_generator(lambda step: sum_data(4, step), steps=25, verbose=False)
    assert history.steps == 25 and history.epoch_end_step == [2 * k for k in range(1, 13)] + [25]
    with pytest.raises(ValueError, match="epochs"):
        sum_model().fit(x, y, epochs=0)


def test_history_records_gradient_norms_and_clipping():
    x, y = sum_data(8)
    model = sum_model(optimizer=rl.optimizers.SGD(0.1, clipnorm=0.05))
    _, grads = model.loss_and_gradients(x, y)
    norm = np.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads))
    history = model.fit(x, y, batch_size=8, epochs=4, shuffle=False, verbose=False)
    assert history.grad_norm[0] == pytest.approx(norm, rel=1e-6)
    assert history.clipped == [g > 0.05 for g in history.grad_norm]
    assert history.clip_steps == [k for k, g in enumerate(history.grad_norm) if g > 0.05]
    assert len(history.clip_steps) > 0
    unclipped = sum_model(optimizer=rl.optimizers.SGD(0.1)).fit(x, y, batch_size=8, epochs=2, verbose=False)
    assert unclipped.clip_steps == []


def test_validation_loss_is_recorded_each_epoch():
    x, y = sum_data(24)
    x_val, y_val = sum_data(16, seed=1)
    model = sum_model()
    history = model.fit(x, y, epochs=3, batch_size=8, validation_data=(x_val, y_val), seed=0, verbose=False)
    assert len(history.val_loss) == 3
    assert history.val_loss[-1] == pytest.approx(np.mean((model.predict(x_val) - y_val) ** 2), rel=1e-5)
    assert history.val_accuracy == []  # regression


def test_validation_accuracy_for_a_classifier_and_task_data():
    model = rl.Sequential([rl.RNN(rl.GRUCell(8, seed=0), return_sequences=True), rl.Dense(9, seed=1)],
                          loss="cross_entropy")
    validation = rl.tasks.copy_memory(8, 3, seed=99)
    history = model.fit_generator(lambda step: rl.tasks.copy_memory(8, 3, seed=step), steps=4, steps_per_epoch=2,
                                  validation_data=validation, verbose=False)
    assert len(history.val_loss) == len(history.val_accuracy) == 2
    assert history.val_accuracy[-1] == pytest.approx(
        np.mean(model.predict(validation.x).argmax(-1) == validation.y))


def test_early_stopping_stops_at_the_first_epoch_that_reaches_the_target():
    x, y = sum_data(32)
    reference = sum_model().fit(x, y, epochs=20, batch_size=8, seed=0, verbose=False)
    target = reference.epoch_loss[9]
    first = next(k for k, loss in enumerate(reference.epoch_loss) if loss <= target)
    stop = rl.EarlyStopping(target=target)
    history = sum_model().fit(x, y, epochs=20, batch_size=8, seed=0, callbacks=[stop], verbose=False)
    assert history.epochs == first + 1
    assert history.epoch_loss == reference.epoch_loss[: first + 1]
    assert "target" in history.stop_reason


def test_early_stopping_patience():
    x, y = sum_data(16)
    frozen = rl.optimizers.SGD(1e-12)  # the weights barely move, so the loss never improves
    stop = rl.EarlyStopping(patience=3, min_delta=1e-6)
    history = sum_model(optimizer=frozen).fit(x, y, epochs=50, batch_size=8, shuffle=False, callbacks=[stop],
                                              verbose=False)
    assert history.epochs == 4  # the first epoch sets the best value, three more fail to improve on it
    assert "did not improve" in history.stop_reason


def test_early_stopping_on_val_loss_needs_validation_data():
    x, y = sum_data(8)
    with pytest.raises(ValueError, match="validation_data"):
        sum_model().fit(x, y, callbacks=[rl.EarlyStopping(target=0.1, monitor="val_loss")], verbose=False)
    with pytest.raises(ValueError):
        rl.EarlyStopping()


def test_a_callback_can_stop_in_the_middle_of_an_epoch():
    class StopAtStep(Callback):
        def on_step_end(self, step, logs):
            return "enough" if step == 3 else None

    x, y = sum_data(40)
    history = sum_model().fit(x, y, epochs=5, batch_size=8, callbacks=[StopAtStep()], verbose=False)
    assert history.steps == 4 and history.epochs == 1 and history.stop_reason == "enough"


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_follows_the_terminal_and_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(sys, "stdout", FakeTerminal())
    assert progress_enabled() is True
    assert progress_enabled(verbose=False) is False
    monkeypatch.setenv("CI", "true")
    assert progress_enabled() is False
    assert progress_enabled(verbose=True) is True
    monkeypatch.delenv("CI")
    monkeypatch.setattr(sys, "stdout", io.StringIO())  # a pipe or a file
    assert progress_enabled() is False


def test_fit_draws_the_bar_only_where_it_should(monkeypatch):
    x, y = sum_data(8)
    monkeypatch.delenv("CI", raising=False)
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    sum_model().fit(x, y, batch_size=4)
    assert "2/2" in terminal.getvalue()
    for ci_or_pipe in ("ci", "pipe"):
        out = FakeTerminal() if ci_or_pipe == "ci" else io.StringIO()
        if ci_or_pipe == "ci":
            monkeypatch.setenv("CI", "1")
        monkeypatch.setattr(sys, "stdout", out)
        sum_model().fit(x, y, batch_size=4)
        assert out.getvalue() == ""


def test_bad_batches_are_reported():
    with pytest.raises(TypeError, match="make_batch"):
        sum_model().fit_generator(lambda step: "not a batch", steps=2, verbose=False)
    x, y = sum_data(8)
    with pytest.raises(ValueError, match="float targets"):
        sum_model().fit(x, y, validation_data=(x, y[:, 0]), verbose=False)
