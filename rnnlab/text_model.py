r"""A character-level language model and temperature sampling.

The model reads one-hot characters and predicts, at every step, the logits
of the next character.  Trained on Reber strings it learns the grammar;
sampling from it writes new strings:

```text
    text, vocab = rl.tasks.reber_text(2000, seed=0)
    model = rl.CharModel(vocab, units=32, seed=0)
    model.fit_text(text, steps=300, seed=0)
    rl.sample(model, "\nBP", length=60, temperature=0.5, seed=0)   # a newline starts a string
    # 'BTSSXXVPXVVEPE\nBPBTXSEPE\nBPBPVVEPE\n...'
```

Sampling with temperature tau draws the next character from:

```text
    p_k = softmax(z / tau)_k = exp(z_k / tau) / sum_j exp(z_j / tau)
```

tau = 1 is the model's own distribution; tau < 1 sharpens it towards the most
likely character (tau -> 0 is argmax, "greedy" decoding); tau > 1 flattens
it towards uniform.
"""

import numpy as np

from . import optimizers, validation
from .contract import register
from .layers import RNN, Dense
from .losses import softmax
from .models import Sequential, cell_class, optimizer_from_config, optimizer_to_config
from .tasks import next_char


@register
class CharModel(Sequential):
    """Stacked recurrent layers over one-hot characters, with a Dense readout of next-character logits.

    Args:
        vocab: ``{character: id}`` with ids 0..V-1 (``rl.tasks.reber_text`` returns one).
        units: hidden units of each recurrent layer.
        cell: ``"LSTM"``, ``"GRU"``, ``"SimpleRNN"`` or ``"MinimalRNN"``.
        depth: number of recurrent layers.
        seed: seeds the weights (layer k gets seed + k), or None for fresh random weights.
        optimizer: as for `Sequential`; the loss is always ``"cross_entropy"``.

    Inputs (B, T, V) one-hot, outputs (B, T, V) logits.
    """

    def __init__(self, vocab, units=32, cell="LSTM", depth=1, seed=None, dtype="float32", backend="auto",
                 optimizer=None, name=None):
        if not isinstance(vocab, dict):
            raise TypeError(f"vocab must be a dict of single characters to ids 0..len(vocab)-1, "
                            f"got {type(vocab).__name__}")
        vocab = dict(vocab)
        if sorted(vocab.values()) != list(range(len(vocab))) or not all(len(c) == 1 for c in vocab):
            raise ValueError("vocab must map single characters to the ids 0..len(vocab)-1, each used once")
        depth = validation.count(depth, "depth")
        if seed is not None:
            seed = validation.count(seed, "seed", minimum=0)  # each layer gets seed + its index
        self.vocab, self.units, self.cell, self.depth, self.seed, self.backend = vocab, units, cell, depth, seed, backend
        self.characters = sorted(vocab, key=vocab.get)  # id -> character
        seeds = [None if seed is None else seed + k for k in range(depth + 1)]
        layers = [RNN(cell_class(cell)(units, seed=seeds[k], dtype=dtype), return_sequences=True, backend=backend)
                  for k in range(depth)]
        layers.append(Dense(len(vocab), seed=seeds[-1], dtype=dtype))
        optimizer = optimizer or optimizers.Adam(1e-2, clipnorm=1.0)
        super().__init__(layers, loss="cross_entropy", optimizer=optimizer, name=name or "char_model")

    def encode(self, text):
        """One-hot (1, len(text), V) inputs for ``text``."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        unknown = sorted(set(text) - set(self.vocab))
        if unknown:
            raise ValueError(f"characters {unknown!r} are not in this model's vocabulary {self.characters!r}")
        ids = [self.vocab[char] for char in text]
        return np.eye(len(self.vocab), dtype=self.dtype)[ids][None]

    def fit_text(self, text, steps, batch_size=32, time=20, seed=None, **kwargs):
        """Train on random windows of ``text`` (see `rnnlab.tasks.next_char`); returns the History.

        Step s trains on windows drawn with seed ``(seed, s)``, so a seed makes the run repeatable.
        Other keyword arguments go to `fit_generator`.
        """
        def make_batch(step):
            return next_char(text, batch_size, time, vocab=self.vocab, seed=None if seed is None else (seed, step),
                             dtype=self.dtype)

        return self.fit_generator(make_batch, steps, **kwargs)

    def get_config(self):
        return {"vocab": self.vocab, "units": self.units, "cell": self.cell, "depth": self.depth, "seed": self.seed,
                "dtype": self.dtype, "backend": self.backend, "name": self.name,
                "optimizer": optimizer_to_config(self.optimizer)}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["optimizer"] = optimizer_from_config(config["optimizer"])
        return cls(**config)


def temperature_softmax(logits, temperature):
    """Probabilities ``softmax(z / tau)`` over the last axis; ``temperature == 0`` gives a one-hot argmax.

    Computed in float64 so that small temperatures (large ``z / tau``) stay exact.
    """
    z = validation.float_array(logits, "logits", "float64")
    temperature = validation.real(temperature, "temperature")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if temperature == 0:
        return (np.arange(z.shape[-1]) == np.argmax(z, axis=-1)[..., None]).astype(np.float64)
    return softmax(z / temperature)


def sample(model, prefix, length, temperature=1.0, seed=None):
    """Let a `CharModel` write ``length`` characters after ``prefix``; returns the new characters.

    The prefix is read one character at a time, carrying every layer's
    states; then each step draws a character from
    ``temperature_softmax(logits, temperature)`` with a Generator seeded by
    ``seed`` and feeds it back as the next input.
    """
    if not isinstance(model, CharModel):
        raise TypeError(f"sample needs a CharModel, got {type(model).__name__}")
    if not isinstance(prefix, str) or not prefix:
        raise ValueError(f"prefix must be a non-empty string, got {prefix!r}")
    if isinstance(length, bool) or not isinstance(length, int) or length < 0:
        raise ValueError(f"length must be an int >= 0, got {length!r}")
    temperature = validation.real(temperature, "temperature")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    inputs = model.encode(prefix)[0]  # (T, V): checks the characters
    rng = np.random.default_rng(seed)
    states = [None] * len(model.recurrent_layers)  # None: the cell starts from zeros
    written = []
    for t in range(len(prefix) + length - 1):
        x = inputs[t][None] if t < len(prefix) else model.encode(written[-1])[0]  # (1, V)
        for k, layer in enumerate(model.recurrent_layers):
            x, states[k] = layer.cell(x, states[k])  # one step: (1, units)
        if t >= len(prefix) - 1:
            probs = temperature_softmax(model.readout(x)[0], temperature)  # (V,)
            written.append(model.characters[rng.choice(len(probs), p=probs)])
    return "".join(written)
