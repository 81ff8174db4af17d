"""How fast ``rl.sweep`` runs on this machine: tasks per second, overhead per task, scaling from 1 to 2 workers.

Run::

    .venv/bin/python benchmarks/bench_sweep.py              # about two minutes on two cores
    .venv/bin/python benchmarks/bench_sweep.py --repeat 5

Two task functions:

- **tiny** returns ``{"i": i}`` at once, so a sweep of them is all overhead:
  Dask's scheduling and transfers, rnnlab's bookkeeping and, with a store,
  the writes.
- **busy** runs a fixed amount of pure-Python arithmetic, calibrated to take
  about 1 s in this process.  It is CPU-bound, not ``time.sleep``: two workers
  that compete for the cores then take longer per task, which shows up as a
  lower scaling efficiency (a sleep would hide it).  Each task also reports
  how long it ran inside its worker.

For 1 and 2 workers (``rl.sweep.local_cluster(n)``, started and warmed up
before any clock runs; each timed sweep is one ``rl.sweep`` call on that
cluster, with the progress bar off):

- tasks/s = tasks / wall time of the call;
- overhead per task = n_workers x wall time / tasks - the mean time a task ran
  in its worker: the worker-seconds per task not spent in ``fn``;
- scaling efficiency = (busy tasks/s with 2 workers) / (2 x busy tasks/s with 1 worker).

Every number is the median of ``--repeat`` runs.  The goals (issue 19):
overhead under 10 ms per task, and at least 85% efficiency from 1 to 2
workers on 1-second tasks.
"""

import argparse
import datetime
import os
import platform
import statistics
import tempfile
import time

import dask
import distributed
import numpy as np

import rnnlab as rl


def tiny(i):
    return {"twice": 2 * i}


def busy(i, loops):
    """A fixed amount of CPU work; returns how long it took inside the worker."""
    start = time.perf_counter()
    total = 0
    for k in range(loops):
        total += k * k % 7
    return {"total": total, "seconds": time.perf_counter() - start}


def calibrate(target=1.0):
    """The number of loops that makes ``busy`` take about ``target`` seconds in this process."""
    loops = 1_000_000
    for _ in range(2):  # twice: the first estimate comes from a short run
        loops = int(loops * target / busy(0, loops)["seconds"])
    return loops


def timed_sweep(fn, grid, client, store=None):
    """(wall seconds, result) of one rl.sweep call."""
    start = time.perf_counter()
    res = rl.sweep(fn, grid, client=client, store=store, progress=False)
    wall = time.perf_counter() - start
    assert not res.errors, res.errors
    return wall, res


def measure(workers, loops, args):
    """The medians for one cluster size: tiny tasks (with and without a store) and busy tasks."""
    runs = {"tiny": [], "tiny stored": [], "busy": [], "busy in worker": []}
    with rl.sweep.local_cluster(workers) as cluster, distributed.Client(cluster) as client:
        rl.sweep(tiny, {"i": list(range(4 * workers))}, client=client, progress=False)  # workers import rnnlab
        for repeat in range(args.repeat):
            grid = {"i": list(range(repeat * args.tiny, (repeat + 1) * args.tiny))}  # new points each time
            runs["tiny"].append(timed_sweep(tiny, grid, client)[0])
            with tempfile.TemporaryDirectory() as store:
                runs["tiny stored"].append(timed_sweep(tiny, grid, client, store)[0])
            wall, res = timed_sweep(busy, {"i": list(range(args.busy)), "loops": [loops]}, client)
            runs["busy"].append(wall)
            runs["busy in worker"].append(float(res.table["seconds"].mean()))
    wall = {name: statistics.median(values) for name, values in runs.items()}
    in_worker = wall["busy in worker"]
    return {
        "tiny tasks/s": args.tiny / wall["tiny"],
        "tiny overhead ms": 1e3 * workers * wall["tiny"] / args.tiny,  # the task itself takes microseconds
        "stored overhead ms": 1e3 * workers * wall["tiny stored"] / args.tiny,
        "busy tasks/s": args.busy / wall["busy"],
        "busy in worker s": in_worker,
        "busy overhead ms": 1e3 * (workers * wall["busy"] / args.busy - in_worker),
    }


def machine():
    model = "unknown CPU"
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        model = names[0] if names else model
    return f"{os.cpu_count()} cores, {model}, {platform.system()} {platform.release()}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per number (the median is printed)")
    parser.add_argument("--tiny", type=int, default=500, help="tiny tasks per timed sweep")
    parser.add_argument("--busy", type=int, default=6, help="1-second tasks per timed sweep")
    args = parser.parse_args()

    print(f"date: {datetime.datetime.now():%Y-%m-%d %H:%M}")
    print(f"machine: {machine()}")
    print(f"software: Python {platform.python_version()}, dask {dask.__version__}, distributed "
          f"{distributed.__version__}, numpy {np.__version__}, rnnlab {rl.__version__}")
    loops = calibrate()
    print(f"busy task: {loops} loops of pure-Python arithmetic, {busy(0, loops)['seconds']:.2f} s in this process "
          f"(CPU-bound, no sleep); {args.busy} per sweep; tiny task: {args.tiny} per sweep; median of {args.repeat}")
    print()
    results = {workers: measure(workers, loops, args) for workers in (1, 2)}
    efficiency = results[2]["busy tasks/s"] / (2 * results[1]["busy tasks/s"])

    header = ("workers | tiny tasks/s | overhead/task tiny | tiny, store | 1-s tasks/s | task time in worker "
              "| overhead/task 1-s")
    print(header)
    print("-" * len(header))
    for workers, r in results.items():
        print(f"{workers:7d} | {r['tiny tasks/s']:12.0f} | {r['tiny overhead ms']:15.2f} ms | "
              f"{r['stored overhead ms']:8.2f} ms | {r['busy tasks/s']:11.3f} | {r['busy in worker s']:17.3f} s "
              f"| {r['busy overhead ms']:14.1f} ms")
    print()
    print(f"scaling efficiency 1 -> 2 workers, 1-s tasks: {100 * efficiency:.1f}%")
    overhead = results[1]["tiny overhead ms"]
    print(f"goal: overhead per task < 10 ms (1 worker, tiny task, no store): {overhead:.2f} ms -> "
          f"{'met' if overhead < 10 else 'NOT met'}; with a store: {results[1]['stored overhead ms']:.2f} ms -> "
          f"{'met' if results[1]['stored overhead ms'] < 10 else 'NOT met'}")
    print(f"goal: scaling efficiency >= 85% (1 -> 2 workers, 1-s tasks): {100 * efficiency:.1f}% -> "
          f"{'met' if efficiency >= 0.85 else 'NOT met'}")


if __name__ == "__main__":
    main()
