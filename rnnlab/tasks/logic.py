"""Bit tasks: parity of a whole sequence, and XOR of bits a fixed delay apart."""

import numpy as np

from ..validation import check_dtype_name
from .base import TaskData, check_count, check_probability, entropy, make_rng


def odd_parity_probability(n_bits, p_one=0.5):
    """Probability that ``n_bits`` independent bits, each 1 with probability ``p_one``, hold an odd number of ones.

    Writing each bit as s = 1 - 2b (+1 or -1), the parity is odd exactly when
    the product of the s is -1, and E[product] = (1 - 2 p_one)^n_bits, so
    P(odd) = (1 - (1 - 2 p_one)^n_bits) / 2. Fair bits give exactly 1/2.
    """
    n_bits = check_count(n_bits, "n_bits", minimum=0)
    p_one = check_probability(p_one, "p_one")
    return (1.0 - (1.0 - 2.0 * p_one) ** n_bits) / 2.0


def _bit_baseline(p_target_one):
    """(chance accuracy, chance cross-entropy) for a 0/1 target that is 1 with probability p."""
    return max(p_target_one, 1.0 - p_target_one), entropy([p_target_one, 1.0 - p_target_one])


def parity(batch, time, p_one=0.5, seed=None, dtype="float32"):
    """Parity: is the number of ones in the whole bit sequence odd?

    Input bits are independent, 1 with probability ``p_one``. The target, read
    from the last output only, is 1 when the sequence holds an odd number of
    ones. One flipped bit anywhere flips the answer, so the model must carry
    information across the whole sequence.

    Reference: Bengio, Simard & Frasconi (1994), "Learning long-term
    dependencies with gradient descent is difficult".

    Returns
    -------
    TaskData
        x: (batch, time, 1) bits as floats; y: (batch,) int64 in {0, 1}; loss
        "cross_entropy", n_classes 2; baseline: the entropy of the target,
        whose P(1) is ``odd_parity_probability(time, p_one)`` (log 2 and
        accuracy 1/2 for fair bits).
    """
    batch = check_count(batch, "batch")
    time = check_count(time, "time")
    p_one = check_probability(p_one, "p_one")
    dtype = check_dtype_name(dtype)
    rng = make_rng(seed)

    bits = (rng.random((batch, time)) < p_one).astype(np.int64)  # (B, T)
    y = bits.sum(axis=1) % 2                                      # (B,)
    accuracy, cross_entropy = _bit_baseline(odd_parity_probability(time, p_one))
    return TaskData(
        name="parity", x=bits[:, :, None].astype(dtype), y=y, loss="cross_entropy",
        baseline=cross_entropy, baseline_name="predict the target's class frequencies",
        return_sequences=False, n_classes=2, chance_accuracy=accuracy,
    )


def delayed_xor(batch, time, delay, p_one=0.5, seed=None, dtype="float32"):
    """Delayed XOR: output the XOR of the current bit and the bit ``delay`` steps back.

    Input bits are independent, 1 with probability ``p_one``. At step t >= delay
    the target is ``bit[t] XOR bit[t - delay]``; the first ``delay`` steps have
    no target and are False in the loss mask. The task needs both memory (of
    ``delay`` steps) and a nonlinearity (XOR is not linearly separable).

    Reference: a classic memory-plus-nonlinearity probe, used for example by
    Bertschinger & Natschläger (2004), "Real-time computation at the edge of
    chaos in recurrent neural networks" (delayed parity of input bits).

    Returns
    -------
    TaskData
        x: (batch, time, 1) bits as floats; y: (batch, time) int64 in {0, 1}
        (0 where masked); mask: (batch, time) bool; loss "cross_entropy",
        n_classes 2; baseline: the entropy of a target that is 1 with
        probability ``odd_parity_probability(2, p_one)`` (log 2 for fair bits).
    """
    batch = check_count(batch, "batch")
    delay = check_count(delay, "delay")
    time = check_count(time, "time", minimum=delay + 1)
    p_one = check_probability(p_one, "p_one")
    dtype = check_dtype_name(dtype)
    rng = make_rng(seed)

    bits = (rng.random((batch, time)) < p_one).astype(np.int64)  # (B, T)
    y = np.zeros((batch, time), dtype=np.int64)
    y[:, delay:] = bits[:, delay:] ^ bits[:, :-delay]
    mask = np.zeros((batch, time), dtype=bool)
    mask[:, delay:] = True
    # the XOR of two bits is 1 when exactly one of them is: parity of 2 bits
    accuracy, cross_entropy = _bit_baseline(odd_parity_probability(2, p_one))
    return TaskData(
        name="delayed_xor", x=bits[:, :, None].astype(dtype), y=y, loss="cross_entropy",
        baseline=cross_entropy, baseline_name="predict the target's class frequencies",
        return_sequences=True, n_classes=2, chance_accuracy=accuracy, mask=mask,
    )
