"""Next-character prediction on any text, for character-level models."""

from collections import Counter

import numpy as np

from ..validation import check_dtype_name
from .base import TaskData, check_count, entropy, make_rng, one_hot


def next_char(text, batch, time, vocab=None, seed=None, dtype="float32"):
    """Random windows of ``text`` for next-character prediction.

    Each sequence is a window of ``time + 1`` consecutive characters starting
    at a random position: the inputs are the first ``time`` characters one-hot,
    the targets the ids of the ``time`` characters that follow each of them.

    Parameters
    ----------
    text : str
        The corpus, longer than ``time`` characters (``reber_text`` makes one).
    vocab : dict or None
        Character -> id, ids 0..len(vocab)-1; by default the sorted characters of ``text``.

    Returns
    -------
    TaskData
        x: (batch, time, len(vocab)) one-hot; y: (batch, time) int64 ids; loss
        "cross_entropy", n_classes len(vocab); baseline: the entropy of the
        character frequencies of ``text`` (the unigram predictor, computed on
        the text). info["vocab"]: the vocabulary.
    """
    batch = check_count(batch, "batch")
    time = check_count(time, "time")
    dtype = check_dtype_name(dtype)
    if not isinstance(text, str):
        raise TypeError(f"text must be a str (the corpus), got {type(text).__name__}")
    if vocab is None:
        vocab = {char: i for i, char in enumerate(sorted(set(text)))}
    if sorted(vocab.values()) != list(range(len(vocab))):
        raise ValueError("vocab must map characters to the ids 0..len(vocab)-1, each used once")
    unknown = set(text) - set(vocab)
    if unknown:
        raise ValueError(f"text holds characters missing from vocab: {sorted(unknown)!r}")
    if len(text) <= time:
        raise ValueError(f"text must be longer than time = {time} characters, got {len(text)}")
    rng = make_rng(seed)

    ids = np.array([vocab[char] for char in text], dtype=np.int64)
    starts = rng.integers(0, len(ids) - time, size=batch)
    windows = ids[starts[:, None] + np.arange(time + 1)]  # (B, T+1)
    counts = np.array(list(Counter(text).values()), dtype=np.float64)
    frequencies = counts / counts.sum()
    return TaskData(
        name="next_char", x=one_hot(windows[:, :-1], len(vocab), dtype), y=windows[:, 1:],
        loss="cross_entropy", baseline=entropy(frequencies),
        baseline_name="unigram: the character frequencies of the text",
        return_sequences=True, n_classes=len(vocab), chance_accuracy=float(frequencies.max()),
        info={"vocab": vocab},
    )
