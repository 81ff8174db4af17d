"""Pictures of gradient flow and gates, read off a BPTT tape and its gradients."""

import numpy as np

from .. import analysis
from ._util import figure_and_axes

_GATE_LABELS = {"i": "input gate i", "f": "forget gate f", "g": "candidate g (c~)", "o": "output gate o",
                "z": "update gate z", "r": "reset gate r", "hh": "candidate h~"}


def gate_activations(gates, sample=0, ax=None, title="Gate activations"):
    """Each gate over time: the mean over units as a line, the min-max range over units shaded.

    gates: ``tape.gates`` (``{name: (T, B, U)}``) or the tape itself, from
    `rnnlab.bptt.forward` with a GRU or LSTM cell.  sample: which
    sequence of the batch to draw.
    """
    gates = getattr(gates, "gates", gates)
    if isinstance(gates, list):
        raise ValueError("these are the gates of StackedRNNCells, one dict per cell; pass one of them, "
                         "e.g. tape.gates[0]")
    if not gates:
        raise ValueError("this cell has no gates (SimpleRNN and MinimalRNN have none); use a GRU or LSTM cell")
    fig, ax = figure_and_axes(ax)
    for k, (name, values) in enumerate(gates.items()):
        v = np.asarray(values)[:, sample]  # (T, U)
        t = np.arange(len(v))
        ax.fill_between(t, v.min(axis=1), v.max(axis=1), color=f"C{k}", alpha=0.15, linewidth=0)
        ax.plot(t, v.mean(axis=1), color=f"C{k}", linewidth=1.5, label=_GATE_LABELS.get(name, name))
    ax.set_xlabel("time step t")
    ax.set_ylabel("activation (mean; range over units shaded)")
    ax.set_title(title)
    ax.legend(loc="best", fontsize="small")
    return fig


def gradient_heatmap(grads, ax=None, leaf=0, log=True, title="Gradient flow |dL/dh_t|"):
    """A time x unit heatmap of |dL/dh_t| with a colorbar.

    grads: the `rnnlab.bptt.Gradients` from ``rl.bptt.backward`` (its
    ``state_grads``; ``leaf`` 1 is c for LSTM), or a (T, U) array such as
    `rnnlab.analysis.gradient_map`.  ``log`` colours on a log scale,
    where vanishing gradients show as a steady fade.
    """
    from matplotlib.colors import LogNorm

    values = np.asarray(grads) if isinstance(grads, np.ndarray) else analysis.gradient_map(grads, leaf)
    if values.ndim != 2:
        raise ValueError(f"expected a (time, units) map, got shape {values.shape}")
    fig, ax = figure_and_axes(ax)
    norm = None
    positive = values[values > 0]
    if log and positive.size:
        norm = LogNorm(vmin=max(positive.min(), positive.max() * 1e-12), vmax=positive.max())
    image = ax.imshow(values.T, aspect="auto", origin="lower", interpolation="nearest", cmap="viridis", norm=norm)
    fig.colorbar(image, ax=ax, label="|dL/dh_t| (RMS over batch)")
    ax.set_xlabel("time step t")
    ax.set_ylabel("unit")
    ax.set_title(title)
    return fig


def gradient_norm_vs_lag(values, ax=None, label=None, title="Gradient norm against lag", ylabel=None):
    """How a gradient shrinks or grows with the number of steps it travels back, on a log scale.

    values, one of:

    * `rnnlab.bptt.Gradients`: ||dL/dh_t|| against the lag T-1-t from the last step;
    * `rnnlab.analysis.JacobianProducts`: ||ds_T/ds_{T-k}|| against k
      (geometric mean over the batch);
    * a 1-D array already indexed by lag (taken to be ||dL/dh|| unless ``ylabel`` says otherwise).

    ylabel: the y-axis label; by default it names the quantity drawn.
    """
    if isinstance(values, analysis.JacobianProducts):
        lags, norms = values.lags, np.exp(np.mean(np.log(values.norms), axis=0))
        default_label = "||ds_T / ds_(T-k)|| (geometric mean over the batch)"
    elif hasattr(values, "state_grads"):
        norms = analysis.gradient_norms(values)[::-1]  # processing order -> lag from the last step
        lags = np.arange(len(norms))
        default_label = "gradient norm ||dL/dh_(T-k)||"
    else:
        norms = np.asarray(values, dtype=np.float64)
        lags = np.arange(len(norms))
        default_label = "gradient norm ||dL/dh_(T-k)||"
    fig, ax = figure_and_axes(ax)
    ax.semilogy(lags, norms, marker=".", linewidth=1.2, label=label)
    ax.set_xlabel("lag k (steps back in time)")
    ax.set_ylabel(ylabel or default_label)
    ax.set_title(title)
    if label is not None:
        ax.legend(loc="upper right", fontsize="small")
    return fig
