"""The GPU ensemble kernel against the CPU one (itself tested against a naive loop in tests/test_ensemble.py)."""

import numpy as np
import pytest

from rnnlab import ensemble
from rnnlab.backends.cuda import device as cuda_device

_problem = cuda_device.availability_problem()
if _problem is not None:  # runs on a GPU, or in the simulator (tests/test_cuda_simulator.py)
    pytest.skip(f"CUDA kernels cannot run here: {_problem}", allow_module_level=True)

TOL = {"float32": dict(rtol=2e-4, atol=2e-5), "float64": dict(rtol=1e-10, atol=1e-12)}


@pytest.mark.parametrize("dtype,loss,inputs,units,n,T", [
    ("float64", "final", "shared", 3, 3, 4),
    ("float64", "mean", "per_network", 3, 3, 4),
    ("float32", "mean", "none", 2, 3, 4),
    ("float32", "final", "shared", 33, 1, 2),  # two warps, the second one partly idle
])
def test_gpu_ensemble_matches_cpu(dtype, loss, inputs, units, n, T):
    features = 0 if inputs == "none" else 2
    rng = np.random.default_rng(0)
    nets = ensemble.random_networks(n, units, features, spectral_radius=np.linspace(0.5, 1.5, n), bias_scale=0.2,
                                    seed=np.arange(n), dtype=dtype)
    x = {"shared": rng.normal(size=(T, features)), "per_network": rng.normal(size=(n, T, features)),
         "none": None}[inputs]
    h0 = rng.normal(size=(n, units)) * 0.5
    run = lambda backend: ensemble.simulate(nets, x, steps=T if x is None else None, h0=h0, trajectories=True,
                                            gradients=True, loss=loss, return_grads=True, backend=backend)
    gpu, cpu = run("cuda"), run("numba")
    assert gpu.backend == "cuda"
    for name in ("final_state", "trajectories", "mean_abs", "loss", "grad_norm", "grad_h0_norm"):
        np.testing.assert_allclose(getattr(gpu, name), getattr(cpu, name), err_msg=name, **TOL[dtype])
    for name in cpu.grads:
        np.testing.assert_allclose(gpu.grads[name], cpu.grads[name], err_msg=name, **TOL[dtype])


def test_gpu_ensemble_without_gradients_or_trajectories():
    nets = ensemble.random_networks(2, 3, 1, seed=0)
    x = np.random.default_rng(1).normal(size=(3, 1))
    gpu = ensemble.simulate(nets, x, backend="cuda")
    cpu = ensemble.simulate(nets, x, backend="numba")
    assert gpu.trajectories is None and gpu.grad_norm is None and gpu.grads is None
    np.testing.assert_allclose(gpu.final_state, cpu.final_state, **TOL["float64"])
    np.testing.assert_allclose(gpu.mean_abs, cpu.mean_abs, **TOL["float64"])
