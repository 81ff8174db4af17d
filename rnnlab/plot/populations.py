"""Pictures of population studies: the tables of ``rl.sweep.edge_of_chaos`` and ``rl.sweep.trained_population``.

Each function takes the study's result (or its ``table``, a pandas DataFrame)
and returns a Figure.
"""

import itertools

import numpy as np

from ._util import figure_and_axes


def _table(result, columns, study):
    """The DataFrame of ``result`` (a StudyResult or a table), checked for ``columns``."""
    table = getattr(result, "table", result)
    if not hasattr(table, "columns"):
        raise TypeError(f"expected the result of {study} or its table (a pandas DataFrame), "
                        f"got {type(result).__name__}")
    missing = [name for name in columns if name not in table.columns]
    if missing:
        raise ValueError(f"the table lacks the columns {missing}; expected the table of {study}, "
                         f"with the columns {list(columns)}")
    if len(table) == 0:
        raise ValueError(f"the table is empty: no network of {study} finished")
    return table


def exponent_vs_gain(result, ax=None, value="exponent", title="The edge of chaos"):
    """``value`` (default the largest Lyapunov exponent) against gain, one curve per network size.

    result: ``rl.sweep.edge_of_chaos(...)`` or its table (columns gain, units,
    seed and ``value``).  For each size: the mean over seeds as a line with
    markers, the range over seeds (min to max) shaded, and every network as a
    faint dot.  A grey line marks 0 (the border between order and chaos).
    Artists: one line per size plus the zero line, one shaded band and one
    set of dots per size.
    """
    table = _table(result, ("gain", "units", "seed", value), "rl.sweep.edge_of_chaos")
    fig, ax = figure_and_axes(ax)
    ax.axhline(0.0, color="0.6", linewidth=1)
    for k, (units, rows) in enumerate(table.groupby("units", sort=True)):
        by_gain = rows.groupby("gain", sort=True)[value]
        gains = np.asarray(list(by_gain.groups))
        ax.fill_between(gains, by_gain.min(), by_gain.max(), color=f"C{k}", alpha=0.2, linewidth=0)
        ax.scatter(rows["gain"], rows[value], color=f"C{k}", s=10, alpha=0.5)
        ax.plot(gains, by_gain.mean(), "o-", color=f"C{k}", label=f"N = {units} ({rows['seed'].nunique()} seeds)")
    ax.set_xlabel("gain g")
    ax.set_ylabel(f"{value} (mean; range over seeds shaded)")
    ax.set_title(title)
    ax.legend(loc="best", fontsize="small")
    return fig


def fixed_point_counts(result, ax=None, title="Fixed points by cell type"):
    """The number of stable and unstable fixed points of each cell type, as bars with every network as a dot.

    result: ``rl.sweep.trained_population(...)`` or its table (columns cell,
    n_stable, n_unstable).  The bars are the means over the cell type's
    networks.  When every network has the same number of memories to hold
    (column n_patterns), a dashed line marks it.  Artists: two bar groups
    (stable, unstable) of one bar per cell type, and two sets of dots.
    """
    table = _table(result, ("cell", "n_stable", "n_unstable"), "rl.sweep.trained_population")
    cells = list(dict.fromkeys(table["cell"]))  # in the order of the table
    x = np.arange(len(cells))
    fig, ax = figure_and_axes(ax)
    for k, (column, label) in enumerate((("n_stable", "stable"), ("n_unstable", "unstable"))):
        offset = (k - 0.5) * 0.4
        groups = [table.loc[table["cell"] == cell, column] for cell in cells]
        ax.bar(x + offset, [g.mean() for g in groups], width=0.4, color=f"C{k}", alpha=0.7, label=f"{label} (mean)")
        dots_x = np.concatenate([np.full(len(g), i + offset) for i, g in enumerate(groups)])
        ax.scatter(dots_x, np.concatenate([g.to_numpy() for g in groups]), color="black", s=12, zorder=3)
    if "n_patterns" in table.columns and table["n_patterns"].nunique() == 1:
        ax.axhline(table["n_patterns"].iloc[0], color="0.3", linestyle="--", linewidth=1,
                   label=f"memories of the task ({table['n_patterns'].iloc[0]})")
    ax.set_xticks(x, cells)
    ax.set_ylabel("fixed points per network")
    ax.set_title(title)
    ax.legend(loc="best", fontsize="small")
    return fig


def memory_topologies(result, ax=None, title="Memories found at the stable points"):
    """A table of networks x memories: which sign patterns each network holds as a stable fixed point.

    result: ``rl.sweep.trained_population(...)`` or its table (columns cell,
    seed, task, memories, n_memories, n_patterns, n_stable, n_unstable).  Row i is
    network i; the columns are the sign patterns of the tasks in the table,
    fewest bits first, each task's in the order of
    ``rnnlab.sweep.studies.memory_patterns`` (``--- --+ ... +++``).
    A dark square: the network has that memory; light: it lacks it; blank: the
    pattern is not one of its task's.  Each row's label gives its counts.
    Artists: one image of shape (networks, patterns), one tick label per row.
    """
    table = _table(result, ("cell", "seed", "task", "memories", "n_memories", "n_patterns", "n_stable", "n_unstable"),
                   "rl.sweep.trained_population")
    bits = sorted({int(np.log2(n)) for n in table["n_patterns"]})
    patterns = ["".join(signs) for n_bits in bits for signs in itertools.product("-+", repeat=n_bits)]
    grid = np.full((len(table), len(patterns)), np.nan)  # NaN: not a pattern of this row's task
    for i, row in enumerate(table.itertuples()):
        found = set(row.memories.split())
        for j, pattern in enumerate(patterns):
            if 2 ** len(pattern) == row.n_patterns:
                grid[i, j] = pattern in found
    fig, ax = figure_and_axes(ax, figsize=(4.5 + 0.3 * len(patterns), 1.0 + 0.35 * len(table)))
    ax.imshow(grid, cmap="Blues", vmin=-0.4, vmax=1.0, aspect="auto", interpolation="nearest")
    ax.set_xticks(np.arange(len(patterns)), patterns, rotation=90, family="monospace")
    ax.set_yticks(np.arange(len(table)), [f"{row.cell} seed {row.seed}, {row.task}: {row.n_memories} memories, "
                                          f"{row.n_stable} stable, {row.n_unstable} unstable"
                                          for row in table.itertuples()])
    ax.set_xlabel("memory (sign of each readout)")
    ax.set_title(title)
    return fig
