"""Next-step prediction of signals: a sine wave, Mackey-Glass and Lorenz, integrated here.

Each generator samples a series ``s`` of ``time + 1`` points per sequence and
returns inputs ``x = s[:, :-1]`` and targets ``y = s[:, 1:]`` (predict the next
point). The baseline is the MSE of the persistence predictor, which predicts
``x_{t+1} = x_t``, computed on the returned data by ``persistence_mse``.
"""

import numpy as np

from ..validation import check_dtype_name, shaped
from .base import TaskData, check_count, check_real, make_rng


def persistence_mse(x, y):
    """MSE of predicting that nothing changes: mean of (y - x)^2 over every entry."""
    x = shaped(x, "x", ("...",))
    y = shaped(y, "y", x.shape)
    return float(np.mean((y - x) ** 2))


def _next_step_task(name, series, dtype, info):
    """Split a (batch, time + 1, features) series into next-step inputs and targets."""
    series = series.astype(dtype)
    x, y = series[:, :-1], series[:, 1:]  # (B, T, F) each
    return TaskData(
        name=name, x=x, y=y, loss="mse", baseline=persistence_mse(x, y),
        baseline_name="persistence (predict x[t+1] = x[t])", return_sequences=True, info=info,
    )


def sine_wave(batch, time, freq_range=(0.02, 0.1), seed=None, dtype="float32"):
    """Next-step prediction of sine waves with random frequency and phase.

    Sequence b is sin(2 pi f_b t + phi_b) at steps t = 0..time, with f_b drawn
    from U[freq_range] (cycles per step) and phi_b from U[0, 2 pi). For one
    frequency f, the persistence MSE averaged over the phase is
    2 sin^2(pi f), which the tests use as an independent check.

    Returns
    -------
    TaskData
        x, y: (batch, time, 1); loss "mse"; baseline: persistence MSE on this
        data. info["frequency"], info["phase"]: (batch,).
    """
    batch = check_count(batch, "batch")
    time = check_count(time, "time")
    dtype = check_dtype_name(dtype)
    if not isinstance(freq_range, (tuple, list)) or len(freq_range) != 2:
        raise ValueError(f"freq_range must be (low, high) with 0 < low <= high, got {freq_range!r}")
    low, high = (check_real(f, "freq_range") for f in freq_range)
    if not 0.0 < low <= high:
        raise ValueError(f"freq_range must be (low, high) with 0 < low <= high, got {freq_range!r}")
    rng = make_rng(seed)

    frequency = rng.uniform(low, high, size=batch)
    phase = rng.uniform(0.0, 2 * np.pi, size=batch)
    steps = np.arange(time + 1)
    series = np.sin(2 * np.pi * frequency[:, None] * steps + phase[:, None])  # (B, T+1)
    return _next_step_task("sine_wave", series[:, :, None], dtype,
                           {"frequency": frequency, "phase": phase})


def _checked_simulation(batch, time, sample_every, burn_in, dtype, seed):
    """The checked arguments every simulated series shares, and its random generator."""
    return (check_count(batch, "batch"), check_count(time, "time"), check_count(sample_every, "sample_every"),
            check_count(burn_in, "burn_in", minimum=0), check_dtype_name(dtype), make_rng(seed))


def integrate_mackey_glass(x0, n_steps, dt=0.1, tau=17.0, beta=0.2, gamma=0.1, n=10):
    """Integrate the Mackey-Glass delay equation with RK4.

        dx/dt = beta * x(t - tau) / (1 + x(t - tau)^n) - gamma * x(t)

    The history before t = 0 is the constant ``x0``. A delay equation needs
    past values, so the whole trajectory is kept in a buffer and x(t - tau) is
    read ``tau / dt`` entries back; RK4's half-step stages need x(t - tau + dt/2),
    which is taken as the mean of the two neighbouring entries (linear
    interpolation). That interpolation makes the scheme second-order accurate
    (error about 2e-6 over two delays at dt = 0.1) instead of RK4's fourth
    order, far below what matters for a chaotic teaching series.

    Parameters
    ----------
    x0 : array, shape (batch,)
        Constant initial history of each sequence.
    n_steps : int
        Number of RK4 steps of size ``dt``; ``tau`` must be a multiple of ``dt``.

    Returns
    -------
    ndarray, shape (batch, n_steps + 1)
        x at t = 0, dt, ..., n_steps * dt.
    """
    x0 = np.atleast_1d(shaped(x0, "x0", ("batch",), ()))
    n_steps = check_count(n_steps, "n_steps", minimum=0)
    dt, tau = check_real(dt, "dt"), check_real(tau, "tau")
    beta, gamma, n = check_real(beta, "beta"), check_real(gamma, "gamma"), check_real(n, "n")
    if dt <= 0:
        raise ValueError(f"dt must be > 0, got {dt}")
    lag = int(round(tau / dt))
    if lag < 1 or not np.isclose(lag * dt, tau):
        raise ValueError(f"tau must be a positive multiple of dt, got tau={tau}, dt={dt}")

    def rate(x, x_delayed):
        return beta * x_delayed / (1.0 + x_delayed**n) - gamma * x

    # buffer[:, lag + i] holds x(i * dt); the first lag entries are the history
    buffer = np.empty((x0.shape[0], lag + n_steps + 1))
    buffer[:, : lag + 1] = x0[:, None]
    for i in range(lag, lag + n_steps):
        x = buffer[:, i]
        delayed_now, delayed_next = buffer[:, i - lag], buffer[:, i - lag + 1]
        delayed_half = 0.5 * (delayed_now + delayed_next)
        k1 = rate(x, delayed_now)
        k2 = rate(x + 0.5 * dt * k1, delayed_half)
        k3 = rate(x + 0.5 * dt * k2, delayed_half)
        k4 = rate(x + dt * k3, delayed_next)
        buffer[:, i + 1] = x + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
    return buffer[:, lag:]


def mackey_glass(batch, time, tau=17.0, dt=0.1, sample_every=10, burn_in=300, seed=None,
                 dtype="float32", beta=0.2, gamma=0.1, n=10):
    """Next-step prediction of the chaotic Mackey-Glass series.

    Each sequence starts from a constant history drawn from U[0.2, 0.8], is
    integrated with ``integrate_mackey_glass`` and sampled every
    ``sample_every`` steps (every 1 time unit by default). The first
    ``burn_in`` samples are dropped so the series is on the attractor. With
    tau = 17 the series is chaotic; for tau below about 4.7 it settles on the
    fixed point x* = (beta / gamma - 1)^(1 / n) (= 1 for the defaults).

    Reference: Mackey & Glass (1977), "Oscillation and chaos in physiological
    control systems".

    Returns
    -------
    TaskData
        x, y: (batch, time, 1), values roughly in (0.2, 1.4); loss "mse";
        baseline: persistence MSE on this data.
    """
    batch, time, sample_every, burn_in, dtype, rng = _checked_simulation(batch, time, sample_every, burn_in,
                                                                          dtype, seed)

    x0 = rng.uniform(0.2, 0.8, size=batch)
    n_steps = (burn_in + time) * sample_every
    trajectory = integrate_mackey_glass(x0, n_steps, dt, tau, beta, gamma, n)  # (B, n_steps+1)
    series = trajectory[:, ::sample_every][:, burn_in:]                         # (B, T+1)
    return _next_step_task("mackey_glass", series[:, :, None], dtype, {})


def integrate_lorenz(initial, n_steps, dt=0.01, sigma=10.0, rho=28.0, beta=8.0 / 3.0):
    """Integrate the Lorenz system with the classical fourth-order Runge-Kutta method.

        dx/dt = sigma (y - x),  dy/dt = x (rho - z) - y,  dz/dt = x y - beta z

    Parameters
    ----------
    initial : array, shape (batch, 3)
        Starting points (x, y, z).

    Returns
    -------
    ndarray, shape (batch, n_steps + 1, 3)
        The states at t = 0, dt, ..., n_steps * dt.
    """
    state = np.atleast_2d(shaped(initial, "initial", ("batch", 3), (3,))).copy()
    dt, sigma, rho, beta = (check_real(v, name) for v, name in ((dt, "dt"), (sigma, "sigma"), (rho, "rho"),
                                                                 (beta, "beta")))
    n_steps = check_count(n_steps, "n_steps", minimum=0)

    def velocity(s):
        x, y, z = s[:, 0], s[:, 1], s[:, 2]
        return np.stack([sigma * (y - x), x * (rho - z) - y, x * y - beta * z], axis=1)

    trajectory = np.empty((state.shape[0], n_steps + 1, 3))
    trajectory[:, 0] = state
    for i in range(n_steps):
        k1 = velocity(state)
        k2 = velocity(state + 0.5 * dt * k1)
        k3 = velocity(state + 0.5 * dt * k2)
        k4 = velocity(state + dt * k3)
        state = state + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        trajectory[:, i + 1] = state
    return trajectory


def lorenz(batch, time, dt=0.01, sample_every=2, burn_in=500, standardize=True, seed=None,
           dtype="float32", sigma=10.0, rho=28.0, beta=8.0 / 3.0):
    """Next-step prediction of the chaotic Lorenz system (all three coordinates).

    Each sequence starts at a random point of the box [-15, 15] x [-20, 20] x
    [5, 45], is integrated with ``integrate_lorenz`` and sampled every
    ``sample_every`` steps (0.02 time units by default); the first ``burn_in``
    samples are dropped so the series is on the attractor.

    The raw coordinates reach about 20 to 45, which would saturate tanh units,
    so by default each coordinate is standardized with the mean and standard
    deviation of this batch (stored in ``info``; raw = x * std + mean).

    Reference: Lorenz (1963), "Deterministic nonperiodic flow".

    Returns
    -------
    TaskData
        x, y: (batch, time, 3); loss "mse"; baseline: persistence MSE on this
        (standardized) data. info["mean"], info["std"]: (3,) (zeros and ones
        when ``standardize`` is False).
    """
    batch, time, sample_every, burn_in, dtype, rng = _checked_simulation(batch, time, sample_every, burn_in,
                                                                          dtype, seed)

    initial = rng.uniform([-15.0, -20.0, 5.0], [15.0, 20.0, 45.0], size=(batch, 3))
    n_steps = (burn_in + time) * sample_every
    trajectory = integrate_lorenz(initial, n_steps, dt, sigma, rho, beta)  # (B, n_steps+1, 3)
    series = trajectory[:, ::sample_every][:, burn_in:]                   # (B, T+1, 3)
    mean, std = np.zeros(3), np.ones(3)
    if standardize:
        mean, std = series.mean(axis=(0, 1)), series.std(axis=(0, 1))
        series = (series - mean) / std
    return _next_step_task("lorenz", series, dtype, {"mean": mean, "std": std})
