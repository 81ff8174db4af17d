"""Code blocks in docs/ run as written."""

import pathlib
import re

import pytest

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs"


def runnable_blocks(name):
    """Python blocks that import what they need (the first block of a page may be a fragment)."""
    text = (DOCS / name).read_text()
    return [b for b in re.findall(r"```python\n(.*?)```", text, flags=re.S) if "import rnnlab" in b]


@pytest.mark.parametrize("name", ["custom_cells.md", "index.md", "training.md"])
def test_docs_code_blocks_run(name, capsys):
    blocks = runnable_blocks(name)
    assert blocks, f"no runnable example in {name}"
    for block in blocks:
        exec(compile(block, name, "exec"), {})


def test_custom_cell_example_passes_its_gradient_check(capsys):
    block = runnable_blocks("custom_cells.md")[0]  # the leaky cell
    exec(compile(block, "custom_cells.md", "exec"), {})
    out = capsys.readouterr().out
    assert "kernel" in out and "initial_state[0]" in out and "LARGE" not in out
