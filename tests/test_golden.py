"""rnnlab reproduces tf.keras 2 itself: every golden fixture, on every CPU backend that runs it.

The fixtures were recorded from tf.keras 2.21 by tests/golden/make_golden.py
(``make golden``); tests/cuda/test_cuda_golden.py replays them on the CUDA backend.
"""

import pytest

from golden_cases import CASES, replay, runs_on

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")  # an overflow would hide a wrong number


@pytest.mark.parametrize("name", CASES)
def test_python_backend_matches_tf_keras_2(name):
    replay(name, "python")


NUMBA_CASES = [name for name in CASES if runs_on(name, "numba")]


@pytest.mark.parametrize("name", NUMBA_CASES)
def test_numba_backend_matches_tf_keras_2(name):
    replay(name, "numba")


def test_the_fixtures_cover_what_the_issue_lists():
    kinds = " ".join(CASES)
    for needed in ("simple_rnn", "gru_reset_after", "gru_reset_before", "lstm", "mask", "backwards", "time_major",
                   "stateful", "stacked", "bidi_concat", "bidi_sum", "bidi_mul", "bidi_ave", "bidi_none", "minimal",
                   "nested", "constants", "hard_sigmoid", "dropout_simple_rnn", "dropout_gru_reset_after",
                   "dropout_gru_reset_before", "dropout_lstm"):
        assert needed in kinds, needed
    assert len(NUMBA_CASES) > len(CASES) // 2
