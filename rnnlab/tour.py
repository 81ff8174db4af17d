"""``rnnlab tour``: a guided run in the terminal (what ``make demo`` runs).

It builds the cells and runs them on a task, trains an LSTM and a SimpleRNN
briefly with progress bars (and, in the full tour, SimpleRNN, GRU and LSTM on
the copy task), compares their gradient flow, writes figures (to figures/tour/)
and times the numba kernels against the python loop, and against PyTorch when it
is installed.  ``--quick`` shortens every part.
"""

import importlib.util
import pathlib
import subprocess
import sys
import time

import numpy as np

import rnnlab as rl
from rnnlab import gallery, tasks


def heading(text):
    print(f"\n== {text} " + "=" * max(0, 70 - len(text)))


def run(quick=False, out="figures/tour"):
    """Run the tour, writing its PNGs to ``out``: by default figures/tour/, which git ignores, so that
    ``make demo`` never touches the committed gallery (its numbers may differ in the last bits here)."""
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    time_steps = 20 if quick else 50
    written = []

    heading("1. Cells on a task")
    data = tasks.adding_problem(batch=4, time=time_steps, seed=0)
    print(f"The adding problem: x {data.x.shape} (value, marker); target = sum of the two marked values.")
    print(f"Always predicting the mean scores MSE = {data.baseline:.4f}: the baseline to beat.\n")
    for cell in (rl.SimpleRNNCell(16, seed=0), rl.GRUCell(16, seed=0), rl.LSTMCell(16, seed=0)):
        y, *states = rl.RNN(cell, return_state=True)(data.x)
        print(f"  {type(cell).__name__:14s} state_size={cell.state_size!r:9s} output {y.shape}  "
              f"weights {[w.shape for w in cell.get_weights()]}")

    heading("2. Training an LSTM and a SimpleRNN")
    steps = 300 if quick else 1500
    histories = {}
    for name in ("LSTM", "SimpleRNN"):
        cell = rl.LSTMCell(16, seed=0) if name == "LSTM" else rl.SimpleRNNCell(16, seed=0)
        model = rl.Sequential([rl.RNN(cell), rl.Dense(1, seed=0)], loss="mse",
                              optimizer=rl.optimizers.Adam(learning_rate=1e-2, clipnorm=1.0))
        print(f"{name}: {steps} Adam steps on fresh batches of 32 sequences of length {time_steps}")
        history = model.fit_generator(lambda step: tasks.adding_problem(32, time_steps, seed=(1, step)), steps=steps,
                                      verbose=None)
        final = float(np.mean(history.loss[-20:]))
        histories[name] = history
        print(f"  final loss {final:.4f} = {final / data.baseline:.0%} of the baseline")

    copy_result = None
    if not quick:
        heading("2b. The copy task: which cell remembers 10 symbols for 10 steps?")
        copy_result = rl.experiments.compare_on_copy_task(delay=10, steps=3000, units=32, seed=0)
        print(f"memoryless baseline {copy_result.baseline:.3f} nats per step; final losses:")
        for name, loss in copy_result.final_losses().items():
            print(f"  {name:9s} {loss:.3f} = {loss / copy_result.baseline:.0%} of the baseline")

    heading("3. Gradient flow: how far back does the gradient reach?")
    x = np.random.default_rng(0).normal(size=(8, 100, 4))
    print("||dL/dh_t|| for a loss on the last output of 100 steps (32 units, untrained):")
    for name, cell in gallery.gradient_flow_cells().items():
        norms = gallery.last_output_gradient_norms(cell, x)
        print(f"  {name:10s} at the loss {norms[-1]:9.2e}   10 steps back {norms[-11]:9.2e}   "
              f"99 steps back {norms[0]:9.2e}")

    heading("4. Figures")
    names = ["lstm_states.png", "phase_portraits.png", "gradient_flow.png", "lstm_gates.png"]
    if not quick:
        names += ["gradient_heatmap.png", "edge_of_chaos.png"]
    for name in names:
        path = out / name
        gallery.save(gallery.FIGURES[name](), path)
        written.append(path)
    path = out / "tour_training.png"
    gallery.save(rl.experiments.learning_curves(histories, baseline=data.baseline,
                                                title="Adding problem: training loss"), path)
    written.append(path)
    if copy_result is not None:
        path = out / "tour_copy_task.png"
        gallery.save(copy_result.figure, path)
        written.append(path)
    for path in written:
        print(f"  wrote {path}")

    heading("5. Speed: numba kernels against the readable python loop (and PyTorch, when installed)")
    speed_comparison(quick)
    print("\nDone. Next: `make lab` opens the notebooks; `make test` runs the test suite.")
    return written


#: (T, B, F, H): a long sequence through one small cell, where the kernels matter, and a batch of larger
#: cells, where NumPy's matrix products do most of the work in both backends.
SPEED_SIZES = [(1000, 1, 4, 32), (300, 16, 8, 64)]

#: PyTorch's nn.LSTM, forward + backward, timed in its own process (its threads never compete with numba's).
TORCH_TIMING = """
import sys, time, torch
T, B, F, H = map(int, sys.argv[1:])
lstm, x = torch.nn.LSTM(F, H, batch_first=True), torch.randn(B, T, F, requires_grad=True)
times = []
for _ in range(4):
    start = time.perf_counter(); lstm(x)[0].sum().backward(); times.append(time.perf_counter() - start)
print(sorted(times[1:])[1])
"""


def speed_comparison(quick):
    """Time forward + BPTT of one LSTM on each backend, at `SPEED_SIZES`, and say what the ratio depends on.

    The kernels remove the Python and NumPy overhead paid at every time step, so the speedup is largest
    where that overhead is most of the time: one sequence (B = 1), a small cell (H <= 32), many steps.
    With a large batch and large cells the matrix products dominate, NumPy already runs them fast,
    and the ratio shrinks.  On a shared machine the numbers also move with the load.
    """
    torch_installed = importlib.util.find_spec("torch") is not None
    backend = rl.backends.resolve("auto", rl.LSTMCell(4))
    if backend == "python":
        print("The numba backend is not available for this cell here; only the python loop runs.")
    print("forward + full BPTT of one float32 LSTM, median of 3 runs:")
    for T, B, F, H in SPEED_SIZES[:1] if quick else SPEED_SIZES:
        x = np.random.default_rng(0).normal(size=(B, T, F)).astype("float32")
        cell = rl.LSTMCell(H, seed=0)
        timings = {name: _forward_backward_seconds(cell, x, name) for name in dict.fromkeys(["python", backend])}
        if torch_installed:
            timings["torch"] = _torch_seconds(T, B, F, H)
        row = "   ".join(f"{name} {seconds * 1e3:7.1f} ms" for name, seconds in timings.items())
        print(f"  T={T:4d} B={B:2d} H={H:2d}:  {row}")
        if backend == "numba":
            ratios = [f"{timings['python'] / timings['numba']:.0f}x faster than the python loop"]
            if torch_installed:
                ratios.append(f"PyTorch's nn.LSTM takes {timings['torch'] / timings['numba']:.1f}x numba's time")
            print(f"  {'':18s}numba is " + "; ".join(ratios))
    if not torch_installed:
        print("(PyTorch is not installed: `make bench` installs it and compares on a larger grid.)")
    print("The speedup depends on the sizes: the kernels save a fixed cost per time step, so it is largest for\n"
          "one long sequence through a small cell (B = 1, H <= 32), and shrinks as the batch and the cell grow,\n"
          "where NumPy's matrix products do most of the work in both.  It also depends on the machine and its load.")


def _forward_backward_seconds(cell, x, backend):
    """Median seconds of bptt.forward + bptt.backward over 3 runs, after one warm-up (compile or cache load)."""
    layer = rl.RNN(cell, return_sequences=True, backend=backend)
    times = []
    for _ in range(4):
        start = time.perf_counter()
        y, tape = rl.bptt.forward(layer, x)
        rl.bptt.backward(tape, np.ones_like(y))
        times.append(time.perf_counter() - start)
    return float(np.median(times[1:]))


def _torch_seconds(T, B, F, H):
    result = subprocess.run([sys.executable, "-c", TORCH_TIMING, str(T), str(B), str(F), str(H)],
                            capture_output=True, text=True, check=True)
    return float(result.stdout)
