"""Ensembles: simulate, and differentiate, thousands of small independent RNNs at once.

Sweeps over many small networks (an "edge of chaos" grid of spectral radius x
seed, say) are a different workload from one big network: each network is
tiny, so the work is in running all of them together.  Every network n has its
own weights and follows the SimpleRNN equation (Keras layout, row vectors):

```text
    h_t = tanh(x_t K_n + h_{t-1} R_n + b_n)        t = 1..T
```

with K_n (F, H), R_n (H, H), b_n (H,).  The input x is shared by every
network ((T, F)), given per network ((N, T, F)), or absent (autonomous
dynamics, F = 0).

`simulate` returns each network's final state, optionally its
trajectory, and per-network summaries: the mean |h| over time and units, the
loss, and -- with ``gradients=True`` -- the norm of the gradient of a simple
loss with respect to the weights (K, R, b) and to the initial state:

```text
    loss="final":  L_n = 1/2 |h_T|^2
    loss="mean":   L_n = 1/(2T) sum_t |h_t|^2
```

``backend="numba"`` runs a numba ``prange`` kernel over the networks on the
CPU (`rnnlab.ensemble.cpu`); ``backend="cuda"`` runs one block per
network on a GPU, all in one launch (`rnnlab.ensemble.cuda`).
``backend="auto"`` picks the GPU only when a real one is present.  The old
spelling ``backend="cpu"`` still means ``"numba"``.  Nothing is imported or
compiled until the first call.

Example: an edge-of-chaos sweep (see ``docs/gpu.md``):

```text
    import numpy as np
    from rnnlab import ensemble

    radii = np.linspace(0.5, 1.5, 11)
    seeds = np.arange(8)
    nets = ensemble.random_networks(len(radii) * len(seeds), units=32,
                                    spectral_radius=np.repeat(radii, len(seeds)),
                                    seed=np.tile(seeds, len(radii)), input_scale=0.1)
    x = np.random.default_rng(0).normal(size=(200, 1))
    h0 = np.random.default_rng(1).normal(size=(nets.n, 32)) * 0.5
    result = ensemble.simulate(nets, x, h0=h0, gradients=True)
    grid = result.grad_h0_norm.reshape(len(radii), len(seeds))  # radius x seed
```
"""

import numpy as np

from .. import validation

LOSSES = ("final", "mean")
BACKENDS = ("auto", "numba", "cuda")
#: Older spellings of a backend name, still accepted.
BACKEND_ALIASES = {"cpu": "numba"}


class Ensemble:
    """The weights of N independent SimpleRNN-type networks.

    Attributes: ``kernel`` (N, F, H) (F may be 0), ``recurrent_kernel``
    (N, H, H), ``bias`` (N, H); ``n``, ``units``, ``features``, ``dtype``.
    """

    def __init__(self, recurrent_kernel, kernel=None, bias=None, dtype=None):
        if dtype is None:
            dtype = getattr(recurrent_kernel, "dtype", None)
            dtype = dtype.name if dtype is not None and dtype.kind == "f" else "float64"
        self.dtype = validation.check_dtype_name(dtype)
        R = validation.float_array(recurrent_kernel, "recurrent_kernel", self.dtype)
        if R.ndim != 3 or R.shape[1] != R.shape[2] or R.shape[0] == 0 or R.shape[1] == 0:
            raise ValueError(f"expected recurrent_kernel of shape (networks, units, units), got {R.shape}")
        n, units = R.shape[0], R.shape[1]
        if kernel is None:
            K = np.zeros((n, 0, units), self.dtype)
        else:
            K = validation.float_array(kernel, "kernel", self.dtype)
            if K.ndim != 3 or K.shape[0] != n or K.shape[2] != units:
                raise ValueError(f"expected kernel of shape (networks, features, units) = ({n}, F, {units}), "
                                 f"got {K.shape}")
        if bias is None:
            b = np.zeros((n, units), self.dtype)
        else:
            b = validation.float_array(bias, "bias", self.dtype)
            if b.shape != (n, units):
                raise ValueError(f"expected bias of shape (networks, units) = {(n, units)}, got {b.shape}")
        self.kernel = np.ascontiguousarray(K)
        self.recurrent_kernel = np.ascontiguousarray(R)
        self.bias = np.ascontiguousarray(b)

    @property
    def n(self):
        return self.recurrent_kernel.shape[0]

    @property
    def units(self):
        return self.recurrent_kernel.shape[1]

    @property
    def features(self):
        return self.kernel.shape[1]

    def spectral_radius(self):
        """(N,) largest |eigenvalue| of each recurrent kernel."""
        return np.abs(np.linalg.eigvals(self.recurrent_kernel.astype(np.float64))).max(axis=1)

    def astype(self, dtype):
        return Ensemble(self.recurrent_kernel, self.kernel, self.bias, dtype)

    def __len__(self):
        return self.n

    def __repr__(self):
        return f"Ensemble(n={self.n}, units={self.units}, features={self.features}, dtype={self.dtype!r})"


def random_networks(n, units, features=1, spectral_radius=1.0, input_scale=1.0, bias_scale=0.0, seed=0,
                    dtype="float64"):
    """N random networks; network i's weights depend only on ``(seed[i], i)``.

    R_i = spectral_radius[i] * W / max|eig(W)| with W ~ N(0, 1/units);
    K_i ~ N(0, input_scale^2 / features); b_i ~ N(0, bias_scale^2).
    ``spectral_radius``, ``input_scale``, ``bias_scale`` and ``seed`` are scalars
    or length-n arrays, so a grid is ``np.repeat``/``np.tile`` away.
    """
    n, units = validation.count(n, "n"), validation.count(units, "units")
    features = validation.count(features, "features", minimum=0)
    per = lambda value, name: _per_network(value, n, name)
    radius, in_scale, b_scale = per(spectral_radius, "spectral_radius"), per(input_scale, "input_scale"), \
        per(bias_scale, "bias_scale")
    seeds = per(seed, "seed").astype(np.int64)
    R = np.empty((n, units, units))
    K = np.empty((n, features, units))
    b = np.empty((n, units))
    for i in range(n):
        rng = np.random.default_rng([int(seeds[i]), i])
        W = rng.normal(scale=1 / np.sqrt(units), size=(units, units))
        rho = np.abs(np.linalg.eigvals(W)).max()
        R[i] = W * (radius[i] / rho if rho > 0 else 0.0)
        K[i] = rng.normal(scale=in_scale[i] / np.sqrt(max(features, 1)), size=(features, units))
        b[i] = rng.normal(scale=1.0, size=units) * b_scale[i]
    return Ensemble(R, K, b, dtype)


def _per_network(value, n, name):
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 0:
        return np.full(n, float(array))
    if array.shape != (n,):
        raise ValueError(f"{name} must be a scalar or an array of shape ({n},), got shape {array.shape}")
    return array


class EnsembleResult:
    """What `simulate` returns.

    Attributes (N = networks, T = steps, H = units):
        final_state: (N, H).
        trajectories: (N, T, H) states after every step, or None.
        mean_abs: (N,) mean of |h_t| over t and units.
        loss: (N,) the loss (see the module docstring).
        grad_norm: (N,) sqrt(|dL/dK|^2 + |dL/dR|^2 + |dL/db|^2), or None.
        grad_h0_norm: (N,) |dL/dh_0|, or None.
        grads: with ``return_grads``, a dict of ``kernel`` (N, F, H),
            ``recurrent_kernel`` (N, H, H), ``bias`` (N, H), ``h0`` (N, H).
        backend: ``"numba"`` or ``"cuda"``.
    """

    def __init__(self, final_state, trajectories, mean_abs, loss, grad_norm, grad_h0_norm, grads, backend):
        self.final_state = final_state
        self.trajectories = trajectories
        self.mean_abs = mean_abs
        self.loss = loss
        self.grad_norm = grad_norm
        self.grad_h0_norm = grad_h0_norm
        self.grads = grads
        self.backend = backend

    def __repr__(self):
        n = self.final_state.shape[0]
        extra = "" if self.grad_norm is None else ", gradients"
        return f"EnsembleResult(n={n}, backend={self.backend!r}{extra})"


def simulate(ensemble, x=None, steps=None, h0=None, trajectories=False, gradients=False, loss="final",
             return_grads=False, backend="auto"):
    """Run every network of ``ensemble`` over T steps; see the module docstring.

    x: (T, F) shared by all networks, (N, T, F) one per network, or None with
    ``steps=T`` for autonomous networks (then F must be 0 or x is taken as zeros).
    h0: (N, H) initial states (zeros by default).
    """
    if not isinstance(ensemble, Ensemble):
        raise TypeError(f"simulate takes an Ensemble (see random_networks), got {type(ensemble).__name__}")
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    backend = BACKEND_ALIASES.get(backend, backend)
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    dtype, n, units, features = ensemble.dtype, ensemble.n, ensemble.units, ensemble.features
    if x is None:
        x = np.zeros((validation.count(steps, "without inputs x, steps"), features), dtype)
    else:
        x = validation.float_array(x, "x", dtype)
        if x.ndim == 2:
            expected = f"(T, {features})"
            ok = x.shape[1] == features
        elif x.ndim == 3:
            expected = f"({n}, T, {features})"
            ok = x.shape[0] == n and x.shape[2] == features
        else:
            expected, ok = f"(T, {features}) or ({n}, T, {features})", False
        if not ok or x.shape[-2] == 0:
            raise ValueError(f"expected x of shape {expected} for this ensemble, got {x.shape}")
        if steps is not None and steps != x.shape[-2]:
            raise ValueError(f"steps={steps!r} disagrees with x, which has {x.shape[-2]} steps")
    x = np.ascontiguousarray(x)
    if h0 is None:
        h0 = np.zeros((n, units), dtype)
    else:
        h0 = validation.float_array(h0, "h0", dtype)
        if h0.shape != (n, units):
            raise ValueError(f"expected h0 of shape (networks, units) = {(n, units)}, got {h0.shape}")
        h0 = np.ascontiguousarray(h0)
    from ..backends.cuda import device as cuda_device  # cheap: imports no numba

    if backend == "auto":
        backend = "cuda" if cuda_device.gpu_available() else "numba"
    options = dict(trajectories=bool(trajectories), gradients=bool(gradients or return_grads), loss=loss,
                   return_grads=bool(return_grads))
    if backend == "cuda":
        problem = cuda_device.availability_problem()
        if problem is not None:
            raise ValueError(f"ensemble backend 'cuda' is not available: {problem}")
        from . import cuda as ensemble_cuda

        raw = ensemble_cuda.run(ensemble, x, h0, **options)
    else:
        from . import cpu as ensemble_cpu

        raw = ensemble_cpu.run(ensemble, x, h0, **options)
    return EnsembleResult(backend=backend, **raw)
