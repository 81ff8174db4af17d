"""The notebook sliders: their callbacks re-run the simulation, and interactive.sliders shows and redraws them."""

import pathlib
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

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
    # near g = 1 this finite network keeps oscillating (its J's spectral radius is 1.036): neither label fits
    assert "sustained oscillation, not chaos" in interactive.edge_of_chaos(gain=1.0).axes[0].get_title()


def test_unknown_cell_name_is_refused():
    with pytest.raises(ValueError, match="cell must be one of"):
        interactive.make_cell("Transformer")


# -- interactive.sliders: the notebooks' slider widget ---------------------------------------------------


def slider_widget(**controls):
    box = interactive.sliders(interactive.edge_of_chaos, **controls)
    *inputs, message, image = box.children
    return inputs, message, image


def test_sliders_draw_the_figure_into_an_image_and_redraw_when_a_slider_moves():
    (gain, seed), message, image = slider_widget(gain=(0.2, 3.0, 0.1), seed=(0, 5))
    assert image.value[:8] == b"\x89PNG\r\n\x1a\n" and gain.value == 1.0  # the function's default
    first = image.value
    gain.value = 2.0
    assert image.value != first and message.value == ""


def test_slider_labels_are_not_cut_off():
    radius, gain = interactive.sliders(interactive.dynamics, spectral_radius=(0.1, 2.0, 0.05),
                                       gain=(0.1, 3.0, 0.1)).children[:2]
    assert radius.description == "spectral_radius" and radius.style.description_width == "initial"
    assert gain.description == "gain" and gain.style.description_width == "initial"


def test_an_error_in_the_callback_shows_under_the_sliders_and_keeps_the_last_figure():
    def picky(x=1):
        if x > 1:
            raise ValueError("x must be at most 1")
        return interactive.edge_of_chaos(units=10, steps=40)

    x, message, image = interactive.sliders(picky, x=(0, 3)).children
    before = image.value
    x.value = 2
    assert "ValueError: x must be at most 1" in message.value and image.value == before
    x.value = 0
    assert message.value == ""


# -- the nbconvert stall: interact's Output widget makes nbclient send on the shell channel -------------
#
# nbclient keeps a copy of every Output widget and, at each output or clear_output captured into it,
# sends the widget's new state to the kernel over the shell channel (nbclient.output_widget.sync_state),
# while it is waiting on that same socket for the cell's execute_reply.  Sometimes that wait then
# wakes only when the cell's timeout runs out (forever without one), although the reply is there
# (nbclient issue 312).  interactive.sliders draws into an Image widget: nothing for nbclient to send.

SLIDER_CELLS = {
    "sliders": "from rnnlab import interactive\ninteractive.sliders(interactive.dynamics, spectral_radius=(0.1, 2.0, 0.05))",
    "interact": "from ipywidgets import fixed, interact\nfrom rnnlab import interactive\n"
                "interact(interactive.dynamics, spectral_radius=(0.1, 2.0, 0.05), fig=fixed(None));",
}


@pytest.mark.parametrize("way,sends", [("interact", True), ("sliders", False)])
def test_nbclient_sends_nothing_on_the_shell_channel_while_a_slider_cell_runs(way, sends, monkeypatch):
    import nbformat
    from nbclient import NotebookClient, output_widget

    sent, publish = [], output_widget.OutputWidget._publish_msg

    def counting_publish(self, *args, **kwargs):  # nbclient's send of an Output widget's state
        sent.append(args)
        return publish(self, *args, **kwargs)

    monkeypatch.setattr(output_widget.OutputWidget, "_publish_msg", counting_publish)
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(SLIDER_CELLS[way])])
    NotebookClient(notebook, timeout=20, kernel_name="python3").execute()  # interact may stall until then
    assert bool(sent) == sends


def slider_notebooks():
    """Each notebook's slider cell, alone after the import it needs: small notebooks that run in seconds."""
    import nbformat

    for path in sorted((pathlib.Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if "interactive.sliders(" in cell.source:
                yield path.stem, nbformat.v4.new_notebook(cells=[
                    nbformat.v4.new_code_cell("from rnnlab import interactive"), nbformat.v4.new_code_cell(cell.source)])


def test_the_widget_notebooks_run_five_times_each_under_nbconvert_without_stalling(tmp_path):
    """A stalled run is one that lasts the whole cell timeout; none may (with interact, 2 runs in 10 did)."""
    import nbformat

    timeout, runs = 30, []
    for name, notebook in slider_notebooks():
        nbformat.write(notebook, tmp_path / f"{name}.ipynb")
        runs += [(name, k) for k in range(5)]
    assert len({name for name, _ in runs}) == 3  # notebooks 2, 4 and 6

    def convert(run):
        name, k = run
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "nbconvert", "--to", "notebook", "--execute",
                                 f"--ExecutePreprocessor.timeout={timeout}", f"--output={name}_{k}",
                                 str(tmp_path / f"{name}.ipynb")], capture_output=True, text=True)
        return name, result, time.perf_counter() - start

    with ThreadPoolExecutor(max_workers=3) as pool:
        for name, result, seconds in pool.map(convert, runs):
            assert result.returncode == 0, result.stderr
            assert seconds < timeout - 5, f"{name} took {seconds:.0f} s: the cell stalled until its timeout"
