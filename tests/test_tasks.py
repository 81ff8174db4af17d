"""Synthetic tasks: shapes, seeding, structure recomputed by slow loops, baselines by Monte Carlo.

Every baseline is recomputed here without the package's formula: by Monte
Carlo on generated data (with a tolerance of several standard errors), by
enumeration, or by an independent closed form.
"""

import re
import sys
import types
from collections import defaultdict

import numpy as np
import pytest
from scipy.integrate import solve_ivp

import rnnlab.tasks as tasks

TEXT = tasks.reber_text(50, seed=0)[0]

# Small arguments for every registered task except sequential_digits (tested with a fake sklearn).
CASES = {
    "adding_problem": dict(batch=5, time=12),
    "copy_memory": dict(batch=5, delay=7),
    "flip_flop": dict(batch=5, time=30, p_flip=0.2),
    "parity": dict(batch=5, time=9),
    "delayed_xor": dict(batch=5, time=12, delay=3),
    "sine_wave": dict(batch=5, time=15),
    "mackey_glass": dict(batch=3, time=15, burn_in=20),
    "lorenz": dict(batch=3, time=15, burn_in=20),
    "embedded_reber": dict(batch=5),
    "next_char": dict(text=TEXT, batch=5, time=11),
}


def cross_entropy(probs, targets):
    """Mean -log probs[target]; probs (..., n_classes), targets (...) int."""
    picked = np.take_along_axis(probs, targets[..., None], axis=-1)[..., 0]
    return float(-np.log(np.maximum(picked, 1e-300)).mean())


# ----------------------------------------------------------------------------- registry, generic


def test_registry_lists_every_task_and_rejects_unknown_names():
    assert set(tasks.names()) == set(CASES) | {"sequential_digits"}
    with pytest.raises(ValueError, match="unknown task 'adding'.*adding_problem"):
        tasks.get("adding")


@pytest.mark.parametrize("name", sorted(CASES))
def test_get_calls_the_generator(name):
    data = tasks.get(name, seed=3, **CASES[name])
    direct = tasks.TASKS[name](seed=3, **CASES[name])
    assert data.name == name
    np.testing.assert_array_equal(data.x, direct.x)
    np.testing.assert_array_equal(data.y, direct.y)


@pytest.mark.parametrize("name", sorted(CASES))
def test_layout_dtypes_and_metadata(name):
    data = tasks.get(name, seed=0, **CASES[name])
    batch = CASES[name]["batch"]
    assert data.x.ndim == 3 and data.x.shape[0] == batch
    assert data.x.dtype == np.float32 and np.isfinite(data.x).all()
    time = data.x.shape[1]
    assert data.loss in ("mse", "cross_entropy")
    assert np.isfinite(data.baseline) and data.baseline > 0
    if data.return_sequences:
        assert data.y.shape[:2] == (batch, time)
    else:
        assert data.y.shape[0] == batch and data.y.ndim <= 2
    if data.loss == "cross_entropy":
        assert data.y.dtype == np.int64
        assert data.y.min() >= 0 and data.y.max() < data.n_classes
        if name != "embedded_reber":  # its accuracy is judged against the legal sets instead
            assert 0 < data.chance_accuracy <= 1
    else:
        assert data.y.dtype == np.float32 and data.n_classes is None
    if data.mask is not None:
        assert data.mask.shape == (batch, time) and data.mask.dtype == bool
    assert tasks.get(name, seed=0, dtype="float64", **CASES[name]).x.dtype == np.float64


@pytest.mark.parametrize("name", sorted(CASES))
def test_seeding(name):
    args = CASES[name]
    first, again = tasks.get(name, seed=11, **args), tasks.get(name, seed=11, **args)
    other = tasks.get(name, seed=12, **args)
    from_generator = tasks.get(name, seed=np.random.default_rng(11), **args)
    for data in (again, from_generator):
        np.testing.assert_array_equal(data.x, first.x)
        np.testing.assert_array_equal(data.y, first.y)
    assert first.x.shape != other.x.shape or not np.array_equal(first.x, other.x)


@pytest.mark.parametrize("name", sorted(CASES))
def test_global_random_state_is_neither_used_nor_advanced(name):
    np.random.seed(0)
    state = np.random.get_state()[1].copy()
    first = tasks.get(name, seed=5, **CASES[name])
    assert np.array_equal(np.random.get_state()[1], state)
    np.random.seed(1)
    np.testing.assert_array_equal(tasks.get(name, seed=5, **CASES[name]).x, first.x)


@pytest.mark.parametrize("call, error", [
    (lambda: tasks.adding_problem(0, 10), ValueError),
    (lambda: tasks.adding_problem(2.5, 10), TypeError),
    (lambda: tasks.adding_problem(4, 1), ValueError),
    (lambda: tasks.adding_problem(4, 10, dtype="int32"), TypeError),
    (lambda: tasks.copy_memory(4, 0), ValueError),
    (lambda: tasks.flip_flop(4, 10, p_flip=0.0), ValueError),
    (lambda: tasks.parity(4, 10, p_one=1.5), ValueError),
    (lambda: tasks.delayed_xor(4, 3, delay=3), ValueError),
    (lambda: tasks.sine_wave(4, 10, freq_range=(0.2, 0.1)), ValueError),
    (lambda: tasks.integrate_mackey_glass([1.0], 10, dt=0.3, tau=1.0), ValueError),
    (lambda: tasks.integrate_lorenz(np.zeros((2, 2)), 10), ValueError),
    (lambda: tasks.next_char("abc", 2, 3), ValueError),
    (lambda: tasks.next_char("abc", 2, 1, vocab={"a": 0, "b": 1}), ValueError),
    (lambda: tasks.next_char("abc", 2, 1, vocab={"a": 0, "b": 1, "c": 5}), ValueError),
])
def test_bad_arguments_raise_clear_errors(call, error):
    with pytest.raises(error):
        call()


# ----------------------------------------------------------------------------- adding problem


def test_adding_problem_structure():
    data = tasks.adding_problem(300, 7, seed=1)  # odd length: halves are steps 0-2 and 3-6
    values, markers = data.x[..., 0], data.x[..., 1]
    assert data.y.shape == (300, 1) and data.x.shape == (300, 7, 2)
    assert values.min() >= 0 and values.max() <= 1
    assert set(np.unique(markers)) == {0.0, 1.0}
    seen_first, seen_second = set(), set()
    for b in range(300):
        marked = np.flatnonzero(markers[b])
        assert len(marked) == 2 and marked[0] < 3 <= marked[1]
        seen_first.add(marked[0])
        seen_second.add(marked[1])
        assert data.y[b, 0] == pytest.approx(values[b, marked[0]] + values[b, marked[1]], abs=1e-6)
    assert seen_first == {0, 1, 2} and seen_second == {3, 4, 5, 6}  # every step can be marked


def test_adding_baseline_by_monte_carlo():
    # the mean is estimated on one sample and its MSE measured on another;
    # the squared error has sd about 0.2, so with 100k samples 3e-3 is > 4 standard errors
    train = tasks.adding_problem(100_000, 4, seed=2, dtype="float64").y
    test = tasks.adding_problem(100_000, 4, seed=3, dtype="float64").y
    assert train.mean() == pytest.approx(1.0, abs=5e-3)
    empirical = np.mean((test - train.mean()) ** 2)
    assert empirical == pytest.approx(tasks.adding_baseline_mse(), abs=3e-3)
    assert tasks.adding_baseline_mse() == pytest.approx(1 / 6)
    assert tasks.adding_problem(2, 4).baseline == tasks.adding_baseline_mse()


# ----------------------------------------------------------------------------- copy memory


def test_copy_memory_structure():
    delay, n_symbols, seq_len = 6, 5, 4
    data = tasks.copy_memory(50, delay, n_symbols=n_symbols, seq_len=seq_len, seed=4)
    total = delay + 2 * seq_len
    assert data.x.shape == (50, total, n_symbols + 2) and data.y.shape == (50, total)
    assert np.all(data.x.sum(axis=-1) == 1)  # one-hot
    ids = data.x.argmax(axis=-1)
    delimiter = n_symbols + 1
    for b in range(50):
        symbols = ids[b, :seq_len]
        assert symbols.min() >= 1 and symbols.max() <= n_symbols
        assert list(np.flatnonzero(ids[b] == delimiter)) == [seq_len + delay - 1]
        assert np.all(np.delete(ids[b, seq_len:], delay - 1) == 0)  # blanks elsewhere
        np.testing.assert_array_equal(data.y[b, -seq_len:], symbols)
        assert np.all(data.y[b, :-seq_len] == 0)
    assert data.n_classes == n_symbols + 1


def test_copy_memory_baseline_by_monte_carlo():
    delay = 30
    # the memoryless predictor: per-step class frequencies learned on one sample, scored on another
    train = tasks.copy_memory(4000, delay, seed=5).y
    test = tasks.copy_memory(4000, delay, seed=6).y
    frequencies = np.stack([(train == k).mean(axis=0) for k in range(9)], axis=-1)  # (T+20, 9)
    probs = np.broadcast_to(frequencies, test.shape + (9,))
    formula = 10 * np.log(8) / (delay + 20)
    assert cross_entropy(probs, test) == pytest.approx(formula, rel=5e-3)
    assert tasks.copy_memory_baseline(delay) == pytest.approx(formula, rel=1e-12)
    accuracy = np.mean(frequencies.argmax(axis=-1)[None, :] == test)
    data = tasks.copy_memory(2, delay)
    assert data.baseline == tasks.copy_memory_baseline(delay)
    assert accuracy == pytest.approx(data.chance_accuracy, abs=5e-3)


# ----------------------------------------------------------------------------- flip-flop


def test_flip_flop_targets_match_a_slow_loop():
    data = tasks.flip_flop(6, 80, n_bits=3, p_flip=0.1, seed=7)
    assert set(np.unique(data.x)) <= {-1.0, 0.0, 1.0}
    expected = np.zeros_like(data.y)
    for b in range(6):
        for bit in range(3):
            last = 0.0
            for t in range(80):
                if data.x[b, t, bit] != 0:
                    last = data.x[b, t, bit]
                expected[b, t, bit] = last
    np.testing.assert_array_equal(data.y, expected)
    assert np.any(data.y == 1) and np.any(data.y == -1) and np.any(data.y == 0)


def test_flip_flop_pulse_statistics_and_baseline():
    time, p_flip = 40, 0.05
    train = tasks.flip_flop(5000, time, p_flip=p_flip, seed=8, dtype="float64")
    test = tasks.flip_flop(5000, time, p_flip=p_flip, seed=9, dtype="float64")
    pulses = train.x != 0
    assert pulses.mean() == pytest.approx(p_flip, abs=2e-3)
    assert (train.x[pulses] > 0).mean() == pytest.approx(0.5, abs=0.02)
    # best memoryless predictor: the per-step, per-channel mean target (about 0)
    step_mean = train.y.mean(axis=0)
    empirical = np.mean((test.y - step_mean) ** 2)
    # closed form of mean over t = 1..T of 1 - q^t, with q = 1 - p
    q = 1 - p_flip
    closed_form = 1 - q * (1 - q**time) / (time * (1 - q))
    assert empirical == pytest.approx(closed_form, abs=0.01)
    assert tasks.flip_flop_baseline_mse(time, p_flip) == pytest.approx(closed_form, rel=1e-12)
    assert np.mean(test.y**2) == pytest.approx(test.baseline, abs=0.01)


# ----------------------------------------------------------------------------- parity and XOR


def enumerate_odd_probability(n_bits, p_one):
    """P(odd number of ones) by summing over all 2^n bit patterns."""
    total = 0.0
    for pattern in range(2**n_bits):
        ones = bin(pattern).count("1")
        if ones % 2:
            total += p_one**ones * (1 - p_one) ** (n_bits - ones)
    return total


def test_parity_targets_match_a_loop():
    data = tasks.parity(40, 13, seed=10)
    assert set(np.unique(data.x)) == {0.0, 1.0} and data.y.shape == (40,)
    for b in range(40):
        odd = 0
        for bit in data.x[b, :, 0]:
            odd ^= int(bit)
        assert data.y[b] == odd


@pytest.mark.parametrize("time, p_one", [(3, 0.3), (8, 0.5), (2, 0.9)])
def test_parity_baseline(time, p_one):
    q = enumerate_odd_probability(time, p_one)
    assert tasks.odd_parity_probability(time, p_one) == pytest.approx(q, abs=1e-12)
    data = tasks.parity(40_000, time, p_one=p_one, seed=11)
    assert data.y.mean() == pytest.approx(q, abs=0.01)
    # best constant predictor: the target frequency of another sample
    frequency = tasks.parity(40_000, time, p_one=p_one, seed=12).y.mean()
    probs = np.stack([np.full(len(data.y), 1 - frequency), np.full(len(data.y), frequency)], axis=1)
    assert cross_entropy(probs, data.y) == pytest.approx(data.baseline, abs=0.01)
    assert data.chance_accuracy == pytest.approx(max(q, 1 - q))
    if p_one == 0.5:
        assert data.baseline == pytest.approx(np.log(2)) and data.chance_accuracy == 0.5


def test_delayed_xor_targets_and_mask():
    delay = 4
    data = tasks.delayed_xor(20, 15, delay, seed=13)
    bits = data.x[..., 0].astype(int)
    for b in range(20):
        for t in range(15):
            if t < delay:
                assert not data.mask[b, t] and data.y[b, t] == 0
            else:
                assert data.mask[b, t] and data.y[b, t] == (bits[b, t] != bits[b, t - delay])


def test_delayed_xor_baseline_by_monte_carlo():
    data = tasks.delayed_xor(5000, 20, 5, p_one=0.2, seed=14)
    targets = data.y[data.mask]
    q = enumerate_odd_probability(2, 0.2)  # XOR of two bits = parity of two bits
    assert targets.mean() == pytest.approx(q, abs=0.01)
    frequency = tasks.delayed_xor(5000, 20, 5, p_one=0.2, seed=15).y[data.mask].mean()
    probs = np.stack([np.full(len(targets), 1 - frequency), np.full(len(targets), frequency)], axis=1)
    assert cross_entropy(probs, targets) == pytest.approx(data.baseline, abs=0.01)
    assert tasks.delayed_xor(4, 6, 2).baseline == pytest.approx(np.log(2))


# ----------------------------------------------------------------------------- next-step signals


@pytest.mark.parametrize("name", ["sine_wave", "mackey_glass", "lorenz"])
def test_next_step_targets_are_the_inputs_shifted(name):
    data = tasks.get(name, seed=16, **CASES[name])
    np.testing.assert_array_equal(data.y[:, :-1], data.x[:, 1:])
    assert data.baseline == pytest.approx(np.mean((data.y.astype(float) - data.x) ** 2), rel=1e-6)


def test_sine_wave_values_and_persistence_baseline():
    data = tasks.sine_wave(4, 30, freq_range=(0.05, 0.08), seed=17, dtype="float64")
    assert np.all((data.info["frequency"] >= 0.05) & (data.info["frequency"] <= 0.08))
    steps = np.arange(30)
    for b in range(4):
        f, phase = data.info["frequency"][b], data.info["phase"][b]
        np.testing.assert_allclose(data.x[b, :, 0], [np.sin(2 * np.pi * f * t + phase) for t in steps])
    # one frequency, random phases: E[(sin(a + w) - sin a)^2] = 2 sin^2(w / 2), w = 2 pi f;
    # the squared difference has sd < 0.1, so with 20000 x 10 samples 5e-3 is generous
    f = 0.07
    fixed = tasks.sine_wave(20_000, 10, freq_range=(f, f), seed=18, dtype="float64")
    assert fixed.baseline == pytest.approx(2 * np.sin(np.pi * f) ** 2, abs=5e-3)


def lorenz_velocity(t, s, sigma=10.0, rho=28.0, beta=8.0 / 3.0):
    x, y, z = s
    return [sigma * (y - x), x * (rho - z) - y, x * y - beta * z]


def test_lorenz_integrator_matches_solve_ivp_with_fourth_order_error():
    initial = np.array([[1.0, 2.0, 20.0], [-5.0, 3.0, 30.0]])
    errors = []
    for dt in (0.01, 0.005):
        n_steps = int(round(1.0 / dt))
        ours = tasks.integrate_lorenz(initial, n_steps, dt=dt)
        times = np.arange(n_steps + 1) * dt
        error = 0.0
        for b in range(2):
            reference = solve_ivp(lorenz_velocity, (0, 1.0), initial[b], method="DOP853",
                                  rtol=1e-12, atol=1e-12, t_eval=times).y.T
            error = max(error, np.abs(ours[b] - reference).max())
        errors.append(error)
    assert errors[0] < 1e-3
    assert errors[0] / errors[1] > 10  # RK4: halving dt divides the error by about 16


def test_lorenz_fixed_points_stay_fixed():
    c = np.sqrt(8.0 / 3.0 * 27.0)
    fixed = np.array([[0.0, 0.0, 0.0], [c, c, 27.0], [-c, -c, 27.0]])
    trajectory = tasks.integrate_lorenz(fixed, 200)
    np.testing.assert_allclose(trajectory[:, -1], fixed, atol=1e-9)


def test_lorenz_generator_follows_the_ode_and_stays_on_the_attractor():
    raw = tasks.lorenz(3, 2000, standardize=False, seed=19, dtype="float64")
    # samples are 0.02 time units apart: compare with solve_ivp from the first sample
    times = np.arange(51) * 0.02
    for b in range(3):
        reference = solve_ivp(lorenz_velocity, (0, 1.0), raw.x[b, 0], method="DOP853",
                              rtol=1e-12, atol=1e-12, t_eval=times).y.T
        np.testing.assert_allclose(raw.x[b, :51], reference, atol=1e-3)
    # the attractor: |x| < 25, |y| < 30, 0 < z < 55, and both lobes are visited
    assert np.abs(raw.x[..., 0]).max() < 25 and np.abs(raw.x[..., 1]).max() < 30
    assert raw.x[..., 2].min() > 0 and raw.x[..., 2].max() < 55
    for b in range(3):
        assert raw.x[b, :, 0].min() < -5 and raw.x[b, :, 0].max() > 5


def test_lorenz_standardization_is_invertible():
    raw = tasks.lorenz(3, 300, standardize=False, seed=20, dtype="float64")
    scaled = tasks.lorenz(3, 300, seed=20, dtype="float64")
    series = np.concatenate([scaled.x, scaled.y[:, -1:]], axis=1)
    np.testing.assert_allclose(series.mean(axis=(0, 1)), 0, atol=1e-9)
    np.testing.assert_allclose(series.std(axis=(0, 1)), 1, atol=1e-9)
    np.testing.assert_allclose(scaled.x * scaled.info["std"] + scaled.info["mean"], raw.x, atol=1e-9)
    assert scaled.baseline == pytest.approx(np.mean((scaled.y - scaled.x) ** 2))


def test_mackey_glass_integrator_matches_the_method_of_steps():
    beta, gamma, n, tau, x0 = 0.2, 0.1, 10, 17.0, 0.5
    # on [0, tau] the delayed term sees the constant history, so the equation is
    # linear: x(t) = c / gamma + (x0 - c / gamma) exp(-gamma t), c = beta x0 / (1 + x0^n)
    c = beta * x0 / (1 + x0**n)

    def first_interval(t):
        return c / gamma + (x0 - c / gamma) * np.exp(-gamma * t)

    ours = tasks.integrate_mackey_glass([x0], 170, dt=0.1, tau=tau)[0]
    np.testing.assert_allclose(ours, first_interval(np.arange(171) * 0.1), rtol=1e-9)

    # on [tau, 2 tau] the delayed term is that known solution: an ordinary ODE for solve_ivp
    def second_interval(t, x):
        delayed = first_interval(t - tau)
        return beta * delayed / (1 + delayed**n) - gamma * x

    errors = []
    for dt in (0.1, 0.05):
        lag = int(round(tau / dt))
        ours = tasks.integrate_mackey_glass([x0], 2 * lag, dt=dt, tau=tau)[0]
        times = np.arange(2 * lag + 1) * dt
        reference = solve_ivp(second_interval, (tau, 2 * tau), [first_interval(tau)], method="DOP853",
                              rtol=1e-12, atol=1e-12, t_eval=times[lag:]).y[0]
        errors.append(np.abs(ours[lag:] - reference).max())
    assert errors[0] < 1e-5
    assert errors[0] / errors[1] > 3.5  # second order: halving dt divides the error by about 4


def test_mackey_glass_samples_and_qualitative_behaviour():
    # burn_in=0: the first sample is the constant history; samples are 1 time unit apart
    data = tasks.mackey_glass(2, 15, burn_in=0, seed=21, dtype="float64")
    for b in range(2):
        x0 = data.x[b, 0, 0]
        assert 0.2 <= x0 <= 0.8
        c = 0.2 * x0 / (1 + x0**10)
        t = np.arange(15.0)
        np.testing.assert_allclose(data.x[b, :, 0], c / 0.1 + (x0 - c / 0.1) * np.exp(-0.1 * t), rtol=1e-9)
    later = tasks.mackey_glass(2, 10, burn_in=5, seed=21, dtype="float64")
    full = tasks.mackey_glass(2, 15, burn_in=0, seed=21, dtype="float64")
    np.testing.assert_allclose(later.x, full.x[:, 5:], rtol=1e-12)
    # short delay: settles on the fixed point (beta / gamma - 1)^(1 / n) = 1
    settled = tasks.mackey_glass(3, 20, tau=2.0, seed=22, dtype="float64")
    np.testing.assert_allclose(settled.x, 1.0, atol=1e-4)
    # tau = 17: keeps oscillating irregularly inside (0, 2)
    chaotic = tasks.mackey_glass(3, 300, seed=23, dtype="float64")
    assert chaotic.x.min() > 0 and chaotic.x.max() < 2
    assert chaotic.x.std(axis=1).min() > 0.1


# ----------------------------------------------------------------------------- Reber grammar

# an independent description of the languages, as regular expressions:
# from state 3 the grammar reads (T* V P X)* T* V then V or P S; from state 2, S* X then S or X <state 3>
FROM_3 = "(?:T*VPX)*T*V(?:V|PS)"
REBER = f"B(?:TS*X(?:S|X{FROM_3})|P{FROM_3})E"
EMBEDDED = f"B(?:T{REBER}T|P{REBER}P)E"


def test_reber_regexes_are_sane():
    for good in ["BTSSXXTVVE", "BPVVE", "BTXSE", "BPVPXVPXVVE", "BPTTVPSE"]:
        assert re.fullmatch(REBER, good)
    for bad in ["BTSSXXTVE", "BPVE", "BTXE", "BPVPXVVPE"]:
        assert not re.fullmatch(REBER, bad)
    assert re.fullmatch(EMBEDDED, "BTBPVVETE") and not re.fullmatch(EMBEDDED, "BTBPVVEPE")


def test_reber_strings_belong_to_the_grammar():
    for string in tasks.reber_strings(500, seed=24):
        assert re.fullmatch(EMBEDDED, string)
    plain = tasks.reber_strings(500, embedded=False, seed=24)
    assert all(re.fullmatch(REBER, string) for string in plain)
    assert len(set(plain)) > 30  # really random, not one string


def test_embedded_reber_batch_encoding():
    data = tasks.embedded_reber(200, seed=25)
    symbols = "BTPSXVE"
    assert data.x.shape[2] == 7 and data.n_classes == 7
    assert data.x.shape[1] == max(len(s) for s in data.info["strings"]) - 1
    for b, string in enumerate(data.info["strings"]):
        assert re.fullmatch(EMBEDDED, string)
        steps = len(string) - 1
        assert data.mask[b].sum() == steps and data.mask[b, :steps].all()
        assert "".join(symbols[i] for i in data.x[b, :steps].argmax(axis=-1)) == string[:-1]
        assert "".join(symbols[i] for i in data.y[b, :steps]) == string[1:]
        assert np.all(data.x[b, steps:] == 0) and np.all(data.y[b, steps:] == 0)
        legal = data.info["legal"][b]
        assert np.all(legal[np.arange(steps), data.y[b, :steps]] == 1)  # the sampled symbol is legal
        assert np.all(legal[steps:] == 0)
        # the long-term dependency: only the opening branch symbol may close the string
        assert np.flatnonzero(legal[steps - 2]) == [symbols.index(string[1])]


def test_embedded_reber_legal_sets_match_observed_continuations():
    data = tasks.embedded_reber(3000, seed=26)
    observed = defaultdict(set)
    seen = defaultdict(int)
    legal_of = {}
    for b, string in enumerate(data.info["strings"]):
        for t in range(len(string) - 1):
            prefix = string[: t + 1]
            observed[prefix].add(string[t + 1])
            seen[prefix] += 1
            legal_of[prefix] = {"BTPSXVE"[i] for i in np.flatnonzero(data.info["legal"][b, t])}
    common = [prefix for prefix in seen if seen[prefix] >= 40]
    assert len(common) > 20
    for prefix in common:  # a legal symbol missed 40 times in a row has chance <= 2^-40
        assert observed[prefix] == legal_of[prefix], prefix


@pytest.mark.parametrize("embedded", [True, False])
def test_reber_baselines_by_monte_carlo(embedded):
    train = tasks.embedded_reber(3000, embedded=embedded, seed=27)
    test = tasks.embedded_reber(3000, embedded=embedded, seed=28)
    # the memoryless (bigram) predictor: next-symbol frequencies given the current symbol
    pairs = np.zeros((7, 7))
    current = train.x.argmax(axis=-1)
    np.add.at(pairs, (current[train.mask], train.y[train.mask]), 1)
    conditional = pairs / np.maximum(pairs.sum(axis=1, keepdims=True), 1)
    probs = conditional[test.x.argmax(axis=-1)[test.mask]]
    assert cross_entropy(probs, test.y[test.mask]) == pytest.approx(test.baseline, abs=0.02)
    # the perfect predictor spreads its bet evenly over the legal symbols
    legal_counts = test.info["legal"].sum(axis=-1)[test.mask]
    assert np.mean(np.log(legal_counts)) == pytest.approx(test.info["optimal_loss"], abs=0.02)
    assert test.info["optimal_loss"] < test.baseline < np.log(7)


def test_reber_text_corpus():
    text, vocab = tasks.reber_text(100, seed=29)
    lines = text.split("\n")
    assert text.endswith("\n") and len(lines) == 101 and lines[-1] == ""
    assert all(re.fullmatch(EMBEDDED, line) for line in lines[:-1])
    assert sorted(vocab.values()) == list(range(8)) and set(vocab) == set("BTPSXVE\n")
    assert tasks.reber_text(100, seed=29)[0] == text and tasks.reber_text(100, seed=30)[0] != text


# ----------------------------------------------------------------------------- next character


def test_next_char_windows_and_baseline():
    text = "abracadabra, said the cat. " * 5
    data = tasks.next_char(text, 50, 9, seed=31)
    vocab = data.info["vocab"]
    chars = {i: ch for ch, i in vocab.items()}
    assert data.x.shape == (50, 9, len(set(text))) and np.all(data.x.sum(axis=-1) == 1)
    for b in range(50):
        window = "".join(chars[i] for i in data.x[b].argmax(axis=-1)) + chars[data.y[b, -1]]
        assert window in text
        assert "".join(chars[i] for i in data.y[b]) == window[1:]
    _, counts = np.unique(list(text), return_counts=True)
    p = counts / counts.sum()
    assert data.baseline == pytest.approx(-(p * np.log(p)).sum())
    assert data.chance_accuracy == pytest.approx(p.max())


# ----------------------------------------------------------------------------- sequential digits


@pytest.fixture
def fake_sklearn(monkeypatch):
    """A stand-in sklearn.datasets.load_digits: 30 random 8x8 images with values 0..16."""
    rng = np.random.default_rng(0)
    bunch = types.SimpleNamespace(images=rng.integers(0, 17, size=(30, 8, 8)).astype(float),
                                  target=np.arange(30) % 10)
    sklearn, datasets = types.ModuleType("sklearn"), types.ModuleType("sklearn.datasets")
    datasets.load_digits = lambda: bunch
    sklearn.datasets = datasets
    monkeypatch.setitem(sys.modules, "sklearn", sklearn)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", datasets)
    return bunch


def test_sequential_digits_without_scikit_learn_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # makes `import sklearn` fail
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"pip install scikit-learn"):
        tasks.sequential_digits()
    with pytest.raises(ImportError, match=r"rnnlab\[tasks\]"):
        tasks.get("sequential_digits", batch=4)


def test_sequential_digits_rows_and_pixels(fake_sklearn):
    rows = tasks.sequential_digits(seed=32)
    assert rows.x.shape == (30, 8, 8) and rows.y.shape == (30,) and rows.x.dtype == np.float32
    assert rows.x.min() >= 0 and rows.x.max() <= 1
    for image, label in zip(rows.x, rows.y):
        matches = [i for i in range(30) if np.allclose(fake_sklearn.images[i] / 16, image)]
        assert matches and fake_sklearn.target[matches[0]] == label
    assert sorted(map(tuple, rows.x.reshape(30, 64))) == sorted(map(tuple, (fake_sklearn.images / 16).reshape(30, 64)))
    pixels = tasks.sequential_digits(seed=32, order="pixels")
    np.testing.assert_array_equal(pixels.x[:, :, 0], rows.x.reshape(30, 64))
    some = tasks.sequential_digits(batch=7, seed=33)
    assert some.x.shape == (7, 8, 8) and len({tuple(v) for v in some.x.reshape(7, 64)}) == 7
    assert not np.array_equal(some.x, tasks.sequential_digits(batch=7, seed=34).x)
    with pytest.raises(ValueError, match="at most 30"):
        tasks.sequential_digits(batch=31)
    with pytest.raises(ValueError, match="order"):
        tasks.sequential_digits(order="columns")
    assert rows.baseline == pytest.approx(np.log(10)) and rows.chance_accuracy == pytest.approx(0.1)
