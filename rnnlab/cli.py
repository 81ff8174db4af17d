"""The ``rnnlab`` command: ``rnnlab tour`` (what ``make demo`` runs), ``rnnlab figures`` and ``rnnlab info``."""

import argparse


def tour(args):
    from rnnlab.tour import run

    run(quick=args.quick, out=args.out)
    return 0


def figures(args):
    from rnnlab.gallery import make_all

    make_all(args.out)
    return 0


def info(args):
    """What decides the CPU kernels' speed and start-up: numba, its threads, SVML, BLAS, the cache."""
    from rnnlab.cells.lstm import cpu
    from rnnlab.backends.numba import blas, jit

    facts = jit.info()
    blas_threads = blas.blas_threads()
    svml = "yes" if facts["svml"] else "no (math.exp/tanh stay scalar; the float32 kernels use rnnlab.backends.numba.fastmath)"
    rows = [
        ("numba", f"{facts['numba']} (llvmlite {facts['llvmlite']})"),
        ("threading layer", f"{facts['threading_layer']}, {facts['num_threads']} threads"),
        ("SVML", svml),
        ("BLAS threads", "unknown (scipy does not bundle scipy-openblas)" if blas_threads is None else blas_threads),
        ("fast-math flags", ", ".join(facts["fastmath"])),
        ("cache dir", cpu.forward._cache._cache_path),
    ]
    for name, value in rows:
        print(f"{name + ':':<17}{value}")
    if facts["cache_dir"].startswith("__pycache__"):
        print(f"{'':<17}(the LSTM kernels'; each kernel caches beside its source; NUMBA_CACHE_DIR moves them)")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="rnnlab", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    tour_parser = commands.add_parser("tour", help="a guided run: cells, training, gradient flow, figures, speed")
    tour_parser.add_argument("--quick", action="store_true", help="a shorter run (about 15 s)")
    tour_parser.add_argument("--out", default="figures/tour",
                             help="where to write PNGs (default: figures/tour/, which git ignores)")
    tour_parser.set_defaults(run=tour)
    figures_parser = commands.add_parser("figures", help="regenerate the figures gallery")
    figures_parser.add_argument("--out", default="figures", help="where to write PNGs (default: figures/)")
    figures_parser.set_defaults(run=figures)
    info_parser = commands.add_parser("info", help="numba version, threading layer, SVML and kernel cache directory")
    info_parser.set_defaults(run=info)
    args = parser.parse_args(argv)
    return args.run(args)
