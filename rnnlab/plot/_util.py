"""Shared figure plumbing: every figure rnnlab draws is made here."""

import sys


def new_figure(figsize=(6, 4)):
    """A fresh ``matplotlib.figure.Figure`` (never pyplot's), which Jupyter shows as an image.

    Being pyplot-free, the figure is shown exactly once: as the value it is
    returned as, never again by the inline backend at the end of the cell.
    """
    from matplotlib.figure import Figure  # imported here: matplotlib is slow to load

    _show_figures_as_images()
    return Figure(figsize=figsize, layout="constrained")


def figure_and_axes(ax=None, projection=None, figsize=(6, 4)):
    """Return ``(fig, ax)``: the given axes and its figure, or a fresh pair."""
    if ax is not None:
        return ax.figure, ax
    fig = new_figure(figsize)
    return fig, fig.add_subplot(projection=projection)


def _show_figures_as_images():
    """In IPython, let a returned Figure display as a PNG even before pyplot is imported.

    IPython learns to draw Figures only when the inline backend starts, which
    happens at the first pyplot import; until then a Figure shows as its text
    repr, ``<Figure size 700x400 with 1 Axes>``.  So register the same PNG
    printer the inline backend uses, unless some image printer is already set.
    """
    ipython_module = sys.modules.get("IPython")  # only if running in IPython: never import it here
    shell = ipython_module.get_ipython() if ipython_module is not None else None
    if shell is None or not hasattr(shell, "display_formatter"):
        return
    from matplotlib.figure import Figure
    from IPython.core.pylabtools import print_figure

    formatters = shell.display_formatter.formatters
    for mime in ("image/png", "image/svg+xml", "image/jpeg", "application/pdf"):
        try:
            formatters[mime].lookup_by_type(Figure)
            return  # the inline backend (or the user) already chose how figures look
        except KeyError:
            continue
    formatters["image/png"].for_type(Figure, lambda fig: print_figure(fig, "png", bbox_inches="tight"))
