"""Sequential digits: scikit-learn's bundled 8x8 handwritten digits, read as a sequence."""

import numpy as np

from ..validation import check_dtype_name
from .base import TaskData, check_count, make_rng, uniform_chance

ORDERS = ("rows", "pixels")


def sequential_digits(batch=None, order="rows", seed=None, dtype="float32"):
    """Classify 8x8 digit images shown one row (or one pixel) per step.

    Uses ``sklearn.datasets.load_digits`` (1797 images bundled with
    scikit-learn, no download), an optional dependency. Pixel values 0..16
    are scaled to [0, 1]. ``order="rows"`` shows one row of 8 pixels per step
    (time 8, features 8); ``order="pixels"`` one pixel per step in reading
    order (time 64, features 1), the small cousin of pixel-by-pixel MNIST
    (Le, Jaitly & Hinton 2015). The label is read from the last output.

    Reference: the UCI "Optical Recognition of Handwritten Digits" data
    (Alpaydin & Kaynak 1998), as shipped with scikit-learn.

    Parameters
    ----------
    batch : int or None
        Number of images drawn without replacement; None gives all 1797.
        Either way the order is shuffled by ``seed``.

    Returns
    -------
    TaskData
        x: (batch, 8, 8) or (batch, 64, 1); y: (batch,) int64 labels 0..9; loss
        "cross_entropy", n_classes 10; baseline log 10 and chance accuracy 1/10
        (a uniform guess; the classes are close to balanced).
    """
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    dtype = check_dtype_name(dtype)
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError(
            "sequential_digits needs scikit-learn, an optional dependency of rnnlab: "
            "pip install scikit-learn (or pip install 'rnnlab[tasks]')"
        ) from None

    digits = load_digits()
    images = np.asarray(digits.images, dtype=np.float64) / 16.0  # (N, 8, 8) in [0, 1]
    labels = np.asarray(digits.target, dtype=np.int64)          # (N,)
    count = len(labels) if batch is None else check_count(batch, "batch")
    if count > len(labels):
        raise ValueError(f"batch must be at most {len(labels)} (the number of images), got {count}")
    chosen = make_rng(seed).permutation(len(labels))[:count]

    x = images[chosen]  # (batch, 8, 8): one row per step
    if order == "pixels":
        x = x.reshape(count, 64, 1)
    accuracy, cross_entropy = uniform_chance(10)
    return TaskData(
        name="sequential_digits", x=x.astype(dtype), y=labels[chosen], loss="cross_entropy",
        baseline=cross_entropy, baseline_name="uniform guess over the 10 digits",
        return_sequences=False, n_classes=10, chance_accuracy=accuracy,
    )
