"""Every notebook runs top to bottom, and is stored without outputs.

Policy: notebooks are committed with outputs stripped, so diffs stay readable
and the figures they draw are always made by the current code.
"""

import pathlib
import time

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((pathlib.Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_all_eight_notebooks_exist():
    numbers = [p.name[:2] for p in NOTEBOOKS]
    assert [n for n in numbers if n <= "08"] == ["01", "02", "03", "04", "05", "06", "07", "08"]
    assert set(numbers) <= {"01", "02", "03", "04", "05", "06", "07", "08", "11"}  # 11: the sweeps notebook


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_stored_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name} has stored outputs"


#: Source text that makes a cell draw a figure (cells with sliders draw inside their widget instead).
DRAWS = ("rp.", "rl.experiments.", "plt.subplots", "plt.figure", "gallery.", ".figure\n")


def images(cell):
    return [output["data"]["image/png"] for output in cell.outputs if "image/png" in output.get("data", {})]


def figure_texts(cell):
    """Outputs that show a figure as its text repr, ``<Figure size 700x400 with 1 Axes>``, instead of a picture."""
    return [output["data"]["text/plain"] for output in cell.outputs
            if "image/png" not in output.get("data", {}) and "<Figure size" in output.get("data", {}).get("text/plain", "")]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom_and_shows_each_figure_once_as_an_image(path, tmp_path, monkeypatch):
    """What a student sees: run in a fresh kernel with its default (inline) matplotlib backend."""
    monkeypatch.delenv("MPLBACKEND", raising=False)
    notebook = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    # timeout: no cell needs more than seconds, and a widget cell's reply is sometimes noticed only when
    # the timeout runs out (nbclient issue 312: the kernel is idle, the client waits), so keep it short
    NotebookClient(notebook, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    print(f"{path.name}: {time.perf_counter() - start:.1f} s")
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        where = f"{path.name}, cell {index}"
        assert not figure_texts(cell), f"{where} shows a figure as text: {figure_texts(cell)}"
        pictures = images(cell)
        assert len(set(pictures)) == len(pictures), f"{where} shows the same figure twice"
        if any(marker in cell.source + "\n" for marker in DRAWS) and "interact(" not in cell.source:
            assert pictures, f"{where} draws but shows no image"
