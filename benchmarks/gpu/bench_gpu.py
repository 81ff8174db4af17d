"""rnnlab ``backend="cuda"`` against PyTorch cuDNN on the same GPU, plus the ensemble workload.

Run through ``bash benchmarks/gpu/run.sh`` (which runs the CUDA tests first), or alone::

    PYTHONPATH=. python benchmarks/gpu/bench_gpu.py [--quick] [--budget SECONDS] [--out DIR]

Rows: LSTM, GRU and SimpleRNN in float32, forward + full BPTT, over the CPU
benchmark's grid (T, B, I, H); and the ensemble (N independent SimpleRNN-type
networks, forward + gradients) against a PyTorch batched-matmul loop with
autograd.  Every number is a median of repeated runs after a warm-up run that
includes compilation, with ``synchronize`` before the clock stops.

* ``rnnlab dev``: the device-level API (inputs already on the GPU, like the
  PyTorch tensors): ``forward_device`` + ``backward_device``.
* ``rnnlab host``: the user API ``rl.bptt.forward``/``backward`` with
  ``backend="cuda"``, host arrays in and out (includes the copies).
* ``torch``: ``nn.LSTM``/``nn.GRU``/``nn.RNN`` on cuda (cuDNN), same weights,
  forward + ``backward()``.
* ``ratio`` = torch / rnnlab dev (> 1: rnnlab is faster).
* ``check``: the largest relative difference of rnnlab's outputs and weight
  gradients from PyTorch's (float32; a correctness check at full size).

Needs numpy, numba and numba-cuda; PyTorch is optional (without it only
rnnlab's times are printed); CuPy is optional (rnnlab then uses cuBLAS GEMMs
and CuPy's memory pool).  Exits with status 3 and a message when there is no GPU.
"""

import argparse
import datetime
import os
import platform
import statistics
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

GRID = [(1000, 1, 2, 2), (1000, 1, 8, 32), (1000, 16, 8, 64), (128, 32, 32, 128), (128, 64, 128, 256),
        (64, 64, 256, 512)]
QUICK_GRID = [(1000, 1, 8, 32), (128, 32, 32, 128)]
ENSEMBLE = dict(n=4096, units=64, steps=1000, features=1)
QUICK_ENSEMBLE = dict(n=512, units=64, steps=200, features=1)
NO_GPU = 3


def log(*parts):
    print(*parts, flush=True)


# -- environment ---------------------------------------------------------------------------


def preflight():
    """(info dict, problem or None)."""
    info = {"python": platform.python_version()}
    os.environ.pop("NUMBA_ENABLE_CUDASIM", None)
    try:
        import numpy
        import numba

        info["numpy"], info["numba"] = numpy.__version__, numba.__version__
    except ImportError as error:
        return info, f"numpy and numba are needed: {error}"
    try:
        import numba_cuda

        info["numba-cuda"] = getattr(numba_cuda, "__version__", "?")
    except ImportError:
        return info, "numba-cuda is not installed (pip install 'numba-cuda>=0.30,<0.31'); it provides numba.cuda"
    from numba import cuda

    try:
        available = cuda.is_available()
    except Exception as error:
        return info, f"numba.cuda cannot check for a GPU: {error}"
    if not available:
        return info, "no CUDA GPU is visible to numba.cuda (cuda.is_available() is False); nothing to benchmark"
    try:
        device = cuda.get_current_device()
        name = getattr(device, "name", "numba-cuda simulator")
        name = name.decode() if isinstance(name, bytes) else str(name)
        cc = ".".join(map(str, getattr(device, "compute_capability", ("?",))))
        info["device"] = f"{name} (compute capability {cc})"
    except Exception as error:
        info["device"] = f"? ({error})"
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch.cuda"] = bool(torch.cuda.is_available())
        if torch.cuda.is_available():
            info["cudnn"] = torch.backends.cudnn.version()
    except ImportError:
        info["torch"] = None
    try:
        import cupy

        info["cupy"] = cupy.__version__
    except ImportError:
        info["cupy"] = None
    return info, None


def timed(fn, sync, min_time=0.25, min_runs=3, max_runs=15):
    """Median seconds of ``fn`` after one warm-up call (compilation, allocator warm-up)."""
    fn()
    sync()
    times = []
    while len(times) < min_runs or (sum(times) < min_time and len(times) < max_runs):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def rel_diff(a, b):
    import numpy as np

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


# -- one RNN row ---------------------------------------------------------------------------


def torch_module(kind, cell, I, H):
    """The PyTorch module with ``cell``'s weights (Keras layout -> PyTorch layout), and a gradient mapper."""
    import numpy as np
    import torch

    K, R = cell.kernel, cell.recurrent_kernel
    if kind == "gru":  # Keras gate blocks z, r, h -> PyTorch r, z, n (the same reset_after equations)
        perm = np.concatenate([np.arange(H, 2 * H), np.arange(0, H), np.arange(2 * H, 3 * H)])
        b_in, b_rec = cell.bias[0][perm], cell.bias[1][perm]
        K, R = K[:, perm], R[:, perm]
    else:
        perm = np.arange(K.shape[1])
        b_in, b_rec = cell.bias, np.zeros_like(cell.bias)
    module = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "simple": torch.nn.RNN}[kind](I, H)
    with torch.no_grad():
        module.weight_ih_l0.copy_(torch.from_numpy(np.ascontiguousarray(K.T)))
        module.weight_hh_l0.copy_(torch.from_numpy(np.ascontiguousarray(R.T)))
        module.bias_ih_l0.copy_(torch.from_numpy(np.ascontiguousarray(b_in)))
        module.bias_hh_l0.copy_(torch.from_numpy(np.ascontiguousarray(b_rec)))
    inverse = np.argsort(perm)
    to_keras = lambda grad: grad.detach().cpu().numpy().T[:, inverse]  # (G H, in) -> (in, G H), Keras order
    return module.cuda(), to_keras


def bench_rnn(kind, shape, rng, have_torch):
    import numpy as np

    import rnnlab as rl
    from rnnlab.backends.cuda import host as cuda_host
    from rnnlab.backends.cuda.device import get_device
    from rnnlab.backends.cuda.launch import LaunchGeometry

    T, B, I, H = shape
    make = {"lstm": rl.LSTMCell, "gru": rl.GRUCell, "simple": rl.SimpleRNNCell}[kind]
    cell = make(H, seed=0, bias_initializer="normal")
    cell.build((None, I))
    dev = get_device()
    W = cuda_host.device_weights(cell, dev)
    L = W.adapter.L
    x = rng.normal(size=(T, B, I)).astype(np.float32)
    probe = rng.normal(size=(T, B, H)).astype(np.float32)
    x_d, d_out = dev.to_device(x), dev.to_device(probe)
    s0, d_fin = dev.to_device(np.zeros((L, B, H), np.float32)), dev.to_device(np.zeros((L, B, H), np.float32))
    result = {}

    def device_run():
        fw = cuda_host.forward_device(W, x_d, s0, None, False, True, dev)
        result["fw"], result["g"] = fw, cuda_host.backward_device(fw, d_out, d_fin, None, True, dev)

    sync = dev.synchronize
    row = {"geometry": LaunchGeometry(W.adapter, B, H, "float32"), "dev": timed(device_run, sync)}
    layer = rl.RNN(cell, return_sequences=True, backend="cuda")
    x_bt, probe_bt = x.transpose(1, 0, 2).copy(), probe.transpose(1, 0, 2).copy()

    def host_run():
        _, tape = rl.bptt.forward(layer, x_bt)
        rl.bptt.backward(tape, probe_bt)

    row["host"] = timed(host_run, sync)
    G = W.adapter.G
    row["flop"] = 3 * 2 * T * B * (I + H) * G * H  # forward GEMMs once, backward twice
    if have_torch:
        import torch

        module, to_keras = torch_module(kind, cell, I, H)
        xt = torch.from_numpy(x).cuda().requires_grad_(True)
        pt = torch.from_numpy(probe).cuda()
        holder = {}

        def torch_run():
            module.zero_grad(set_to_none=True)
            xt.grad = None
            out, _ = module(xt)
            (out * pt).sum().backward()
            holder["out"] = out

        row["torch"] = timed(torch_run, torch.cuda.synchronize)
        try:
            fw, g = result["fw"], result["g"]
            diffs = [rel_diff(dev.to_host(fw.out), holder["out"].detach().cpu().numpy()),
                     rel_diff(dev.to_host(g.dK), to_keras(module.weight_ih_l0.grad)),
                     rel_diff(dev.to_host(g.dR), to_keras(module.weight_hh_l0.grad)),
                     rel_diff(dev.to_host(g.dx), xt.grad.cpu().numpy())]
            row["check"] = max(diffs)
        except Exception as error:  # the check must never stop the benchmark
            row["check_error"] = f"{type(error).__name__}: {error}"
    return row


# -- the ensemble --------------------------------------------------------------------------


def bench_ensemble(config, rng, have_torch):
    import numpy as np

    from rnnlab import ensemble
    from rnnlab.backends.cuda.device import get_device
    from rnnlab.ensemble.cuda import ensemble_device

    N, H, T, F = config["n"], config["units"], config["steps"], config["features"]
    nets = ensemble.random_networks(N, H, F, spectral_radius=np.linspace(0.5, 1.5, N), input_scale=0.1, seed=0,
                                    dtype="float32")
    x = rng.normal(size=(T, F)).astype(np.float32)
    h0 = (rng.normal(size=(N, H)) * 0.5).astype(np.float32)
    dev = get_device()
    K_d, R_d, b_d = dev.to_device(nets.kernel), dev.to_device(nets.recurrent_kernel), dev.to_device(nets.bias)
    x_d, h0_d = dev.to_device(x[None]), dev.to_device(h0)
    result = {}

    def device_run():
        result["out"] = ensemble_device(K_d, R_d, b_d, x_d, h0_d, False, True, "final", dev)

    row = {"dev": timed(device_run, dev.synchronize, min_runs=3, max_runs=5)}
    row["host"] = timed(lambda: ensemble.simulate(nets, x, h0=h0, gradients=True, backend="cuda"), dev.synchronize,
                        min_runs=2, max_runs=3)
    row["flop"] = 3 * 2 * N * T * (F + H) * H
    if have_torch:
        import torch

        K = torch.from_numpy(nets.kernel).cuda().requires_grad_(True)
        R = torch.from_numpy(nets.recurrent_kernel).cuda().requires_grad_(True)
        b = torch.from_numpy(nets.bias).cuda().requires_grad_(True)
        xt, h0t = torch.from_numpy(x).cuda(), torch.from_numpy(h0).cuda().requires_grad_(True)

        def torch_run():
            for p in (K, R, b, h0t):
                p.grad = None
            xp = torch.einsum("tf,nfh->tnh", xt, K) + b  # (T, N, H)
            h = h0t
            for t in range(T):
                h = torch.tanh(torch.baddbmm(xp[t].unsqueeze(1), h.unsqueeze(1), R).squeeze(1))
            (0.5 * (h * h).sum()).backward()

        row["torch"] = timed(torch_run, torch.cuda.synchronize, min_runs=2, max_runs=3)
        try:
            out = result["out"]
            norm = torch.sqrt((K.grad ** 2).sum((1, 2)) + (R.grad ** 2).sum((1, 2)) + (b.grad ** 2).sum(1))
            row["check"] = max(rel_diff(dev.to_host(out["grad_norm"]), norm.cpu().numpy()),
                               rel_diff(dev.to_host(out["grad_h0_norm"]), h0t.grad.norm(dim=1).cpu().numpy()))
        except Exception as error:
            row["check_error"] = f"{type(error).__name__}: {error}"
    return row


# -- report --------------------------------------------------------------------------------


def gemm_peak(have_torch):
    """Measured float32 GEMM TFLOP/s (torch.matmul, TF32 off), or None."""
    if not have_torch:
        return None
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    n = 8192
    a = torch.randn(n, n, device="cuda")
    b = torch.randn(n, n, device="cuda")
    seconds = timed(lambda: torch.matmul(a, b), torch.cuda.synchronize, min_runs=3, max_runs=5)
    return 2 * n ** 3 / seconds / 1e12


def fmt_ms(seconds):
    return "-" if seconds is None else f"{seconds * 1e3:9.2f}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="two grid rows and a small ensemble")
    parser.add_argument("--budget", type=float, default=270, help="seconds; rows that would start later are skipped")
    parser.add_argument("--out", default=None, help="folder for the markdown report (default: benchmarks/gpu)")
    parser.add_argument("--preflight", action="store_true", help="only check the environment and print it")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    info, problem = preflight()
    for key, value in info.items():
        log(f"  {key:<11} {value}")
    if problem:
        log(f"GPU benchmark not run: {problem}")
        return NO_GPU
    have_torch = bool(info.get("torch")) and info.get("torch.cuda", False)
    if not have_torch:
        log("PyTorch with CUDA is not available: printing rnnlab's times only (no cuDNN comparison)")
    if args.preflight:
        return 0

    import warnings

    import numpy as np
    from numba.core.errors import NumbaPerformanceWarning

    from rnnlab.backends.cuda.device import get_device

    # "Grid size N will likely result in GPU under-utilization": by design for
    # the persistent kernels at small batch (one block per batch row)
    warnings.simplefilter("ignore", NumbaPerformanceWarning)
    log(f"  GEMMs      {'CuPy (cuBLAS)' if get_device().cupy() is not None else 'numba tiled kernel'}")
    rng = np.random.default_rng(0)
    peak = gemm_peak(have_torch)
    if peak:
        log(f"  fp32 GEMM peak (torch.matmul 8192^2, TF32 off): {peak:.1f} TFLOP/s")
    header = (f"{'cell':<8}{'T':>6}{'B':>5}{'I':>5}{'H':>5}  {'path':<11}{'rnnlab dev':>11}{'rnnlab host':>12}"
              f"{'torch':>10}{'ratio':>8}{'GFLOP/s':>9}{'% peak':>7}  check")
    lines = [header]
    log("\nforward + full BPTT, float32, milliseconds (median); ratio = torch / rnnlab dev\n" + header)
    grid = QUICK_GRID if args.quick else GRID
    jobs = [("lstm", s) for s in grid] + [("ensemble", None)] + [(k, s) for k in ("gru", "simple") for s in grid]
    goals = {"rnn": [], "ensemble": None}
    for kind, shape in jobs:
        if time.perf_counter() - start > args.budget:
            line = f"{kind:<8} {shape}  skipped: over the --budget of {args.budget:.0f} s"
            log(line)
            lines.append(line)
            continue
        try:
            if kind == "ensemble":
                config = QUICK_ENSEMBLE if args.quick else ENSEMBLE
                row = bench_ensemble(config, rng, have_torch)
                label = (f"{'ensemble':<8}{config['steps']:>6}{config['n']:>5}{config['features']:>5}"
                         f"{config['units']:>5}  {'N nets':<11}")
            else:
                row = bench_rnn(kind, shape, rng, have_torch)
                T, B, I, H = shape
                label = f"{kind:<8}{T:>6}{B:>5}{I:>5}{H:>5}  {row['geometry'].path:<11}"
        except Exception as error:
            line = f"{kind:<8} {shape}  FAILED: {type(error).__name__}: {error}"
            log(line)
            lines.append(line)
            continue
        ratio = row["torch"] / row["dev"] if "torch" in row else None
        gflops = row["flop"] / row["dev"] / 1e9
        check = f"{row['check']:.1e}" if "check" in row else row.get("check_error", "-")
        line = (f"{label}{fmt_ms(row['dev']):>11}{fmt_ms(row['host']):>12}{fmt_ms(row.get('torch')):>10}"
                f"{'-' if ratio is None else f'{ratio:7.2f}x':>8}{gflops:9.1f}"
                f"{'-' if not peak else f'{100 * gflops / 1e3 / peak:6.1f}%':>7}  {check}")
        log(line)
        lines.append(line)
        if ratio is not None:
            if kind == "ensemble":
                goals["ensemble"] = ratio
            elif shape[1] <= 16 and shape[3] <= 256:
                goals["rnn"].append((kind, shape, ratio))
    summary = []
    if goals["rnn"]:
        met = [r for r in goals["rnn"] if r[2] >= 1.0]
        summary.append(f"goal >= 1.0x cuDNN for B <= 16, H <= 256: {len(met)} of {len(goals['rnn'])} rows met"
                       + "".join(f"\n  not met: {k} {s} {r:.2f}x" for k, s, r in goals["rnn"] if r < 1.0))
    if goals["ensemble"] is not None:
        summary.append(f"goal ensemble >= 5x a PyTorch batched-matmul loop: {goals['ensemble']:.1f}x, "
                       f"{'met' if goals['ensemble'] >= 5 else 'NOT met'}")
    for line in summary:
        log(line)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    report = [f"# rnnlab GPU benchmark, {stamp}", ""] + [f"- {k}: {v}" for k, v in info.items()]
    report += ["", "```", *lines, "```", "", *summary, "", f"total {time.perf_counter() - start:.0f} s"]
    out_dir = args.out or os.path.join(ROOT, "benchmarks", "gpu")
    try:
        os.makedirs(out_dir, exist_ok=True)
        path = os.path.join(out_dir, "last_run.md")
        with open(path, "w") as f:
            f.write("\n".join(report) + "\n")
        log(f"\nreport written to {path} ({time.perf_counter() - start:.0f} s)")
    except OSError as error:
        log(f"could not write the report: {error}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
