"""State trajectories over time."""

import numpy as np

from ._util import figure_and_axes


def state_trajectories(states, ax=None, title="Hidden state over time", max_units=8):
    """Plot each unit of a state sequence against time.

    states: (T, H) for one sequence (or (B, T, H): the first sample is drawn).
    At most ``max_units`` units are drawn so the picture stays readable.
    """
    states = np.asarray(states)
    if states.ndim == 3:
        states = states[0]
    if states.ndim != 2:
        raise ValueError(f"expected states of shape (time, units) or (batch, time, units), got {states.shape}")
    fig, ax = figure_and_axes(ax)
    for unit in range(min(states.shape[1], max_units)):
        ax.plot(states[:, unit], label=f"h[{unit}]", linewidth=1.2)
    ax.set_xlabel("time step t")
    ax.set_ylabel("state value")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize="small", ncol=2)
    return fig
