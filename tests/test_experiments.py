"""The copy-task comparison runs from one call (tiny settings here) and returns what it documents."""

import math

import numpy as np
import pytest
from matplotlib.figure import Figure

import rnnlab as rl
from rnnlab.experiments import CopyTaskComparison, compare_on_copy_task, main

TINY = dict(delay=3, steps=6, units=4, batch_size=4, seed=0)


@pytest.fixture(scope="module")
def result():
    return compare_on_copy_task(cells=("SimpleRNN", "GRU", "LSTM"), plot=True, **TINY)


def test_comparison_returns_histories_and_the_baseline(result):
    assert isinstance(result, CopyTaskComparison)
    assert list(result.histories) == ["SimpleRNN", "GRU", "LSTM"]
    for history in result.histories.values():
        assert isinstance(history, rl.History)
        assert history.steps == 6 and all(np.isfinite(history.loss))
    # Memoryless: blanks for free, then a uniform guess among 8 symbols on the last 10 of T + 20 steps.
    assert result.baseline == pytest.approx(10 * math.log(8) / (3 + 20))
    assert (result.delay, result.steps) == (3, 6)
    # Cross-entropy at the start is near log(9), a uniform guess over the 9 classes.
    for history in result.histories.values():
        assert abs(history.loss[0] - math.log(9)) < 0.5


def test_figure_shows_each_curve_and_the_baseline(result):
    assert isinstance(result.figure, Figure)
    (ax,) = result.figure.axes
    labels = [line.get_label() for line in ax.get_lines()]
    for name in ("SimpleRNN", "GRU", "LSTM"):
        assert name in labels
    baseline_lines = [line for line in ax.get_lines() if line.get_label().startswith("baseline")]
    assert len(baseline_lines) == 1
    np.testing.assert_allclose(baseline_lines[0].get_ydata(), result.baseline)


def test_comparison_is_repeatable_and_plot_is_optional(result):
    again = compare_on_copy_task(cells=("LSTM",), plot=False, **TINY)
    assert again.figure is None
    assert again.histories["LSTM"].loss == result.histories["LSTM"].loss  # same seed, same batches


def test_runs_as_a_script(tmp_path, capsys):
    out = tmp_path / "curves.png"
    main(["--cells", "GRU", "--delay", "2", "--steps", "3", "--units", "3", "--out", str(out)])
    text = capsys.readouterr().out
    assert f"{10 * math.log(8) / 22:.4f}" in text and "GRU" in text
    assert out.stat().st_size > 0
