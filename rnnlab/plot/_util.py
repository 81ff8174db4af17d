"""Shared figure plumbing."""


def figure_and_axes(ax=None, projection=None, figsize=(6, 4)):
    """Return ``(fig, ax)``: the given axes and its figure, or a fresh pair."""
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot(projection=projection)
