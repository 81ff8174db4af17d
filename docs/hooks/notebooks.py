"""The notebook pages carry their outputs: executed copies of the notebooks, prepared for the site.

The notebooks are committed without outputs.  Executed copies live in a folder, by default
``build/executed-notebooks/`` (``tests/test_notebooks.py`` writes one for each notebook it runs):

- as an mkdocs hook, `on_files` renders each notebook page from its executed copy in the folder
  named by ``RNNLAB_EXECUTED_NOTEBOOKS``, when the copy exists (mkdocs-jupyter never executes);
- as a script, ``python docs/hooks/notebooks.py [FOLDER]`` (what ``make docs`` runs) executes the
  notebooks whose copy is missing or older than the notebook, and writes their prepared copies.

`prepare` makes an executed notebook fit for a static page: progress bars collapse to what a
terminal shows, and slider widgets (which need a live kernel) become their first figure and a note.
"""

import os
import pathlib
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
FOLDER = ROOT / "build" / "executed-notebooks"
ENV = "RNNLAB_EXECUTED_NOTEBOOKS"

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
NOTE = "Sliders need a live kernel: open this notebook in JupyterLab (`make lab`)."


def execute(notebook, workdir):
    """Run ``notebook`` (nbformat) top to bottom in a fresh kernel started in ``workdir``, in place.

    The kernel inherits this process's environment: unset ``MPLBACKEND`` first, for the default
    (inline) matplotlib backend that a student sees.
    """
    from nbclient import NotebookClient

    # timeout: no cell needs more than seconds; a stalled widget cell (nbclient issue 312, see
    # rnnlab.interactive.sliders) would show up as a cell that takes the whole timeout
    NotebookClient(notebook, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}).execute()
    return notebook


def prepare(notebook):
    """Return a copy of the executed ``notebook`` fit for a static page.

    Consecutive stream outputs are merged, keeping what a terminal shows after carriage returns
    (one line per progress bar, not one per update).  Each slider widget becomes the PNG its
    ``ipywidgets.Image`` held (from the widget state nbclient stores) and a note; the widget
    state is dropped, so the page loads no widget scripts (they would come from a CDN).
    """
    import copy

    import nbformat
    from nbconvert.preprocessors import CoalesceStreamsPreprocessor

    notebook = copy.deepcopy(notebook)
    notebook, _ = CoalesceStreamsPreprocessor().preprocess(notebook, {})
    models = notebook.metadata.pop("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        outputs = []
        for output in cell.outputs:
            view = output.get("data", {}).get(WIDGET_VIEW)
            if view is None:
                outputs.append(output)
                continue
            outputs += [nbformat.v4.new_output("display_data", {"image/png": png}) for png in figures(models, view["model_id"])]
            outputs.append(nbformat.v4.new_output("display_data", {"text/markdown": f"*{NOTE}*", "text/plain": NOTE}))
        cell.outputs = outputs
    return notebook


def figures(models, model_id):
    """The PNGs (base64) of the ``Image`` widgets in the widget ``model_id`` and its children."""
    model = models.get(model_id)
    if model is None:
        return []
    if model["model_name"] == "ImageModel":
        return [buffer["data"] for buffer in model.get("buffers", []) if buffer["path"] == ["value"]]
    children = model["state"].get("children", [])
    return [png for child in children for png in figures(models, child.removeprefix("IPY_MODEL_"))]


def write(notebook, name, folder=FOLDER):
    """Write the prepared copy of the executed ``notebook`` as ``folder/name``."""
    import nbformat

    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(prepare(notebook), folder / name)


def refresh(folder=FOLDER):
    """Execute and write each notebook whose copy in ``folder`` is missing or older than the notebook."""
    import nbformat

    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        copy = pathlib.Path(folder) / path.name
        if copy.exists() and copy.stat().st_mtime >= path.stat().st_mtime:
            continue
        print(f"executing {path.name}", flush=True)
        with tempfile.TemporaryDirectory() as workdir:
            write(execute(nbformat.read(path, as_version=4), workdir), path.name, folder)


def on_files(files, config):
    """mkdocs hook: render each notebook page from its executed copy in ``$RNNLAB_EXECUTED_NOTEBOOKS``."""
    folder = os.environ.get(ENV)
    if folder:
        for file in files:
            copy = pathlib.Path(folder, pathlib.PurePosixPath(file.src_uri).name)
            if file.src_uri.startswith("notebooks/") and file.src_uri.endswith(".ipynb") and copy.exists():
                file.abs_src_path = str(copy.resolve())
    return files


if __name__ == "__main__":
    os.environ.pop("MPLBACKEND", None)
    refresh(sys.argv[1] if len(sys.argv) > 1 else FOLDER)
