"""CPU benchmark of the numba kernels against the python backend and PyTorch (not a test).

    .venv/bin/python benchmarks/bench_cpu.py [--quick] [--cells lstm,gru,simple_rnn,min_gru,min_lstm]
                                             [--rounds N] [--repeat N]

``make bench`` runs it.  For LSTM, GRU and SimpleRNN in float32, forward plus
full BPTT (``bptt.forward`` + ``bptt.backward`` with a gradient on every
output, inputs' gradient included) over the grid (T, B, I, H), and for minGRU
and minLSTM over the rows of MIN_GRID, it compares the numba backend with
PyTorch's ``nn.LSTM``/``nn.GRU``/``nn.RNN`` with autograd on the same weights
(for minGRU and minLSTM, which torch does not have, a Python loop over time of
the same equations, with autograd through it: the input projection is one
matmul before the loop, as in rnnlab).  The outputs are checked to agree first.

How it measures, so that one noisy moment cannot decide a row:

* the whole table runs ``--rounds`` times (5 by default).  In every round each
  row times numba and torch back to back (``--repeat`` runs each, after one
  discarded warm-up run), and the order of the two alternates from round to
  round;
* a round gives each row one ratio: torch's median over numba's median;
* a row's result is the median of its rounds' ratios with their min-max
  spread, and it **meets** a target only when the whole spread is at or
  above it.

It also prints the python backend (forward only, and forward + backward, on a
shortened sequence scaled to T, as the table says), numba's achieved GFLOP/s
(matrix products only: 6 T B (I+H) G for forward plus backward, G = gates x H)
against this machine's float32 GEMM peak measured with NumPy, ``import
rnnlab`` time, and the first call of every cell with an empty numba cache
(compilation) and with a warm cache (loading), each in a fresh process.

PyTorch runs in a worker process, so that its OpenMP threads and the kernels'
BLAS threads never compete inside one process.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

GRID = [(1000, 1, 2, 2), (1000, 1, 8, 32), (1000, 16, 8, 64), (128, 32, 32, 128), (128, 64, 128, 256),
        (64, 64, 256, 512)]
#: The rows of the cells without a recurrent kernel: the issue's T = 1000 at B = 1 and B = 16.
MIN_GRID = [(1000, 1, 8, 32), (1000, 16, 8, 64)]
#: name -> (class, gate blocks, torch.nn module or None for a torch loop of the same equations, rows)
CELLS = {"lstm": ("LSTMCell", 4, "LSTM", GRID), "gru": ("GRUCell", 3, "GRU", GRID),
         "simple_rnn": ("SimpleRNNCell", 1, "RNN", GRID),
         "min_gru": ("MinGRUCell", 2, None, MIN_GRID), "min_lstm": ("MinLSTMCell", 3, None, MIN_GRID)}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# -- PyTorch, in a worker process ---------------------------------------------------------------


def torch_worker():
    """Serve timing requests on stdin/stdout: one JSON object per line.  Each row's module is kept
    under its ``key``, so that the rounds can come back to it."""
    import torch

    cases = {}
    for line in sys.stdin:
        request = json.loads(line)
        if request["cmd"] == "setup":
            data = np.load(request["path"])
            module, x, dy, check = _torch_setup(torch, request["cell"], data)
            cases[request["key"]] = (module, x, dy)
            reply = {"max_abs_diff": check}
        elif request["cmd"] == "time":
            module, x, dy = cases[request["key"]]
            reply = {"times": timed(lambda: _torch_step(module, x, dy), request["n"])}
        elif request["cmd"] == "info":
            reply = {"torch": torch.__version__, "threads": torch.get_num_threads()}
        else:
            break
        print(json.dumps(reply), flush=True)


def _torch_min_loop(torch, cell, K, b):
    """minGRU or minLSTM as a torch module: one matmul for every step's pre-activations, then a
    Python loop over time of the cell's equations, through which autograd runs."""
    H = b.shape[0] // CELLS[cell][1]

    class MinLoop(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.kernel = torch.nn.Parameter(torch.from_numpy(K.copy()))
            self.bias = torch.nn.Parameter(torch.from_numpy(b.copy()))

        def forward(self, x):  # x (B, T, I), batch first as nn.LSTM; returns (y (B, T, H), h)
            a = x @ self.kernel + self.bias  # (B, T, G H)
            h = x.new_zeros(x.shape[0], H)
            outputs = []
            # unbind, not a[:, t]: each slice's backward would add a gradient of all of a (T^2 work)
            for a_t in a.unbind(dim=1):
                if cell == "min_gru":  # h' = (1 - z) h + z hh, hh linear
                    z = torch.sigmoid(a_t[:, :H])
                    h = (1 - z) * h + z * a_t[:, H:]
                else:  # h' = (f h + i hh) / (f + i), hh linear
                    f, i = torch.sigmoid(a_t[:, :H]), torch.sigmoid(a_t[:, H : 2 * H])
                    h = (f * h + i * a_t[:, 2 * H :]) / (f + i)
                outputs.append(h)
            return torch.stack(outputs, dim=1), h

    return MinLoop()


def _torch_setup(torch, cell, data):
    """An nn.LSTM/GRU/RNN (or a torch loop) with rnnlab's (Keras-layout) weights; returns it and its max
    output difference."""
    if CELLS[cell][2] is None:
        module = _torch_min_loop(torch, cell, data["kernel"], data["bias"])
    else:
        module = _torch_module(torch, cell, data)
    x = torch.from_numpy(data["x"]).requires_grad_(True)
    dy = torch.from_numpy(data["dy"])
    with torch.no_grad():
        y, _ = module(x)
    return module, x, dy, float(np.abs(y.numpy() - data["y"]).max())


def _torch_module(torch, cell, data):
    """An nn.LSTM/GRU/RNN with rnnlab's (Keras-layout) weights."""
    K, R, b = data["kernel"], data["recurrent_kernel"], data["bias"]
    I, G = K.shape
    H = R.shape[0]
    if cell == "lstm":  # Keras gates i, f, c, o are torch's i, f, g, o: only transpose
        module = torch.nn.LSTM(I, H, batch_first=True)
        order, b_in, b_rec = np.arange(G), b, np.zeros_like(b)
    elif cell == "gru":  # Keras z, r, h (reset_after) -> torch r, z, n
        module = torch.nn.GRU(I, H, batch_first=True)
        order = np.concatenate([np.arange(H, 2 * H), np.arange(H), np.arange(2 * H, 3 * H)])
        b_in, b_rec = b[0], b[1]
    else:
        module = torch.nn.RNN(I, H, batch_first=True, nonlinearity="tanh")
        order, b_in, b_rec = np.arange(G), b, np.zeros_like(b)
    with torch.no_grad():
        module.weight_ih_l0.copy_(torch.from_numpy(np.ascontiguousarray(K[:, order].T)))
        module.weight_hh_l0.copy_(torch.from_numpy(np.ascontiguousarray(R[:, order].T)))
        module.bias_ih_l0.copy_(torch.from_numpy(b_in[order]))
        module.bias_hh_l0.copy_(torch.from_numpy(b_rec[order]))
    return module


def _torch_step(module, x, dy):
    x.grad = None
    module.zero_grad(set_to_none=True)
    y, _ = module(x)
    y.backward(dy)


class Torch:
    """The worker process, or None fields when torch is not installed."""

    def __init__(self):
        self.process = None
        try:
            import importlib.util

            if importlib.util.find_spec("torch") is None:
                return
        except ImportError:
            return
        self.process = subprocess.Popen([sys.executable, __file__, "--torch-worker"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, cwd=ROOT)
        self.info = self.ask(cmd="info")

    @property
    def available(self):
        return self.process is not None

    def ask(self, **request):
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def close(self):
        if self.process is not None:
            self.process.stdin.close()
            self.process.wait()


# -- rnnlab ----------------------------------------------------------------------------------------


def make_layer(rl, cell, H, backend):
    cls = getattr(rl, CELLS[cell][0])
    return rl.RNN(cls(H, seed=0, bias_initializer="normal"), return_sequences=True, backend=backend)


def forward_backward(rl, layer, x, dy):
    y, tape = rl.bptt.forward(layer, x)
    rl.bptt.backward(tape, dy)


def timed(fn, n):
    """n timings of fn() after one untimed warm-up run."""
    fn()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def python_steps(T, B, H):
    """How many steps the python backend runs (its time is scaled to T): 100, or 16 for the big rows."""
    return min(T, 100 if B * H <= 1024 else 16)


def gemm_peak(n=2048, repeat=5):
    """float32 GFLOP/s of NumPy's matmul at n x n x n, best of ``repeat``."""
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    b = a.copy()
    a @ b
    best = min(timed(lambda: a @ b, repeat))
    return 2 * n**3 / best / 1e9


def flops(T, B, I, H, gates, recurrent=True):
    """Matrix-product FLOPs of forward + backward: 3 x (forward's 2 T B (I+H) G); I alone without R."""
    return 6 * T * B * (I + (H if recurrent else 0)) * gates * H


class Row:
    """One (cell, row) of the table: its numba layer and data, and what every round measured."""

    def __init__(self, rl, torch, cell, row, quick):
        T, B, I, H = row
        self.cell, self.row = cell, row
        rng = np.random.default_rng(1)
        self.x = rng.standard_normal((B, T, I), dtype=np.float32)
        self.dy = rng.standard_normal((B, T, H), dtype=np.float32)
        self.layer = make_layer(rl, cell, H, "numba")
        y = self.layer(self.x)  # builds the cell
        self.key = f"{cell} {row}"
        self.torch_max_abs_diff = None
        if torch.available:
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "case.npz")
                weights = dict(zip(self.layer.cell.weight_names, self.layer.cell.get_weights()))
                np.savez(path, **weights, x=self.x, dy=self.dy, y=y)
                self.torch_max_abs_diff = torch.ask(cmd="setup", path=path, cell=cell, key=self.key)["max_abs_diff"]
            if self.torch_max_abs_diff > 1e-3:
                raise SystemExit(f"torch and rnnlab disagree on {cell} {row}: "
                                 f"max |y difference| {self.torch_max_abs_diff:.2e}")
        self.numba_rounds, self.torch_rounds = [], []  # one median per round
        self.python_forward, self.python, self.python_steps = self._python(rl, quick)

    def measure_round(self, rl, torch, repeat, torch_first):
        """One round: numba and torch back to back, each ``repeat`` runs after a warm-up."""
        def run_torch():
            if torch.available:
                self.torch_rounds.append(statistics.median(torch.ask(cmd="time", key=self.key, n=repeat)["times"]))

        if torch_first:
            run_torch()
        self.numba_rounds.append(statistics.median(
            timed(lambda: forward_backward(rl, self.layer, self.x, self.dy), repeat)))
        if not torch_first:
            run_torch()

    def _python(self, rl, quick):
        """The python backend's forward and forward + backward times, on a shortened sequence scaled to T."""
        T, B, _, H = self.row
        steps = python_steps(T, B, H)
        py_layer = make_layer(rl, self.cell, H, "python")
        py_layer.build(self.x.shape)
        py_layer.set_weights(self.layer.get_weights())
        xs, dys = self.x[:, :steps], self.dy[:, :steps]
        n_py, scale = (1 if quick else 3), T / steps
        forward = statistics.median(timed(lambda: py_layer(xs), n_py)) * scale
        both = statistics.median(timed(lambda: forward_backward(rl, py_layer, xs, dys), n_py)) * scale
        return forward, both, steps

    @property
    def numba(self):
        return statistics.median(self.numba_rounds)

    @property
    def torch(self):
        return statistics.median(self.torch_rounds) if self.torch_rounds else None

    @property
    def ratios(self):
        """torch/numba of every round (empty without torch)."""
        return [t / n for t, n in zip(self.torch_rounds, self.numba_rounds)]

    @property
    def gflops(self):
        return flops(*self.row, CELLS[self.cell][1], CELLS[self.cell][2] is not None) / self.numba / 1e9


# -- start-up costs, each in a fresh process ----------------------------------------------------------

FIRST_CALL = """
import time
t0 = time.perf_counter()
import numpy as np, rnnlab as rl
t1 = time.perf_counter()
x = np.ones((2, 5, 3), "float32")
cells = {"LSTMCell": rl.LSTMCell(4, seed=0), "GRUCell": rl.GRUCell(4, seed=0),
         "GRUCell(reset_after=False)": rl.GRUCell(4, seed=0, reset_after=False),
         "SimpleRNNCell": rl.SimpleRNNCell(4, seed=0), "MinGRUCell": rl.MinGRUCell(4, seed=0),
         "MinLSTMCell": rl.MinLSTMCell(4, seed=0)}
for name, cell in cells.items():
    layer = rl.RNN(cell, return_sequences=True, backend="numba")
    start = time.perf_counter()
    y, tape = rl.bptt.forward(layer, x)
    rl.bptt.backward(tape, np.ones_like(y))
    print(name, time.perf_counter() - start)
print("import", t1 - t0)
"""


def first_calls(cache_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    out = subprocess.run([sys.executable, "-c", FIRST_CALL], capture_output=True, text=True, check=True,
                         env=env, cwd=ROOT).stdout
    return {name: float(value) for name, value in (line.split() for line in out.splitlines())}


def import_time(repeat=5):
    """Median cumulative ``import rnnlab`` time from ``python -X importtime``, and whether numba got imported."""
    samples = []
    for _ in range(repeat):
        err = subprocess.run([sys.executable, "-X", "importtime", "-c", "import rnnlab"], capture_output=True,
                             text=True, check=True, cwd=ROOT).stderr
        row = [line for line in err.splitlines() if line.rstrip().endswith("| rnnlab")][-1]
        samples.append(int(row.split("|")[1]) / 1e6)
    loaded = subprocess.run([sys.executable, "-c", "import sys, rnnlab; print('numba' in sys.modules)"],
                            capture_output=True, text=True, check=True, cwd=ROOT).stdout.strip()
    return statistics.median(samples), loaded == "True"


# -- report -------------------------------------------------------------------------------------------


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()} cores, {model}, {platform.system()} {platform.machine()}"


def fmt_time(seconds):
    if seconds is None:
        return "-"
    return f"{seconds * 1e3:.2f}" if seconds < 10 else f"{seconds:.1f} s"


def target(r):
    """The torch/numba ratio a row must reach: 3x on the two smallest rows and against the torch loops, else 1x."""
    return 3.0 if r.row in GRID[:2] or CELLS[r.cell][2] is None else 1.0


def verdict(r):
    """'met' only when every round's ratio reaches the target."""
    if not r.ratios:
        return "-"
    return "met" if min(r.ratios) >= target(r) else "NOT met"


def print_table(results, peak, rounds):
    print(f"\nforward + full BPTT, float32; numba and torch: the median of {rounds} rounds' median ms (python: its "
          "T shown, scaled to the row's T);\ntorch/numba: the median of the rounds' own ratios (not the torch column over the "
          "numba column) and their min-max; a row is met when the whole spread reaches the target")
    header = (f"{'cell':<10} {'T':>5} {'B':>3} {'I':>4} {'H':>4} | {'python fwd':>10} {'python f+b':>10} "
              f"{'(T py)':>6} | {'numba':>8} {'torch':>8} | {'torch/numba':>11} {'min-max':>13} {'target':>6} "
              f"{'verdict':>7} | {'python/numba':>12} | {'GFLOP/s':>7} {'% peak':>6}")
    print(header)
    print("-" * len(header))
    for r in results:
        T, B, I, H = r.row
        ratios = r.ratios
        median = f"{statistics.median(ratios):.2f}x" if ratios else "-"
        spread = f"{min(ratios):.2f}-{max(ratios):.2f}x" if ratios else "-"
        print(f"{r.cell:<10} {T:>5} {B:>3} {I:>4} {H:>4} | {fmt_time(r.python_forward):>10} "
              f"{fmt_time(r.python):>10} {r.python_steps:>6} | {fmt_time(r.numba):>8} "
              f"{fmt_time(r.torch):>8} | {median:>11} {spread:>13} {target(r):>5.0f}x {verdict(r):>7} | "
              f"{r.python / r.numba:>11.0f}x | {r.gflops:>7.1f} {100 * r.gflops / peak:>5.1f}%")


def goals(results, compile_total, warm_total, import_seconds):
    """The issue's goals, each met or not, in plain words: a row counts only when its whole spread is met."""
    lines = []

    def summary(rows, what):
        missed = [r for r in rows if verdict(r) != "met"]
        lines.append(f"{what}: {'met' if not missed else 'NOT met'}"
                     + ("" if not missed else " (" + ", ".join(
                         f"{r.cell} {r.row}: {statistics.median(r.ratios):.2f}x, min {min(r.ratios):.2f}x"
                         for r in missed) + ")"))

    measured = [r for r in results if r.ratios]
    loops = [r for r in measured if CELLS[r.cell][2] is None]
    if loops:
        summary(loops, "numba >= 3x the torch loop on every minGRU/minLSTM row, in every round")
    classic = [r for r in measured if CELLS[r.cell][2] is not None]
    if classic:
        summary([r for r in classic if r.row not in GRID[:2]], "numba >= 1.0x torch on every larger row, in every round")
        summary([r for r in classic if r.row in GRID[:2]], "numba >= 3x torch on the two smallest rows, in every round")
    if not measured:
        lines.append("torch is not installed: the torch goals were not measured")
    at_target = [r for r in results if r.row == (1000, 1, 8, 32)]
    if at_target:
        worst = min(r.python / r.numba for r in at_target)
        lines.append(f"numba >= 20x python at (1000, 1, 8, 32): {'met' if worst >= 20 else 'NOT met'} "
                     f"(lowest {worst:.0f}x)")
    lines.append(f"cold compile of the classic cells (LSTM, GRU both modes, SimpleRNN; float32) < 30 s: {'met' if compile_total < 30 else 'NOT met'} "
                 f"({compile_total:.1f} s)")
    lines.append(f"warm first call < 1 s: {'met' if warm_total < 1 else 'NOT met'} ({warm_total:.2f} s for the four)")
    lines.append(f"import rnnlab < 1 s: {'met' if import_seconds < 1 else 'NOT met'} ({import_seconds:.2f} s)")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--cells", default=",".join(CELLS))
    parser.add_argument("--rounds", type=int, default=None, help="times the whole table runs (default 5, quick 2)")
    parser.add_argument("--repeat", type=int, default=None, help="timed runs per row and round (default 3, quick 2)")
    parser.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.torch_worker:
        return torch_worker()
    repeat = args.repeat or (2 if args.quick else 3)
    rounds = args.rounds or (2 if args.quick else 5)

    import numba
    import scipy

    import rnnlab as rl

    torch = Torch()
    print(f"rnnlab CPU benchmark, {datetime.datetime.now():%Y-%m-%d %H:%M}")
    print(f"machine: {machine()}")
    versions = (f"python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, "
                f"numba {numba.__version__}")
    if torch.available:
        versions += f", torch {torch.info['torch']} ({torch.info['threads']} threads)"
    else:
        versions += ", torch not installed (pip install -e '.[bench]')"
    print(versions)
    peak = gemm_peak()
    print(f"float32 GEMM peak (NumPy matmul 2048^3): {peak:.0f} GFLOP/s")

    import_seconds, numba_imported = import_time()
    with tempfile.TemporaryDirectory() as cache:
        cold = first_calls(cache)
        warm = first_calls(cache)
    cells = ("LSTMCell", "GRUCell", "GRUCell(reset_after=False)", "SimpleRNNCell")
    compile_total, warm_total = sum(cold[c] for c in cells), sum(warm[c] for c in cells)
    print(f"import rnnlab: {import_seconds:.2f} s (imports numba: {numba_imported})")
    print("first call, forward + backward, empty cache (compiles): "
          + ", ".join(f"{c} {cold[c]:.1f} s" for c in cells) + f"; in all {compile_total:.1f} s")
    print("first call, warm cache (loads): " + ", ".join(f"{c} {warm[c]:.2f} s" for c in cells)
          + f"; in all {warm_total:.2f} s")
    print("first call of the cells without a recurrent kernel: empty cache "
          + ", ".join(f"{c} {cold[c]:.1f} s" for c in ("MinGRUCell", "MinLSTMCell")) + "; warm cache "
          + ", ".join(f"{c} {warm[c]:.2f} s" for c in ("MinGRUCell", "MinLSTMCell")))

    rows = []
    try:
        for cell in args.cells.split(","):
            for row in CELLS[cell][3]:
                rows.append(Row(rl, torch, cell, row, args.quick))
        for k in range(rounds):
            for r in rows:
                r.measure_round(rl, torch, repeat, torch_first=k % 2 == 1)
            print(f"  round {k + 1} of {rounds} (numba ms / torch ms = torch/numba): " + ", ".join(
                f"{r.cell} {r.row} {fmt_time(r.numba_rounds[-1])}"
                + (f"/{fmt_time(r.torch_rounds[-1])} = {r.ratios[-1]:.2f}x" if r.ratios else "")
                for r in rows), flush=True)
    finally:
        torch.close()
    print_table(rows, peak, rounds)
    if torch.available:
        print(f"torch outputs agree with rnnlab's on the same weights (max |difference| "
              f"{max(r.torch_max_abs_diff for r in rows):.1e})")
    print("\ngoals:")
    for line in goals(rows, compile_total, warm_total, import_seconds):
        print(f"  {line}")


if __name__ == "__main__":
    main()
