"""Memory tasks: the adding problem, the copy-memory task and the n-bit flip-flop."""

import numpy as np

from ..validation import check_dtype_name
from .base import TaskData, check_count, check_probability, make_rng, one_hot, uniform_variance


def adding_baseline_mse():
    """MSE of always predicting the mean target of the adding problem: 1/6.

    The target is U1 + U2 with independent U1, U2 ~ U[0, 1]. The best constant
    prediction is its mean, 1, and its MSE is the variance of the sum,
    Var(U1) + Var(U2) = 2 * (1 - 0)^2 / 12.
    """
    return 2 * uniform_variance(0.0, 1.0)


def adding_problem(batch, time, seed=None, dtype="float32"):
    """The adding problem: remember two marked numbers and output their sum.

    Channel 0 holds values drawn from U[0, 1]; channel 1 is a marker holding
    exactly two ones, one in the first half of the sequence (steps
    ``[0, time // 2)``) and one in the second half (steps ``[time // 2, time)``),
    as in Arjovsky et al. (2016). The target, read from the last output only,
    is the sum of the two marked values.

    References: Hochreiter & Schmidhuber (1997), "Long short-term memory";
    Le, Jaitly & Hinton (2015), "A simple way to initialize recurrent networks
    of rectified linear units"; Arjovsky, Shah & Bengio (2016), "Unitary
    evolution recurrent neural networks".

    Returns
    -------
    TaskData
        x: (batch, time, 2); y: (batch, 1); loss "mse"; baseline
        ``adding_baseline_mse()`` = 1/6 (always predict the mean, 1).
        info["marker_steps"]: (batch, 2) int, the two marked steps.
    """
    batch = check_count(batch, "batch")
    time = check_count(time, "time", minimum=2)
    dtype = check_dtype_name(dtype)
    rng = make_rng(seed)

    values = rng.uniform(0.0, 1.0, size=(batch, time)).astype(dtype)  # (B, T)
    half = time // 2
    first = rng.integers(0, half, size=batch)      # a step in the first half
    second = rng.integers(half, time, size=batch)  # a step in the second half
    rows = np.arange(batch)
    markers = np.zeros((batch, time), dtype=dtype)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0

    x = np.stack([values, markers], axis=-1)                  # (B, T, 2)
    y = (values[rows, first] + values[rows, second])[:, None]  # (B, 1)
    return TaskData(
        name="adding_problem", x=x, y=y, loss="mse",
        baseline=adding_baseline_mse(), baseline_name="always predict the mean (1)",
        return_sequences=False, info={"marker_steps": np.stack([first, second], axis=1)},
    )


def copy_memory_baseline(delay, n_symbols=8, seq_len=10):
    """Cross-entropy per step of the memoryless copy-task predictor: seq_len * log(n_symbols) / (delay + 2 * seq_len).

    Without memory the best a model can do is output "blank" with certainty for
    the first ``delay + seq_len`` steps (cost 0) and a uniform guess over the
    ``n_symbols`` symbols for the last ``seq_len`` steps (cost log n_symbols each),
    averaged over all ``delay + 2 * seq_len`` steps. For the default sizes this is
    10 log 8 / (T + 20) (Arjovsky et al. 2016).
    """
    delay = check_count(delay, "delay", minimum=0)
    n_symbols, seq_len = check_count(n_symbols, "n_symbols"), check_count(seq_len, "seq_len")
    return float(seq_len * np.log(n_symbols) / (delay + 2 * seq_len))


def copy_memory(batch, delay, n_symbols=8, seq_len=10, seed=None, dtype="float32"):
    """The copy-memory task: reproduce a sequence of symbols after a long delay.

    Input ids (total length ``delay + 2 * seq_len``): ``seq_len`` symbols drawn
    uniformly from 1..n_symbols, ``delay - 1`` blanks (id 0), one delimiter
    (id n_symbols + 1) telling the model to start recalling, then ``seq_len``
    blanks. Target ids: ``delay + seq_len`` blanks, then the ``seq_len`` input
    symbols in order. With the defaults this is Arjovsky et al. (2016)'s task
    with T = ``delay``.

    Reference: Arjovsky, Shah & Bengio (2016), "Unitary evolution recurrent
    neural networks" (after Hochreiter & Schmidhuber 1997).

    Returns
    -------
    TaskData
        x: (batch, delay + 2*seq_len, n_symbols + 2) one-hot; y: (batch,
        delay + 2*seq_len) int64 class ids in 0..n_symbols (the delimiter is
        never a target); loss "cross_entropy" with n_classes = n_symbols + 1;
        baseline ``copy_memory_baseline(delay, n_symbols, seq_len)``.
    """
    batch = check_count(batch, "batch")
    delay = check_count(delay, "delay")
    n_symbols = check_count(n_symbols, "n_symbols")
    seq_len = check_count(seq_len, "seq_len")
    dtype = check_dtype_name(dtype)
    rng = make_rng(seed)

    total = delay + 2 * seq_len
    delimiter = n_symbols + 1
    symbols = rng.integers(1, n_symbols + 1, size=(batch, seq_len))  # (B, seq_len)
    inputs = np.zeros((batch, total), dtype=np.int64)
    inputs[:, :seq_len] = symbols
    inputs[:, seq_len + delay - 1] = delimiter
    targets = np.zeros((batch, total), dtype=np.int64)
    targets[:, -seq_len:] = symbols

    # the memoryless predictor is sure of the blanks and guesses the symbols
    chance_accuracy = (delay + seq_len + seq_len / n_symbols) / total
    return TaskData(
        name="copy_memory", x=one_hot(inputs, n_symbols + 2, dtype), y=targets,
        loss="cross_entropy", baseline=copy_memory_baseline(delay, n_symbols, seq_len),
        baseline_name="memoryless: blanks, then a uniform guess over the symbols",
        return_sequences=True, n_classes=n_symbols + 1, chance_accuracy=chance_accuracy,
    )


def flip_flop_baseline_mse(time, p_flip):
    """MSE of the best memoryless predictor of the flip-flop task (output 0).

    A channel's target at step t (1-based) is 0 until its first pulse and +1 or
    -1 with equal probability afterwards, so its mean is 0 at every step: the
    best prediction that ignores the inputs is 0. Its squared error at step t is
    1 exactly when a pulse has arrived by then, which happens with probability
    1 - (1 - p_flip)^t. The baseline is the average of that over t = 1..time.
    """
    time, p_flip = check_count(time, "time"), check_probability(p_flip, "p_flip")
    steps = np.arange(1, time + 1)
    return float(np.mean(1.0 - (1.0 - p_flip) ** steps))


def flip_flop(batch, time, n_bits=3, p_flip=0.05, seed=None, dtype="float32"):
    """The n-bit flip-flop: each output holds the sign of the last pulse on its channel.

    Every step, each of the ``n_bits`` input channels independently receives a
    pulse with probability ``p_flip``, of value +1 or -1 with equal
    probability, and is 0 otherwise. Each target channel holds the sign of the
    most recent pulse on its input channel, counting a pulse at the same step,
    and is 0 before the first pulse.

    Reference: Sussillo & Barak (2013), "Opening the black box: low-dimensional
    dynamics in high-dimensional recurrent neural networks".

    Returns
    -------
    TaskData
        x, y: (batch, time, n_bits) with values in {-1, 0, 1}; loss "mse";
        baseline ``flip_flop_baseline_mse(time, p_flip)`` (always output 0).
    """
    batch = check_count(batch, "batch")
    time = check_count(time, "time")
    n_bits = check_count(n_bits, "n_bits")
    p_flip = check_probability(p_flip, "p_flip", low_open=True)
    dtype = check_dtype_name(dtype)
    rng = make_rng(seed)

    pulses = rng.random((batch, time, n_bits)) < p_flip
    signs = rng.choice(np.array([-1.0, 1.0], dtype=dtype), size=(batch, time, n_bits))
    x = np.where(pulses, signs, 0.0).astype(dtype)  # (B, T, n_bits)

    y = np.zeros_like(x)
    held = np.zeros((batch, n_bits), dtype=dtype)  # what each flip-flop holds now
    for t in range(time):
        held = np.where(pulses[:, t], x[:, t], held)
        y[:, t] = held
    return TaskData(
        name="flip_flop", x=x, y=y, loss="mse",
        baseline=flip_flop_baseline_mse(time, p_flip), baseline_name="always output 0",
        return_sequences=True,
    )
