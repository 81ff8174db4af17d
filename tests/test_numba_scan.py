"""The custom-cell scan (rnnlab.backends.numba.custom_scan) equals the python backend for custom cells.

The worked example of docs/kernels.md runs as written (from a file, so that
its ``cache=True`` step functions have a source file to cache against).
"""

import importlib.util
import pathlib
import re
import sys
import tempfile

import numba
import numpy as np
import pytest

import rnnlab as rl
from rnnlab.backends.numba import custom_scan
from test_numba_backend import both_backends, random_mask, run_and_compare

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs" / "kernels.md"


@pytest.fixture(scope="module")
def example():
    """The namespace of docs/kernels.md's example, run from a file.

    The file keeps its path and modification time between runs while the
    example is unchanged, so its step functions load from numba's cache.
    """
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", DOCS.read_text(), flags=re.S) if "import rnnlab" in b]
    path = pathlib.Path(tempfile.gettempdir()) / "rnnlab-kernels-doc" / "leaky_example.py"
    if not path.exists() or path.read_text() != block:
        path.parent.mkdir(exist_ok=True)
        path.write_text(block)
    spec = importlib.util.spec_from_file_location("rnnlab_kernels_doc_example", path)
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)  # numba's cache imports it by name
    spec.loader.exec_module(module)
    return vars(module)


OPTIONS = [dict(), dict(go_backwards=True, return_state=True), dict(zero_output_for_mask=True, time_major=True)]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("options", OPTIONS, ids=["plain", "backwards", "zero"])
def test_docs_example_cell_equals_python(example, options, dtype):
    rng = np.random.default_rng(0)
    cell = example["FastLeakyCell"](5, leak=0.3, seed=1, dtype=dtype)
    layers = both_backends(lambda backend: rl.RNN(cell, return_sequences=True, backend=backend, **options))
    x = rng.standard_normal((6, 3, 2) if options.get("time_major") else (3, 6, 2)).astype(dtype)
    initial_state = [rng.standard_normal((3, 5)).astype(dtype)] if options.get("return_state") else None
    mask = random_mask(rng, 3, 6)
    run_and_compare(layers, x, dtype, mask=mask.T if options.get("time_major") else mask, initial_state=initial_state)


def test_loops_are_built_once_per_step_function(example):
    step = example["leaky_step"]
    assert custom_scan.forward_loop(step) is custom_scan.forward_loop(step) is custom_scan.LOOPS[("forward", step)]


# -- a cell with two states whose output is the second one, without a numba backward ------------


class SumTanhCell(rl.AbstractRNNCell):
    """States [c, h]: c' = c + x K, h' = tanh(c' + h R); the output is h' (state 1)."""

    output_state_index = 1

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    @property
    def state_size(self):
        return [self.units, self.units]

    @property
    def output_size(self):
        return self.units

    def build(self, input_shape):
        self.add_weight("kernel", (input_shape[-1], self.units), "glorot_uniform")
        self.add_weight("recurrent_kernel", (self.units, self.units), "orthogonal")

    def call(self, inputs, states):
        output, new_states, _ = self.forward(inputs, states)
        return output, new_states

    def forward(self, inputs, states):
        c, h = states
        c_new = c + inputs @ self.kernel
        h_new = np.tanh(c_new + h @ self.recurrent_kernel)
        return h_new, [c_new, h_new], {"inputs": inputs, "h": h, "h_new": h_new}

    def backward(self, cache, d_output, d_new_states):
        d_c_new, d_h_new = d_new_states
        da = (d_output + d_h_new) * (1 - cache["h_new"] ** 2)
        d_c = d_c_new + da
        d_weights = [cache["inputs"].T @ d_c, cache["h"].T @ da]
        return d_c @ self.kernel.T, [d_c, da @ self.recurrent_kernel.T], d_weights


@numba.njit(cache=True)
def sum_tanh_step(x, state, weights, params, new_state, output, cache):
    K, R = weights
    U = R.shape[0]
    xk = x @ K  # (B, U); these products allocate, which is fine for a test
    hr = np.ascontiguousarray(state[:, U:]) @ R
    for b in range(x.shape[0]):
        for j in range(U):
            c = state[b, j] + xk[b, j]
            h = np.tanh(c + hr[b, j])
            new_state[b, j], new_state[b, U + j], output[b, j] = c, h, h
            if cache.shape[1]:  # the cell with a backward keeps h'
                cache[b, j] = h


@numba.njit(cache=True)
def sum_tanh_backward(x, state, weights, params, cache, d_output, d_new_state, d_x, d_state, d_weights):
    K, R = weights
    dK, dR = d_weights
    U = R.shape[0]
    da = (d_output + d_new_state[:, U:]) * (1 - cache * cache)
    d_c = d_new_state[:, :U] + da
    d_x[:, :] = d_c @ K.T
    d_state[:, :U] = d_c
    d_state[:, U:] = da @ np.ascontiguousarray(R.T)
    dK += x.T @ d_c
    dR += np.ascontiguousarray(state[:, U:].T) @ da


@custom_scan.register
class FastSumTanhCell(SumTanhCell):
    numba_step = staticmethod(sum_tanh_step)


@custom_scan.register
class FasterSumTanhCell(SumTanhCell):
    numba_step = staticmethod(sum_tanh_step)
    numba_backward = staticmethod(sum_tanh_backward)

    def numba_cache_size(self):
        return self.units


@pytest.mark.parametrize("options", [dict(return_state=True), dict(go_backwards=True)])
@pytest.mark.parametrize("cls", [FastSumTanhCell, FasterSumTanhCell], ids=["python_replay", "numba_backward"])
def test_two_state_cell_whose_output_is_its_second_state(cls, options):
    """With numba_backward the loop adds the output's gradient to state 1; without, BPTT replays python."""
    rng = np.random.default_rng(2)
    cell = cls(3, seed=0, dtype="float64")
    assert rl.backends.resolve("auto", cell) == "numba"
    layers = both_backends(lambda backend: rl.RNN(cell, return_sequences=True, backend=backend, **options))
    run_and_compare(layers, rng.standard_normal((2, 5, 2)), "float64", mask=random_mask(rng, 2, 5),
                    initial_state=[rng.standard_normal((2, 3)), rng.standard_normal((2, 3))])


def test_a_registered_cell_without_numba_step_falls_back():
    @custom_scan.register
    class Plain(SumTanhCell):
        pass

    cell = Plain(2)
    assert rl.backends.resolve("auto", cell) == "python"
    with pytest.raises(ValueError, match="Plain has no numba_step"):
        rl.backends.resolve("numba", cell)
