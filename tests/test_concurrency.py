"""Threads never change a number, and the process settings are left as they were found.

The numba backend picks, per call, whether BLAS runs one thread or the process's
own count (see rnnlab.backends.numba.host.THREADS); the count is process-wide,
so calls from different threads must agree on it.
"""

import threading

import numpy as np
import pytest

import rnnlab as rl
from rnnlab.backends.numba import blas, host

pytestmark = pytest.mark.skipif(blas.blas_threads() is None, reason="this scipy does not expose its BLAS")


def layers_of_different_sizes():
    """One layer whose recurrent kernel streams >= 512 KiB per step (BLAS threads), and small ones."""
    large = rl.RNN(rl.LSTMCell(128, dtype="float64", seed=1), return_sequences=True, backend="numba")
    small = [rl.RNN(rl.GRUCell(units, dtype="float64", seed=units), return_sequences=True, backend="numba")
             for units in (3, 8, 16)]
    large_bytes = large.cell.recurrent_kernel.nbytes if large.built else 128 * 4 * 128 * 8
    assert large_bytes >= host.BLAS_THREADS_MIN_BYTES
    return [large, *small]


def gradients(layer, x):
    """Forward + BPTT: every weight gradient and the input gradient, float64."""
    y, tape = rl.bptt.forward(layer, x)
    grads = rl.bptt.backward(tape, np.cos(y))
    return [y, grads.inputs, *grads.weights]


def test_layers_in_threads_give_exactly_the_sequential_numbers_and_restore_blas():
    rng = np.random.default_rng(0)
    layers = layers_of_different_sizes()
    inputs = [rng.normal(size=(32, 40, 8)) for _ in layers]
    threads_before = blas.blas_threads()
    sequential = [gradients(layer, x) for layer, x in zip(layers, inputs)]

    results, errors = {}, []

    def work(index, repeats=4):
        try:
            for repeat in range(repeats):
                results[index, repeat] = gradients(layers[index], inputs[index])
        except Exception as error:  # reported below, in the main thread
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(layers))]
    threads += [threading.Thread(target=work, args=(i,)) for i in range(1, len(layers))]  # two callers each
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for (index, _), got in results.items():
        for expected, array in zip(sequential[index], got, strict=True):
            np.testing.assert_array_equal(array, expected)
    assert blas.blas_threads() == threads_before


def test_one_blas_thread_restores_the_count_even_when_the_body_fails():
    before = blas.blas_threads()
    with pytest.raises(RuntimeError):
        with blas.one_blas_thread():
            assert blas.blas_threads() == 1
            raise RuntimeError("inside")
    assert blas.blas_threads() == before
