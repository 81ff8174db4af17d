"""The ``rnnlab`` command: ``rnnlab tour`` (what ``make demo`` runs)."""

import argparse
import pathlib
import time

import numpy as np


def tour(args):
    """A short guided run: build cells, run them on a sequence, save a picture."""
    import rnnlab as rl
    from rnnlab.plot import state_trajectories

    out_dir = pathlib.Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    steps = 100 if args.quick else 400
    t = np.arange(steps)
    x = np.stack([np.sin(2 * np.pi * t / 50), np.cos(2 * np.pi * t / 37)], axis=-1)[None].astype("float32")
    print(f"rnnlab tour: a (1, {steps}, 2) sequence of two sines through three cells\n")
    for cell in (rl.SimpleRNNCell(8, seed=0), rl.GRUCell(8, seed=0), rl.LSTMCell(8, seed=0)):
        layer = rl.RNN(cell, return_sequences=True, backend="python")
        start = time.perf_counter()
        h = layer(x)
        elapsed = time.perf_counter() - start
        print(f"  {type(cell).__name__:14s} state_size={cell.state_size!r:8s} "
              f"weights={[w.shape for w in cell.get_weights()]}  mean|h|={np.abs(h).mean():.3f}  "
              f"({elapsed * 1e3:.1f} ms)")
    fig = state_trajectories(h, title="LSTM hidden state driven by two sines")
    path = out_dir / "tour_lstm_states.png"
    fig.savefig(path, dpi=120)
    print(f"\nwrote {path}")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="rnnlab", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    tour_parser = commands.add_parser("tour", help="a short guided run that writes figures")
    tour_parser.add_argument("--quick", action="store_true", help="a shorter run")
    tour_parser.add_argument("--out", default="figures", help="where to write PNGs (default: figures/)")
    tour_parser.set_defaults(run=tour)
    args = parser.parse_args(argv)
    return args.run(args)
