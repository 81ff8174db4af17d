"""The ``rnnlab`` command: ``rnnlab tour`` (what ``make demo`` runs) and ``rnnlab figures``."""

import argparse


def tour(args):
    from rnnlab.tour import run

    run(quick=args.quick, out=args.out)
    return 0


def figures(args):
    from rnnlab.gallery import make_all

    make_all(args.out)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="rnnlab", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    tour_parser = commands.add_parser("tour", help="a guided run: cells, training, gradient flow, figures, speed")
    tour_parser.add_argument("--quick", action="store_true", help="a shorter run (about 15 s)")
    tour_parser.add_argument("--out", default="figures", help="where to write PNGs (default: figures/)")
    tour_parser.set_defaults(run=tour)
    figures_parser = commands.add_parser("figures", help="regenerate the figures gallery")
    figures_parser.add_argument("--out", default="figures", help="where to write PNGs (default: figures/)")
    figures_parser.set_defaults(run=figures)
    args = parser.parse_args(argv)
    return args.run(args)
