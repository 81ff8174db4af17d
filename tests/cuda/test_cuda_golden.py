"""The CUDA backend reproduces tf.keras 2 itself: the golden fixtures (see tests/test_golden.py).

On a GPU every fixture the CUDA backend runs is replayed.  The simulator
interprets each thread in Python (about 3 s a fixture), so there a sample of
17 runs: each cell with masks and go_backwards, and every option CUDA has once.
"""

import pytest
from numba import config

from golden_cases import CASES, replay, runs_on

SIMULATOR_SAMPLE = [
    "grid_simple_rnn_seq_state_backwards_mask", "grid_gru_reset_after_seq_state_backwards_mask",
    "grid_gru_reset_before_seq_state_backwards_mask", "grid_lstm_last_state_backwards_mask",
    "hard_sigmoid_lstm_seq_state", "hard_sigmoid_gru_reset_after_seq_state",
    "hard_sigmoid_gru_reset_before_last_state_mask", "time_major_lstm_seq_state_backwards_mask_init",
    "stateful_lstm_seq_state_mask",
    "bidi_concat_gru_seq_state_mask", "bidi_mul_gru_reset_before_seq_state_init", "zero_output_lstm_seq_state_mask",
    "fully_masked_sample_lstm_seq_state_init", "no_bias_gru_reset_after_seq_state", "init_simple_rnn_seq_state_mask",
    "bidi_none_simple_rnn_last_state_mask_init", "dropout_gru_reset_before_last_state_mask",
]
CUDA_CASES = [name for name in (SIMULATOR_SAMPLE if config.ENABLE_CUDASIM else CASES) if runs_on(name, "cuda")]


@pytest.mark.parametrize("name", CUDA_CASES)
def test_cuda_backend_matches_tf_keras_2(name):
    replay(name, "cuda")


def test_the_sample_is_made_of_fixtures_cuda_runs():
    assert set(SIMULATOR_SAMPLE) <= set(CASES)
    assert all(runs_on(name, "cuda") for name in SIMULATOR_SAMPLE)
