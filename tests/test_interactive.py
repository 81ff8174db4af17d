"""The notebook sliders' callbacks re-run the simulation: other slider values, other figure data."""

import numpy as np
import pytest

from rnnlab import interactive


def line_data(fig):
    return [line.get_ydata().copy() for ax in fig.axes for line in ax.lines]


def gradient_line(fig):
    return fig.axes[1].lines[0].get_ydata()


@pytest.mark.parametrize("slider,low,high", [
    ("spectral_radius", 0.5, 1.5), ("gain", 0.2, 2.5), ("input_amplitude", 0.0, 1.5), ("cell", "GRU", "LSTM"),
])
def test_each_slider_changes_the_figure(slider, low, high):
    first = line_data(interactive.dynamics(**{slider: low}))
    second = line_data(interactive.dynamics(**{slider: high}))
    assert any(a.shape != b.shape or not np.allclose(a, b) for a, b in zip(first, second))


def test_redraw_reuses_the_figure():
    fig = interactive.dynamics(spectral_radius=0.5)
    again = interactive.dynamics(spectral_radius=1.5, fig=fig)
    assert again is fig and len(fig.axes) == 2


def test_spectral_radius_slider_sets_the_recurrent_radius_and_controls_gradient_growth():
    for radius in (0.4, 1.7):
        cell = interactive.make_cell("SimpleRNN", 16, spectral_radius=radius)
        assert np.isclose(np.abs(np.linalg.eigvals(cell.get_weights()[1])).max(), radius)
    vanishing = gradient_line(interactive.dynamics(spectral_radius=0.4, input_amplitude=0.0))
    assert vanishing[60] < 1e-6 * vanishing[0]  # 0.4^60 is tiny: the gradient has vanished


def test_edge_of_chaos_slider_reports_the_regime():
    assert "stable" in interactive.edge_of_chaos(gain=0.6).axes[0].get_title()
    assert "chaotic" in interactive.edge_of_chaos(gain=2.0).axes[0].get_title()


def test_unknown_cell_name_is_refused():
    with pytest.raises(ValueError, match="cell must be one of"):
        interactive.make_cell("Transformer")
