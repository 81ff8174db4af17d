"""`rnnlab tour` (make demo), the figures gallery (make figures) and `make lab`: what a person running them sees."""

import importlib.util
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from rnnlab import gallery, plot
import rnnlab as rl

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_quick_tour_runs_every_part_writes_pngs_and_leaves_git_status_clean(tmp_path):
    # a fresh checkout: a git repository that ignores what the project's .gitignore ignores
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".git" / "info" / "exclude").write_text((ROOT / ".gitignore").read_text())
    result = subprocess.run([sys.executable, "-m", "rnnlab", "tour", "--quick"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=600,
                            env={"CI": "true", "PATH": ""})
    assert result.returncode == 0, result.stderr
    for part in ("1. Cells on a task", "2. Training", "3. Gradient flow", "4. Figures", "5. Speed"):
        assert part in result.stdout
    written = sorted((tmp_path / "figures" / "tour").glob("*.png"))
    assert len(written) >= 4
    for path in written:
        assert f"wrote {path.relative_to(tmp_path)}" in result.stdout
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=tmp_path,
                            capture_output=True, text=True, check=True).stdout
    assert status == "", f"make demo leaves files for git to see:\n{status}"


def test_the_tours_speed_section_shows_a_size_where_the_kernels_matter_and_what_the_speedup_depends_on(capsys):
    from rnnlab import tour

    tour.speed_comparison(quick=True)
    out = capsys.readouterr().out
    assert "T=1000 B= 1 H=32" in out and "depends on" in out
    if rl.backends.resolve("auto", rl.LSTMCell(4)) == "numba":
        assert "faster than the python loop" in out
    if importlib.util.find_spec("torch") is not None:
        assert "torch" in out and "PyTorch's nn.LSTM" in out


@pytest.mark.parametrize("name", ["phase_portraits.png", "gradient_flow.png", "lstm_gates.png"])
def test_gallery_figures_are_deterministic(name, tmp_path):
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    gallery.save(gallery.FIGURES[name](), first)
    gallery.save(gallery.FIGURES[name](), second)
    assert first.read_bytes() == second.read_bytes()


def test_every_gallery_figure_is_committed_and_listed_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for name in gallery.FIGURES:
        assert (ROOT / "figures" / name).exists(), f"run `make figures`: figures/{name} is missing"
        assert f"figures/{name}" in readme


def legend_texts(ax):
    legend = ax.get_legend()
    return [text.get_text() for text in legend.get_texts()] if legend else []


def test_each_phase_portrait_marks_its_attractors():
    for ax in gallery.phase_portraits().axes:
        labels = legend_texts(ax)
        assert any(label.startswith("stable (") for label in labels) or "attracting cycle" in labels, labels
    contraction, rotation, bistable = gallery.phase_portraits().axes
    assert "stable (1)" in legend_texts(contraction) and "stable (2)" in legend_texts(bistable)
    assert "attracting cycle" in legend_texts(rotation)


def test_gradient_flow_and_eigenvalue_figures_say_what_they_plot():
    assert "dL/dh" in gallery.gradient_flow().axes[0].get_ylabel()
    assert legend_texts(gallery.eigenvalues().axes[0]) == ["unit circle", "eigenvalues of g J"]
    cell = rl.SimpleRNNCell(4, seed=0)
    cell.build((None, 1))
    assert "eigenvalues of R" in legend_texts(plot.eigenvalues(cell).axes[0])
    lstm = rl.LSTMCell(4, seed=0)
    lstm.build((None, 1))
    assert "R block f" in legend_texts(plot.eigenvalues(lstm).axes[0])


def test_the_readme_caption_of_the_edge_of_chaos_figure_matches_its_numbers():
    gains, largest = gallery.edge_of_chaos().axes[0].lines[0].get_data()
    first_chaotic = gains[np.argmax(np.asarray(largest) > 0.01)]
    readme = (ROOT / "README.md").read_text()
    caption = next(line for line in readme.splitlines() if "figures/edge_of_chaos.png" in line)
    assert f"chaos) from g ≈ {first_chaotic:.1f}" in caption, (first_chaotic, caption)


def test_make_lab_starts_jupyterlab_as_root_too():
    commands = subprocess.run(["make", "-n", "lab"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    lab = next(line for line in commands.splitlines() if "jupyter lab" in line)
    assert ("--allow-root" in lab) == (os.geteuid() == 0)
