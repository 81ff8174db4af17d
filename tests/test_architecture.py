"""The shape of the code: one room per cell (docs/architecture.md).

These read the syntax trees of rnnlab's modules, so they hold whatever the
modules' strings and docstrings say.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import rnnlab as rl
from rnnlab.cells import registry

PACKAGE = Path(rl.__file__).parent

#: Modules that build example networks (or export the cells) and so may name cell classes.
EXEMPT = {"__init__.py", "tour.py", "gallery.py", "experiments.py", "text_model.py", "cli.py"}

#: The kinds of cell that code outside the rooms used to branch on.
KIND_WORDS = {"simple", "simple_rnn", "simplernn", "gru", "gru_v1", "lstm", "minimal", "minimalrnn",
              "reset_before", "reset_after"}


def leaf_cell_names():
    """Every declared cell with a room of its own (StackedRNNCells is a container, not a leaf)."""
    return {d.cell_class.__name__ for d in registry.declarations() if d.room is not None}


def modules_outside_the_rooms():
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] in ("cells", "tasks") or (len(relative.parts) == 1 and relative.name in EXEMPT):
            continue
        yield relative, ast.parse(path.read_text(), str(path))


def names_used(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            yield node.lineno, node.id
        elif isinstance(node, ast.Attribute):
            yield node.lineno, node.attr
        elif isinstance(node, ast.alias):
            yield getattr(node, "lineno", 0), node.name.split(".")[-1]


def test_the_leaf_cells_are_the_built_in_ones():
    """The check below is only as good as this list: it must know every built-in cell."""
    assert {"SimpleRNNCell", "GRUCell", "LSTMCell", "MinimalRNNCell"} <= leaf_cell_names()


def test_every_declared_cell_is_exported():
    for declaration in registry.declarations():
        if declaration.room is not None:
            assert getattr(rl, declaration.cell_class.__name__) is declaration.cell_class


def test_no_code_outside_the_rooms_names_a_leaf_cell_class():
    leaves = leaf_cell_names()
    found = [f"{path}:{line} {name}" for path, tree in modules_outside_the_rooms()
             for line, name in names_used(tree) if name in leaves]
    assert found == []


def test_nothing_outside_the_rooms_branches_on_a_cell_kind():
    found = []
    for path, tree in modules_outside_the_rooms():
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                for operand in [node.left, *node.comparators]:
                    if isinstance(operand, ast.Constant) and isinstance(operand.value, str) \
                            and operand.value.lower() in KIND_WORDS:
                        found.append(f"{path}:{node.lineno} compares with {operand.value!r}")
        for line, name in names_used(tree):
            if "gru_v1" in name.lower() or "reset_before" in name.lower() or name.startswith("v1_"):
                found.append(f"{path}:{line} {name}")
    assert found == []


def test_backends_import_neither_bptt_nor_layers():
    found = []
    for path, tree in modules_outside_the_rooms():
        if path.parts[0] != "backends":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                imported = [node.module or ""] + [alias.name for alias in node.names]
                if any(name.split(".")[-1] in ("bptt", "layers") for name in imported):
                    found.append(f"{path}:{node.lineno} imports {imported}")
    assert found == []


def test_nothing_outside_the_rooms_reads_a_cells_private_attributes():
    found = [f"{path}:{node.lineno} {node.value.id}.{node.attr}" for path, tree in modules_outside_the_rooms()
             for node in ast.walk(tree)
             if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
             and node.value.id in ("cell", "inner", "instance") and node.attr.startswith("_")]
    assert found == []


def test_types_imports_nothing_from_rnnlab():
    tree = ast.parse((PACKAGE / "types.py").read_text())
    imports = [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert all(isinstance(node, ast.Import) or node.level == 0 for node in imports)
    assert not any("rnnlab" in alias.name for node in imports for alias in node.names)


@pytest.mark.parametrize("part", ["cell", "jacobian"])
def test_every_room_has_its_readable_cell_and_jacobian(part):
    for declaration in registry.declarations():
        if declaration.room is not None:
            assert declaration.module(part) is not None


def test_every_declared_kernel_backend_has_its_module_in_the_room():
    rooms = {"numba": "cpu", "cuda": "cuda"}
    for declaration in registry.declarations():
        for backend in declaration.backends:
            if declaration.room is not None:
                path = PACKAGE.parent / (declaration.room.replace(".", "/") + f"/{rooms[backend]}.py")
                assert path.exists(), path


def test_one_truncation_rule():
    """Every backend's truncated sweeps come from rnnlab.types; none loops over origins itself."""
    found = []
    for path, tree in modules_outside_the_rooms():
        if path.name == "types.py":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id in ("origin", "origins", "only_origin"):
                found.append(f"{path}:{node.lineno} {node.id}")
    assert found == []


def test_menus_come_from_the_registry():
    from rnnlab import interactive, models

    assert set(registry.short_names()) >= {"SimpleRNN", "GRU", "LSTM", "MinimalRNN"}
    assert models.cell_class("LSTM") is rl.LSTMCell
    assert {"SimpleRNN", "GRU", "LSTM"} <= set(interactive.cells()) <= set(registry.with_recurrent_blocks())
    for name in interactive.cells():  # every cell in the slider menu can be made
        assert interactive.make_cell(name, 4, spectral_radius=0.5).built


def test_import_rnnlab_imports_no_numba():
    code = "import sys, rnnlab, rnnlab.kernels; assert 'numba' not in sys.modules, sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_old_module_spellings_still_work():
    """Code written for rnnlab 0.1 keeps running: the modules moved, their old names stay."""
    code = """
from rnnlab.kernels import scan
import rnnlab.kernels.scan
import rnnlab.backends.numba.custom_scan as custom_scan
assert scan is custom_scan and rnnlab.kernels.scan is custom_scan
from rnnlab.kernels.blas import gemm
from rnnlab.kernels.jit import kernel
from rnnlab.kernels import fastmath
from rnnlab.backends.numba import blas, jit
assert gemm is blas.gemm and kernel is jit.jit and fastmath.tanh is not None
from rnnlab.kernels import cuda_backend
assert callable(cuda_backend.options) and callable(cuda_backend.device_weights) and "path" in cuda_backend.CONFIG
"""
    subprocess.run([sys.executable, "-c", code], check=True)
