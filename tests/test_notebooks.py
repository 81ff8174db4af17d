"""Every notebook runs top to bottom and shows what it promises, and is stored without outputs.

What a student sees is checked: each figure as an image, once; sliders as a widget with a PNG
figure; no overlapping tick labels; and the demos of notebooks 4 and 5 show their effect.  Each run
leaves its executed copy, prepared for the docs site, in build/executed-notebooks/
(docs/hooks/notebooks.py), and the last test builds the site from those copies.

Policy: notebooks are committed with outputs stripped, so diffs stay readable
and the figures they draw are always made by the current code.
"""

import importlib.util
import os
import pathlib
import re
import subprocess
import sys
import time

import nbformat
from site_browser import offline_browser, screenshot, typeset_text
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

#: docs/hooks/notebooks.py, the mkdocs hook that executes the notebooks and prepares them for the site
_spec = importlib.util.spec_from_file_location("site_notebooks", ROOT / "docs" / "hooks" / "notebooks.py")
site_notebooks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(site_notebooks)


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
SLIDERS = "interactive.sliders("

#: Run first in the kernel: after every cell, before the inline backend shows and closes its pyplot
#: figures, report any axis whose tick labels overlap (unreadable, as in notebook 7's bar chart once).
TICK_LABEL_CHECK = """
def _report_overlapping_tick_labels():
    import sys
    if "matplotlib.pyplot" not in sys.modules:
        return
    import matplotlib.pyplot as plt
    for number in plt.get_fignums():
        figure = plt.figure(number)
        figure.draw_without_rendering()
        for ax in figure.axes:
            for axis in (ax.xaxis, ax.yaxis):
                boxes = [label.get_window_extent() for label in axis.get_ticklabels()
                         if label.get_visible() and label.get_text()]
                if any(a.overlaps(b) for a, b in zip(boxes, boxes[1:])):
                    print(f"OVERLAPPING TICK LABELS in {ax.get_title()!r}")
get_ipython().events.register("post_execute", _report_overlapping_tick_labels)
"""


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
    notebook.cells.insert(0, nbformat.v4.new_code_cell(TICK_LABEL_CHECK))
    start = time.perf_counter()
    site_notebooks.execute(notebook, tmp_path)
    print(f"{path.name}: {time.perf_counter() - start:.1f} s")
    del notebook.cells[0]
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        where = f"{path.name}, cell {index}"
        assert not figure_texts(cell), f"{where} shows a figure as text: {figure_texts(cell)}"
        pictures = images(cell)
        assert len(set(pictures)) == len(pictures), f"{where} shows the same figure twice"
        assert "OVERLAPPING TICK LABELS" not in texts(cell), f"{where}: {texts(cell)}"
        if SLIDERS in cell.source:
            assert any(WIDGET_VIEW in output.get("data", {}) for output in cell.outputs), f"{where} shows no sliders"
        elif any(marker in cell.source + "\n" for marker in DRAWS):
            assert pictures, f"{where} draws but shows no image"
    if any(SLIDERS in cell.source for cell in notebook.cells):
        models = notebook.metadata.widgets["application/vnd.jupyter.widget-state+json"]["state"].values()
        figures = [buffer["data"] for model in models if model["model_name"] == "ImageModel"
                   for buffer in model.get("buffers", []) if buffer["path"] == ["value"]]
        assert figures and all(data.startswith("iVBORw0KGgo") for data in figures), "a slider figure is no PNG"
    if path.name in SHOWS_ITS_EFFECT:
        SHOWS_ITS_EFFECT[path.name](notebook)
    site_notebooks.write(notebook, path.name)  # for the docs site (the last test)


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def texts(cell):
    return "".join(output.get("text", "") for output in cell.outputs if output["output_type"] == "stream")


# -- demos that must show the effect they name ----------------------------------------------------------


def printed(notebook, marker):
    """What the code cell whose source contains ``marker`` printed."""
    return texts(next(c for c in notebook.cells if c.cell_type == "code" and marker in c.source))


def clipping_demo_explodes_and_clipping_calms_it(notebook):
    text = printed(notebook, "def train(clipnorm")
    rows = re.findall(r"^(no clipping|clipnorm=1) +gradient norm up to +(\S+) +loss up to +(\S+),", text, re.M)
    found = {name: (float(norm), float(loss)) for name, norm, loss in rows}
    (norm_free, loss_free), (_, loss_clipped) = found.get("no clipping", (0, 0)), found.get("clipnorm=1", (0, 0))
    assert norm_free > 100, f"notebook 4: without clipping the gradient never explodes:\n{text}"
    assert loss_clipped < loss_free / 10, f"notebook 4: clipping does not calm the loss:\n{text}"


def copy_task_demo_breaks_through_the_baseline(notebook):
    text = printed(notebook, "compare_on_copy_task")
    shares = {name: int(share) for name, share in re.findall(r"^ +(\w+) +(\d+)%$", text, re.M)}
    assert min(shares.get("GRU", 100), shares.get("LSTM", 100)) < 90, f"notebook 5: no cell beats the baseline:\n{text}"


#: notebook -> a check that its demo shows on screen what it is about (not just that it runs).
SHOWS_ITS_EFFECT = {
    "04_vanishing_and_exploding_gradients.ipynb": clipping_demo_explodes_and_clipping_calms_it,
    "05_training_on_classic_tasks.ipynb": copy_task_demo_breaks_through_the_baseline,
}


def cell_with(name, text, cell_type):
    notebook = nbformat.read(next(p for p in NOTEBOOKS if p.name.startswith(name)), as_version=4)
    return next(c.source for c in notebook.cells if c.cell_type == cell_type and text in c.source)


def test_notebook_3_titles_its_per_step_panel_by_what_it_plots():
    """The panel draws the norm of each step's dL/dR; it was once titled "each step's share of dL/dR"."""
    source = cell_with("03", "weights_per_step", "code")
    title = re.search(r'title="([^"]*)"', source[source.index("per_step = "):]).group(1)
    assert "np.linalg.norm" in source and title.startswith("||") and title.endswith("||") and "share" not in title


def test_notebook_6_explains_the_oscillation_at_g_1_with_the_networks_own_eigenvalue():
    """Near g = 1 the slider's network keeps oscillating; the note says why, with J's largest |eigenvalue|."""
    import numpy as np

    note = cell_with("06", "oscillat", "markdown")
    units, seed = 100, 0  # interactive.edge_of_chaos's defaults, which the slider cell keeps
    coupling = np.random.default_rng(seed).normal(0, 1 / np.sqrt(units), size=(units, units))
    radius = np.abs(np.linalg.eigvals(coupling)).max()
    assert f"{radius:.3f}" in note, f"the note should give J's largest |eigenvalue|, {radius:.3f}"


# -- the docs site's notebook pages: last in this file, so that (with --dist loadfile too) it reuses
# -- the copies the runs above wrote; run alone, it executes the notebooks it lacks ----------------------

#: a progress bar's line, ``40%|████      | 160/400 [...]``: the percentage
PROGRESS = re.compile(r"(\d+)%\|")


def test_site_notebook_pages_show_figures_finished_progress_bars_and_static_sliders(tmp_path, monkeypatch):
    """Built as ``make docs`` builds it: each page draws its figures as PNGs, shows each progress
    bar once, finished, and each slider cell as its first figure with a note (no widget offline)."""
    monkeypatch.delenv("MPLBACKEND", raising=False)
    site_notebooks.refresh()
    site = tmp_path / "site"
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1", RNNLAB_EXECUTED_NOTEBOOKS=str(site_notebooks.FOLDER))
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    for path in NOTEBOOKS:
        sources = [c.source + "\n" for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        page = (site / "notebooks" / path.stem / "index.html").read_text(encoding="utf-8")
        if any(marker in source for source in sources for marker in (*DRAWS, SLIDERS)):
            assert re.search(r"<img\b[^>]*src=\"data:image/png;base64,", page), f"{path.name}: no figure on its page"
        # a terminal shows each bar once, finished; each of its updates on a line of its own is spam
        bars = PROGRESS.findall(page)
        assert len(bars) <= 10 and set(bars) <= {"100"}, f"{path.name}'s page shows {len(bars)} progress lines: {bars}"
        cells = page.split("jp-CodeCell")[1:]
        sliders = [cell for cell in cells if SLIDERS in re.sub(r"<[^>]+>", "", cell)]  # the code's text, not its tags
        assert len(sliders) == sum(SLIDERS in source for source in sources), f"{path.name}: slider cells went missing"
        for cell in sliders:
            assert "data:image/png;base64," in cell, f"{path.name}: a slider cell shows no figure"
            assert "Sliders need a live kernel" in cell and "make lab" in cell, f"{path.name}: a slider cell has no note"
    # and as a reader sees it: in Chromium, offline, figures drawn and formulas typeset
    with offline_browser(site) as (page, base):
        text = typeset_text(page, f"{base}/notebooks/02_trajectories_and_phase_portraits/")
        assert "$s_{t+1}" not in text, "notebook 2's page shows raw TeX"
        drawn = page.evaluate("() => [...document.querySelectorAll('article img')].filter(i => i.naturalWidth > 0).length")
        assert drawn >= 3, f"notebook 2's page shows {drawn} figures"
        assert page.outside == [], f"notebook 2's page tried to load from outside: {page.outside}"
        screenshot(page, "docs_notebook_02.png")
