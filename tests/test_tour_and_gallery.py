"""`rnnlab tour` (make demo) and the figures gallery (make figures) run and write what they promise."""

import subprocess
import sys

import pytest

from rnnlab import gallery


def test_quick_tour_runs_every_part_and_writes_pngs(tmp_path):
    result = subprocess.run([sys.executable, "-m", "rnnlab", "tour", "--quick", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=600, env={"CI": "true", "PATH": ""})
    assert result.returncode == 0, result.stderr
    for part in ("1. Cells on a task", "2. Training", "3. Gradient flow", "4. Figures", "5. Speed"):
        assert part in result.stdout
    written = sorted(tmp_path.glob("*.png"))
    assert len(written) >= 4
    for path in written:
        assert f"wrote {path}" in result.stdout
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("name", ["phase_portraits.png", "gradient_flow.png", "lstm_gates.png"])
def test_gallery_figures_are_deterministic(name, tmp_path):
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    gallery.save(gallery.FIGURES[name](), first)
    gallery.save(gallery.FIGURES[name](), second)
    assert first.read_bytes() == second.read_bytes()


def test_every_gallery_figure_is_committed_and_listed_in_the_readme():
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    for name in gallery.FIGURES:
        assert (root / "figures" / name).exists(), f"run `make figures`: figures/{name} is missing"
        assert f"figures/{name}" in readme
