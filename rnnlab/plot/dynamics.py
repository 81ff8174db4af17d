"""Pictures of state dynamics: PCA trajectories, phase portraits, fixed points, spectra."""

import numpy as np

from .. import analysis
from ._util import figure_and_axes


def _projection(dims):
    if dims not in (2, 3):
        raise ValueError(f"dims must be 2 or 3, got {dims!r}")
    return "3d" if dims == 3 else None


def _fit_pca(states, dims, pca):
    pca = pca if pca is not None else analysis.pca(states, dims)
    if pca.n_components < dims:
        raise ValueError(f"need {dims} principal components for a {dims}-D picture, the PCA has {pca.n_components}")
    return pca


def _label_pcs(ax, pca, dims):
    setters = [ax.set_xlabel, ax.set_ylabel] + ([ax.set_zlabel] if dims == 3 else [])
    for k, set_label in enumerate(setters):
        set_label(f"PC{k + 1} ({pca.explained_variance_ratio[k]:.0%} var.)")


def pca_trajectories(states, dims=2, ax=None, pca=None, max_trajectories=20, title="State trajectories (PCA)"):
    """Trajectories projected on their first 2 or 3 principal components.

    states: (B, T, S) or (T, S), e.g. from `rnnlab.analysis.trajectory`.
    pca: a fitted `rnnlab.analysis.PCA` (default: fit on ``states``).
    A dot marks where each trajectory starts.  For ``dims=3`` a given ``ax``
    must be a 3-D axes (``projection="3d"``).
    """
    states = np.asarray(states, dtype=np.float64)
    if states.ndim == 2:
        states = states[None]
    if states.ndim != 3:
        raise ValueError(f"expected states of shape (batch, time, S) or (time, S), got {states.shape}")
    pca = _fit_pca(states, dims, pca)
    fig, ax = figure_and_axes(ax, projection=_projection(dims))
    coords = pca.transform(states[:max_trajectories])[..., :dims]  # (B, T, dims)
    for k, path in enumerate(coords):
        ax.plot(*path.T, color=f"C{k % 10}", linewidth=1.0, alpha=0.8)
    ax.scatter(*coords[:, 0].T, color="black", s=12, label="start")
    _label_pcs(ax, pca, dims)
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize="small")
    return fig


def phase_portrait(cell, ax=None, xlim=(-1.5, 1.5), ylim=(-1.5, 1.5), constant_input=None, grid=21,
                   stream=False, trajectories=None, fixed_points=None, title="Phase portrait"):
    """Vector field and nullclines of a cell whose joint state has 2 numbers.

    For example ``SimpleRNNCell(2)``, ``GRUCell(2)`` or ``LSTMCell(1)`` (state
    [h, c]).  With the input held at ``constant_input`` (default zeros), each
    arrow at s is the step ``F(s) - s``.  Arrows are drawn with ``quiver``, or
    with ``streamplot`` when ``stream=True``.  The nullclines are the curves
    where one component of the step is zero, ``F(s)_i = s_i``, and fixed
    points sit where they cross.  trajectories: optional (B, T, 2) or (T, 2)
    paths to draw on top.  fixed_points: optional
    `rnnlab.analysis.FixedPoints` to mark.
    """
    cell = analysis.states.as_float64(cell)
    if analysis.joint_size(cell) != 2:
        raise ValueError(f"a phase portrait needs a joint state of size 2, {cell.name} has {analysis.joint_size(cell)}")
    u = np.zeros(cell.input_size) if constant_input is None else np.asarray(constant_input, dtype=np.float64)
    fig, ax = figure_and_axes(ax)

    def field(n):
        X, Y = np.meshgrid(np.linspace(*xlim, n), np.linspace(*ylim, n))
        s = np.stack([X.ravel(), Y.ravel()], axis=1)  # (n*n, 2)
        d = analysis.step(cell, np.broadcast_to(u, (len(s), len(u))), s) - s
        return X, Y, d[:, 0].reshape(X.shape), d[:, 1].reshape(X.shape)

    X, Y, DX, DY = field(grid)
    if stream:
        ax.streamplot(X, Y, DX, DY, color="0.55", density=1.0, linewidth=0.8)
    else:
        ax.quiver(X, Y, DX, DY, color="0.55", angles="xy")
    X, Y, DX, DY = field(150)  # finer grid for smooth nullclines
    for k, D in enumerate((DX, DY)):
        if D.min() < 0 < D.max():  # a contour at 0 exists only where the step changes sign
            ax.contour(X, Y, D, levels=[0.0], colors=f"C{k}", linewidths=1.8)
            ax.plot([], [], color=f"C{k}", linewidth=1.8, label=f"nullcline of s[{k}]")
    if trajectories is not None:
        paths = np.asarray(trajectories)
        for path in paths.reshape(-1, *paths.shape[-2:]):
            ax.plot(path[:, 0], path[:, 1], color="C2", linewidth=1.2)
    if fixed_points is not None:
        _scatter_fixed_points(ax, fixed_points, fixed_points.points)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_xlabel("s[0]")
    ax.set_ylabel("s[1]")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize="small")
    return fig


def _scatter_fixed_points(ax, fps, coords):
    """Stable points filled black, unstable ones as open red circles."""
    stable = fps.stable
    ax.scatter(*coords[stable].T, color="black", s=40, zorder=3, label=f"stable ({stable.sum()})")
    ax.scatter(*coords[~stable].T, facecolors="none", edgecolors="C3", s=40, linewidths=1.5, zorder=3,
               label=f"unstable ({(~stable).sum()})")


def fixed_points(fps, ax=None, states=None, pca=None, dims=2, mode_length=0.3, max_trajectories=20,
                 title="Fixed points"):
    """Fixed points in PCA coordinates, coloured by stability, with their unstable modes.

    fps: `rnnlab.analysis.FixedPoints`.  states: optional (B, T, S)
    trajectories drawn faintly behind (and used to fit the PCA).  pca: a fitted
    PCA (default: fit on ``states``, else on the points).  Each unstable mode
    is drawn as a red line through its point, ``mode_length`` long on each side
    (in state units).
    """
    if states is not None:
        states = np.asarray(states, dtype=np.float64)
    pca = _fit_pca(states if states is not None else fps.points, dims, pca)
    fig, ax = figure_and_axes(ax, projection=_projection(dims))
    if states is not None:
        paths = pca.transform(states.reshape(-1, *states.shape[-2:])[:max_trajectories])[..., :dims]
        for path in paths:
            ax.plot(*path.T, color="0.75", linewidth=0.5, alpha=0.6)
    for i in np.flatnonzero(~fps.stable):
        for mode in fps.unstable_modes(i):
            ends = fps.points[i] + np.outer([-mode_length, mode_length], mode)  # (2, S)
            ax.plot(*pca.transform(ends)[:, :dims].T, color="C3", linewidth=1.2)
    _scatter_fixed_points(ax, fps, pca.transform(fps.points)[:, :dims])
    ax.plot([], [], color="C3", linewidth=1.2, label="unstable modes")
    _label_pcs(ax, pca, dims)
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize="small")
    return fig


def eigenvalues(values, ax=None, title="Eigenvalues of the recurrent matrix"):
    """Eigenvalues in the complex plane, with the unit circle.

    values: a built cell (its `rnnlab.analysis.recurrent_eigenvalues`, one
    colour per gate block, labelled by block), a ``{label: eigenvalues}`` dict, or an array.
    Inside the circle a linear map forgets; outside it explodes.
    """
    if hasattr(values, "state_size"):
        blocks = analysis.recurrent_eigenvalues(values)
        # a legend entry reads "eigenvalues of R", or "R block f" for each gate's block, never a bare "h"
        values = ({"eigenvalues of R": next(iter(blocks.values()))} if len(blocks) == 1
                  else {f"R block {name}": eig for name, eig in blocks.items()})
    if not isinstance(values, dict):
        values = {"eigenvalues": np.asarray(values)}
    fig, ax = figure_and_axes(ax)
    angle = np.linspace(0, 2 * np.pi, 361)
    ax.plot(np.cos(angle), np.sin(angle), color="black", linestyle="--", linewidth=0.8, label="unit circle")
    for k, (name, eig) in enumerate(values.items()):
        eig = np.asarray(eig, dtype=complex).ravel()
        ax.scatter(eig.real, eig.imag, s=16, color=f"C{k}", alpha=0.8, label=name)
    ax.axhline(0, color="0.8", linewidth=0.6, zorder=0)
    ax.axvline(0, color="0.8", linewidth=0.6, zorder=0)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("Re(λ)")
    ax.set_ylabel("Im(λ)")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize="small")
    return fig


def lyapunov_spectrum(exponents, ax=None, title="Lyapunov spectrum"):
    """The Lyapunov exponents against their index, with the zero line and the Kaplan-Yorke dimension.

    exponents: (k,) or (B, k) from `rnnlab.analysis.lyapunov_spectrum`
    (one line per row), in nats per step.
    """
    exponents = np.atleast_2d(np.asarray(exponents, dtype=np.float64))
    fig, ax = figure_and_axes(ax)
    index = np.arange(1, exponents.shape[1] + 1)
    for row in exponents:
        ax.plot(index, row, marker="o", markersize=3, linewidth=1.0)
    ax.axhline(0, color="black", linewidth=0.8)
    dims = np.atleast_1d(analysis.kaplan_yorke_dimension(exponents))
    ax.set_xlabel("index i")
    ax.set_ylabel("λ_i (nats per step)")
    ax.set_title(f"{title}\nλ_1 = {exponents[:, 0].mean():.3g}, Kaplan-Yorke dimension {dims.mean():.2f}")
    return fig
