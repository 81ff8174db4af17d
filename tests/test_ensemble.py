"""rnnlab.ensemble on the CPU (numba prange) against a naive loop and against the readable cell's BPTT."""

import pathlib
import re
import time

import numpy as np
import pytest

import rnnlab as rl
from rnnlab import ensemble


def naive(K, R, b, x, h0, loss):
    """One network, plain NumPy: forward, then the backward pass written out step by step."""
    T = x.shape[0]
    hs = [h0]
    for t in range(T):
        hs.append(np.tanh(x[t] @ K + hs[-1] @ R + b))
    H = np.array(hs[1:])  # (T, H)
    L = 0.5 * H[-1] @ H[-1] if loss == "final" else 0.5 * np.sum(H * H) / T
    dK, dR, db = np.zeros_like(K), np.zeros_like(R), np.zeros_like(b)
    dh = H[-1].copy() if loss == "final" else np.zeros_like(h0)
    for t in range(T - 1, -1, -1):
        if loss == "mean":
            dh = dh + H[t] / T
        da = dh * (1 - H[t] ** 2)
        dK += np.outer(x[t], da)
        dR += np.outer(hs[t], da)
        db += da
        dh = R @ da
    return dict(traj=H, loss=L, dK=dK, dR=dR, db=db, dh0=dh)


def inputs_for(kind, n, T, F, rng):
    return {"shared": rng.normal(size=(T, F)), "per_network": rng.normal(size=(n, T, F)), "none": None}[kind]


@pytest.mark.parametrize("loss", ["final", "mean"])
@pytest.mark.parametrize("inputs", ["shared", "per_network", "none"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cpu_ensemble_matches_naive_loop(loss, inputs, dtype):
    n, units, T = 4, 3, 5
    F = 0 if inputs == "none" else 2
    rng = np.random.default_rng(0)
    nets = ensemble.random_networks(n, units, F, spectral_radius=np.linspace(0.5, 1.6, n), bias_scale=0.3,
                                    seed=7, dtype=dtype)
    x = inputs_for(inputs, n, T, F, rng)
    h0 = rng.normal(size=(n, units)) * 0.5
    res = ensemble.simulate(nets, x, steps=T if x is None else None, h0=h0, trajectories=True, gradients=True,
                            loss=loss, return_grads=True, backend="cpu")
    tol = dict(rtol=1e-12, atol=1e-13) if dtype == "float64" else dict(rtol=1e-4, atol=1e-5)
    assert res.backend == "numba" and res.final_state.dtype == np.dtype(dtype)
    for i in range(n):
        xi = np.zeros((T, 0)) if x is None else (x[i] if x.ndim == 3 else x)
        ref = naive(*(w.astype(np.float64) for w in (nets.kernel[i], nets.recurrent_kernel[i], nets.bias[i])),
                    xi.astype(np.float64) if dtype == "float64" else xi.astype(dtype).astype(np.float64),
                    h0[i].astype(dtype).astype(np.float64), loss)
        np.testing.assert_allclose(res.trajectories[i], ref["traj"], **tol)
        np.testing.assert_allclose(res.final_state[i], ref["traj"][-1], **tol)
        np.testing.assert_allclose(res.mean_abs[i], np.abs(ref["traj"]).mean(), **tol)
        np.testing.assert_allclose(res.loss[i], ref["loss"], **tol)
        for name, key in (("kernel", "dK"), ("recurrent_kernel", "dR"), ("bias", "db"), ("h0", "dh0")):
            np.testing.assert_allclose(res.grads[name][i], ref[key], err_msg=name, **tol)
        norm = np.sqrt(sum(np.sum(ref[k] ** 2) for k in ("dK", "dR", "db")))
        np.testing.assert_allclose(res.grad_norm[i], norm, **tol)
        np.testing.assert_allclose(res.grad_h0_norm[i], np.linalg.norm(ref["dh0"]), **tol)


def test_cpu_ensemble_gradients_equal_the_readable_cells_bptt():
    """Each network is a SimpleRNNCell; rnnlab.bptt gives the same gradients for L = |h_T|^2 / 2."""
    n, units, T = 3, 4, 6
    rng = np.random.default_rng(1)
    nets = ensemble.random_networks(n, units, 2, spectral_radius=[0.8, 1.0, 1.3], bias_scale=0.2, seed=3)
    x = rng.normal(size=(n, T, 2))
    h0 = rng.normal(size=(n, units))
    res = ensemble.simulate(nets, x, h0=h0, gradients=True, return_grads=True)
    for i in range(n):
        cell = rl.SimpleRNNCell(units, dtype="float64")
        cell.build((None, 2))
        cell.set_weights([nets.kernel[i], nets.recurrent_kernel[i], nets.bias[i]])
        y, tape = rl.bptt.forward(rl.RNN(cell, backend="python"), x[i : i + 1], [h0[i : i + 1]])
        g = rl.bptt.backward(tape, y)  # dL/dy = y for L = |y|^2 / 2
        for name, ref in zip(("kernel", "recurrent_kernel", "bias"), g.weights):
            np.testing.assert_allclose(res.grads[name][i], ref, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(res.grads["h0"][i], g.initial_state[0][0], rtol=1e-12, atol=1e-14)


def test_without_gradients_only_the_forward_results():
    nets = ensemble.random_networks(3, 2, 1, seed=0)
    res = ensemble.simulate(nets, np.ones((4, 1)))
    assert res.grad_norm is None and res.grad_h0_norm is None and res.grads is None and res.trajectories is None
    full = ensemble.simulate(nets, np.ones((4, 1)), trajectories=True, gradients=True)
    np.testing.assert_array_equal(res.final_state, full.final_state)
    np.testing.assert_array_equal(res.final_state, full.trajectories[:, -1])
    assert res.backend == "numba"  # no GPU in CI: auto is the CPU


def test_random_networks_have_the_requested_spectral_radius_and_are_reproducible():
    radii = np.array([0.5, 1.0, 1.7])
    nets = ensemble.random_networks(3, 8, 2, spectral_radius=radii, seed=[4, 4, 5])
    np.testing.assert_allclose(nets.spectral_radius(), radii, rtol=1e-10)
    again = ensemble.random_networks(3, 8, 2, spectral_radius=radii, seed=[4, 4, 5])
    np.testing.assert_array_equal(nets.recurrent_kernel, again.recurrent_kernel)
    # network i depends only on (seed[i], i), not on how many networks are drawn
    first = ensemble.random_networks(1, 8, 2, spectral_radius=0.5, seed=4)
    np.testing.assert_array_equal(first.recurrent_kernel[0], nets.recurrent_kernel[0])


def test_edge_of_chaos_sweep_runs_in_seconds():
    """The docs/gpu.md example at small N: gradients vanish below radius 1 and grow above it."""
    start = time.perf_counter()
    radii = np.linspace(0.5, 1.5, 11)
    seeds = np.arange(8)
    nets = ensemble.random_networks(len(radii) * len(seeds), units=32, spectral_radius=np.repeat(radii, len(seeds)),
                                    seed=np.tile(seeds, len(radii)), input_scale=0.1)
    x = np.random.default_rng(0).normal(size=(200, 1))
    h0 = np.random.default_rng(1).normal(size=(nets.n, 32)) * 0.5
    result = ensemble.simulate(nets, x, h0=h0, gradients=True)
    grid = result.grad_h0_norm.reshape(len(radii), len(seeds))
    assert np.all(np.isfinite(grid))
    median = np.median(grid, axis=1)
    assert median[0] < 1e-6 * median[-1]  # radius 0.5 forgets h0, radius 1.5 does not
    assert time.perf_counter() - start < 60  # generous: compile included; it takes ~1-3 s warm


@pytest.mark.parametrize("call,match", [
    (lambda nets: ensemble.simulate(nets, np.ones((4, 3))), r"x of shape \(T, 2\)"),
    (lambda nets: ensemble.simulate(nets, np.ones((5, 4, 2))), r"\(3, T, 2\)"),
    (lambda nets: ensemble.simulate(nets), "steps must be a positive int"),
    (lambda nets: ensemble.simulate(nets, np.ones((4, 2)), h0=np.ones((3, 4))), r"h0 of shape"),
    (lambda nets: ensemble.simulate(nets, np.ones((4, 2)), loss="max"), "loss must be one of"),
    (lambda nets: ensemble.simulate(nets, np.ones((4, 2)), backend="tpu"), "backend must be one of"),
    (lambda nets: ensemble.simulate(nets, np.full((4, 2), np.nan)), "NaN"),
])
def test_bad_input_is_a_clear_error(call, match):
    nets = ensemble.random_networks(3, 2, 2, seed=0)
    with pytest.raises(ValueError, match=match):
        call(nets)


def test_bad_weights_are_clear_errors():
    with pytest.raises(ValueError, match=r"\(networks, units, units\)"):
        ensemble.Ensemble(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="kernel of shape"):
        ensemble.Ensemble(np.ones((2, 3, 3)), kernel=np.ones((2, 3, 2)))
    with pytest.raises(TypeError, match="floating-point"):
        ensemble.Ensemble(np.ones((2, 3, 3), dtype=int))
    with pytest.raises(TypeError, match="Ensemble"):
        ensemble.simulate(np.ones((2, 3, 3)))


def test_docs_gpu_sweep_example_runs(capsys):
    text = (pathlib.Path(__file__).resolve().parents[1] / "docs" / "gpu.md").read_text()
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", text, flags=re.S) if "from rnnlab import ensemble" in b]
    exec(compile(block, "docs/gpu.md", "exec"), {})
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 11 and lines[0].startswith("radius 0.5")
