"""Slider experiments for the notebooks: plain functions that redraw a figure.

Each callback takes the slider values as keyword arguments, re-runs a small
simulation and redraws, returning the ``Figure``.  In a notebook:

```text
    from rnnlab import interactive
    interactive.sliders(interactive.dynamics, spectral_radius=(0.1, 2.0, 0.05), gain=(0.1, 3.0, 0.1),
                        input_amplitude=(0.0, 2.0, 0.1), cell=interactive.cells())
```

Because they are plain functions, pytest calls them with slider values directly.

`sliders` is used instead of ``ipywidgets.interact`` because interact's
Output widget sometimes stalls ``jupyter nbconvert --execute``: see its docstring.
"""

import html
import inspect
import io

import numpy as np

import rnnlab as rl
from rnnlab import analysis
from rnnlab.cells import registry
from rnnlab.cells.base import BuiltinCell
from rnnlab.plot._util import new_figure


def sliders(fn, **controls):
    """Controls for some of ``fn``'s keyword arguments above the figure ``fn`` returns, redrawn on each change.

    controls: as for ``ipywidgets.interact``: ``(min, max, step)`` makes a slider, a list makes a
    menu, a widget is used as it is.  Each control starts at ``fn``'s default for that argument;
    the arguments not named keep their defaults.  Returns the widget, for the cell to display:

    ```text
        interactive.sliders(interactive.edge_of_chaos, gain=(0.2, 3.0, 0.1))
    ```

    The figure is an ``ipywidgets.Image`` whose PNG bytes are replaced after each change; an error
    raised by ``fn`` shows as text under the controls.  Why not ``interact``: it draws into an
    ``Output`` widget, and under ``jupyter nbconvert --execute`` (nbclient) such a cell's reply is
    sometimes noticed only when the cell's timeout runs out, although the kernel is idle (nbclient
    issue 312).  Drawing into an Image widget sends no display messages at all, and that stall has
    not been seen with it (tests/test_interactive.py runs it repeatedly).
    """
    import ipywidgets

    defaults = {name: p.default for name, p in inspect.signature(fn).parameters.items()}
    widgets = {}
    for name, abbrev in controls.items():
        widget = ipywidgets.interactive.widget_from_abbrev(abbrev, defaults.get(name, inspect.Parameter.empty))
        if not isinstance(widget, ipywidgets.ValueWidget):  # e.g. fixed(...): leave the argument out instead
            raise ValueError(f"{name}={abbrev!r} cannot be turned into a control")
        widget.description = widget.description or name
        widget.style.description_width = "initial"  # the whole name, never "spectral_r..."
        if hasattr(widget, "continuous_update"):
            widget.continuous_update = False  # redraw when the slider is let go, not at every pixel
        widgets[name] = widget
    image = ipywidgets.Image(format="png")
    message = ipywidgets.HTML()

    def redraw(change=None):
        try:
            figure = fn(**{name: widget.value for name, widget in widgets.items()})
        except Exception as error:  # show it where the student looks, keep the last figure
            message.value = f"<pre>{html.escape(f'{type(error).__name__}: {error}')}</pre>"
            return
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=90)
        image.value, message.value = buffer.getvalue(), ""

    for widget in widgets.values():
        widget.observe(redraw, names="value")
    redraw()
    return ipywidgets.VBox([*widgets.values(), message, image])


def cells():
    """The slider menu, from the registry: cells whose recurrent weight is square gate blocks and
    whose constructor takes Keras-style initializers (so its blocks can be drawn from N(0, 1)),
    in declaration order: ``["SimpleRNN", "GRU", "LSTM"]`` for the built-in cells."""
    return [name for name, cls in registry.with_recurrent_blocks().items() if issubclass(cls, BuiltinCell)]


def make_cell(cell="SimpleRNN", units=32, spectral_radius=0.9, gain=1.0, inputs=1, seed=0):
    """A float64 cell whose recurrent matrix (each gate block) has the given spectral radius.

    ``cell`` is a name from `cells`.  ``gain`` scales the input kernel;
    the recurrent blocks are drawn from a normal distribution and rescaled so
    their largest |eigenvalue| equals ``spectral_radius``.
    """
    if cell not in cells():
        raise ValueError(f"cell must be one of {cells()}, got {cell!r}")
    instance = registry.cell_class(cell)(units, seed=seed, dtype="float64", recurrent_initializer="normal")
    instance.build((None, inputs))
    weight_name, blocks = registry.declaration_for(instance).recurrent_blocks
    weights = dict(zip(instance.weight_names, instance.get_weights()))
    weights["kernel"] *= gain  # a BuiltinCell's input weight
    for block in np.split(weights[weight_name], len(blocks), axis=1):  # views: each block is rescaled in place
        block *= spectral_radius / np.abs(np.linalg.eigvals(block)).max()
    instance.set_weights(list(weights.values()))
    return instance


def drive(steps, input_amplitude, inputs=1, seed=0):
    """A pulse at t = 0 followed by noise of the given amplitude: (1, steps, inputs)."""
    rng = np.random.default_rng(seed)
    x = input_amplitude * rng.normal(size=(1, steps, inputs))
    x[0, 0] += 1.0
    return x


def dynamics(spectral_radius=0.9, gain=1.0, input_amplitude=0.5, cell="SimpleRNN", steps=120, units=32, seed=0,
             fig=None):
    """State trajectory and gradient flow of one cell, for the slider values.

    Left: a few hidden units over time.  Right: ||dL/dh_t|| for a loss on the
    last output, against the lag, on a log scale: vanishing below radius 1,
    exploding above it (for SimpleRNN).  Pass ``fig`` to redraw in place.
    """
    rnn_cell = make_cell(cell, units, spectral_radius, gain, seed=seed)
    x = drive(steps, input_amplitude, seed=seed)
    y, tape = rl.bptt.forward(rl.RNN(rnn_cell), x)
    grads = rl.bptt.backward(tape, np.ones_like(y))
    states = tape.states[0][:, 0]  # (T, units) of h
    norms = analysis.gradient_norms(grads)[::-1]  # index = lag back from the loss

    if fig is None:
        fig = new_figure((11, 3.8))
    fig.clear()
    left, right = fig.subplots(1, 2)
    left.plot(states[:, :6], linewidth=1.2)
    left.set(xlabel="time step t", ylabel="h", title=f"{cell}: 6 of {units} units")
    right.semilogy(np.maximum(norms, 1e-300))
    right.set(xlabel="lag (steps back from the loss)", ylabel="||dL/dh||",
              title=f"gradient flow, spectral radius {spectral_radius:.2f}")
    return fig


def edge_of_chaos(gain=1.0, units=100, steps=300, seed=0, fig=None):
    """The rate network h' = tanh(g J h) for one gain: trajectories and the largest Lyapunov exponent."""
    coupling = np.random.default_rng(seed).normal(0, 1 / np.sqrt(units), size=(units, units))
    cell = registry.cell_class("SimpleRNN")(units, use_bias=False, dtype="float64", seed=seed)
    cell.build((None, 1))
    cell.set_weights([np.zeros((1, units)), gain * coupling.T])
    start = np.random.default_rng(seed + 1).normal(0, 0.5, size=units)
    states = analysis.trajectory(cell, np.zeros((steps, 1)), initial_state=start)
    exponent = analysis.lyapunov_spectrum(cell, np.zeros((steps, 1)), discard=steps // 4, n_exponents=1,
                                          seed=seed)[0]
    if fig is None:
        fig = new_figure((7, 3.8))
    fig.clear()
    ax = fig.add_subplot()
    ax.plot(states[:, :8], linewidth=1)
    ax.set_title(f"g = {gain:.2f}: largest exponent {exponent:+.3f} ({regime(exponent, states)})")
    ax.set(xlabel="time step t", ylabel="h")
    return fig


def regime(exponent, states):
    """Name what the trajectories do: decay to 0, keep oscillating without chaos, or chaos.

    Chaos needs an exponent clearly above 0 (> 0.01 nats per step: a finite run of a network that
    just keeps oscillating measures about 0, either sign).  Near g = 1 a finite network keeps
    oscillating: its J's largest |eigenvalue| is not exactly 1 (1.036, a real -1.036, for N = 100 and
    seed 0), so the origin is already unstable there and the state settles on a small cycle.
    """
    if exponent > 0.01:
        return "chaotic"
    amplitude = np.abs(states[-len(states) // 4:]).max()  # over the last quarter of the run
    return "stable: decays to 0" if amplitude < 1e-3 else "sustained oscillation, not chaos"
