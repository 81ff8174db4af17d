"""``Sequential``: recurrent layers plus a ``Dense`` readout, trained end to end by hand-written BPTT.

```text
    model = rl.Sequential([
        rl.RNN(rl.LSTMCell(32, seed=0), return_sequences=True),   # inner layers return sequences
        rl.RNN(rl.GRUCell(32, seed=1)),                           # the last may return (B, H)
        rl.Dense(1, seed=2),
    ], loss="mse", optimizer=rl.optimizers.Adam(1e-2, clipnorm=1.0))
    history = model.fit(x, y, epochs=10, batch_size=32, seed=0)
    model.predict(x); model.evaluate(x, y); model.save("model.npz")
```

The gradient of one minibatch, from the top down (see `Sequential.loss_and_gradients`):

```text
    h_0 = x;  h_k, tape_k = bptt.forward(rnn_k, h_{k-1});  p = dense(h_K)
    L, dL/dp = loss(p, y, mask)
    dL/dh_K, dL/d(dense weights) = dense.backward(dL/dp)
    dL/dh_{k-1}, dL/d(rnn_k weights) = bptt.backward(tape_k, dL/dh_k)    for k = K .. 1
```
"""

import copy

import numpy as np

from . import bptt, losses, optimizers, validation
from .cells.registry import cell_class  # noqa: F401  (rnnlab.models.cell_class, as before)
from .contract import deserialize, register, serialize
from .layers import RNN, Bidirectional, Dense

#: Losses whose targets are integer class ids (the others take float targets shaped like the outputs).
CLASSIFICATION_LOSSES = ("cross_entropy", "softmax_cross_entropy")


@register
class Sequential:
    """One or more recurrent layers followed by a ``Dense`` readout.

    Args:
        layers: ``[RNN or Bidirectional, ..., Dense]``.  Every recurrent layer but
            the last must have ``return_sequences=True``; the last one decides
            whether the model predicts one output per sequence, (B, units), or
            one per step, (B, T, units).  All layers must share one dtype.
        loss: ``"mse"``, ``"cross_entropy"`` (softmax over the Dense outputs,
            integer class targets) or a callable ``loss(p, y, mask) -> (L, dL/dp)``.
        optimizer: a name (``"adam"``, ``"sgd"``, ...) or an
            `rnnlab.optimizers.Optimizer`.
        name: used in ``repr`` and ``summary``.

    Inputs x are (B, T, F).  A ``mask`` passed to the training and evaluation
    methods, (B, T) or (B,) like the targets' positions, is a *loss* mask: it
    drops positions from the loss (padding or undefined targets); the
    recurrent layers still read every step.

    Attributes:
        layers: the layers, in order.
        history: the `rnnlab.train.History` of the latest ``fit``.
    """

    def __init__(self, layers, loss="mse", optimizer="adam", name=None):
        self.layers = _check_layers(layers)
        self.name = name or "sequential"
        self.history = None
        self.compile(optimizer, loss)

    def compile(self, optimizer="adam", loss="mse"):
        """Choose the optimizer and loss (the Keras habit); a new optimizer starts with empty state."""
        loss_fn, optimizer = losses.get(loss), optimizers.get(optimizer)  # both checked before either is set
        self.loss, self.loss_fn, self.optimizer = loss, loss_fn, optimizer
        return self

    # -- structure -------------------------------------------------------------

    @property
    def recurrent_layers(self):
        return self.layers[:-1]

    @property
    def readout(self):
        return self.layers[-1]

    @property
    def dtype(self):
        return self.readout.dtype

    @property
    def return_sequences(self):
        """True when the model predicts at every step: outputs (B, T, units)."""
        return self.recurrent_layers[-1].return_sequences

    @property
    def is_classifier(self):
        return isinstance(self.loss, str) and self.loss in CLASSIFICATION_LOSSES

    @property
    def built(self):
        return all(layer.built for layer in self.layers)

    @property
    def input_size(self):
        return self.layers[0].input_size

    def ensure_built(self, input_shape):
        """Build every layer for inputs with ``input_shape[-1]`` features.

        Each layer learns its input size from the layer below, so the simplest
        way to build them all is one forward pass on a single zero step.
        """
        if not self.built:
            self.predict(np.zeros((1, 1, int(input_shape[-1])), dtype=self.dtype))

    def count_params(self):
        """The number of weights, all layers together (layers that are not built yet count 0)."""
        return int(sum(w.size for layer in self.layers if layer.built for w in layer.weights))

    # -- weights ---------------------------------------------------------------

    def get_weights(self):
        """Copies of every layer's weights, concatenated in layer order."""
        return [w for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights):
        """Replace all weights (a list like ``get_weights()``); a failed call changes nothing."""
        if not self.built:
            raise ValueError("this model is not built yet; call it once (or ensure_built) before set_weights")
        counts = [len(layer.get_weights()) for layer in self.layers]
        if not isinstance(weights, (list, tuple)) or len(weights) != sum(counts):
            got = len(weights) if isinstance(weights, (list, tuple)) else type(weights).__name__
            raise ValueError(f"expected a list of {sum(counts)} weight arrays (per layer: {counts}), got {got}")
        old = self.get_weights()
        start = 0
        try:
            for layer, count in zip(self.layers, counts):
                layer.set_weights(list(weights[start : start + count]))
                start += count
        except (ValueError, TypeError):
            self._restore(old, counts)
            raise

    def _restore(self, weights, counts):
        start = 0
        for layer, count in zip(self.layers, counts):
            layer.set_weights(weights[start : start + count])
            start += count

    # -- running ---------------------------------------------------------------

    def __call__(self, x):
        return self.predict(x)

    def predict(self, x):
        """The readout's outputs for x (B, T, F): (B, units), or (B, T, units) with return_sequences.

        For a classifier these are the logits; ``rnnlab.losses.softmax`` turns them into probabilities.
        """
        h = x
        for layer in self.recurrent_layers:
            h = layer(h, training=False)
        return self.readout(h)

    def forward(self, x, training=False):
        """Like `predict`, but keep what the backward pass needs: ``(outputs, tapes, dense_cache)``.

        With ``training=True`` the cells' dropout acts (each tape keeps its masks).
        """
        tapes = []
        h = x
        for layer in self.recurrent_layers:
            h, tape = bptt.forward(layer, h, training=training)
            tapes.append(tape)
        outputs, dense_cache = self.readout.forward(h)
        return outputs, tapes, dense_cache

    def backward(self, tapes, dense_cache, d_outputs):
        """dL/d(outputs) -> the weight gradients, a list aligned with ``get_weights()``."""
        d_h, dense_grads = self.readout.backward(dense_cache, d_outputs)
        layer_grads = [dense_grads]
        for tape in reversed(tapes):
            grads = bptt.backward(tape, d_h)
            layer_grads.insert(0, grads.weights)
            d_h = grads.inputs  # the gradient on the output sequence of the layer below
        return [g for grads in layer_grads for g in grads]

    def loss_and_gradients(self, x, y, mask=None, training=False):
        """The minibatch loss and dL/d(weights), a list aligned with ``get_weights()``; no weights change.

        The loss includes the layers' regularization penalties (`losses`) and
        the gradients theirs, as in Keras.  ``training=True`` turns dropout on.
        """
        x, y, mask = self.check_data(x, y, mask)
        outputs, tapes, dense_cache = self.forward(x, training)
        loss, d_outputs = self.loss_fn(outputs, y, mask)
        grads = self.backward(tapes, dense_cache, d_outputs)
        penalty_grads = [g for layer in self.layers for g in layer.regularization_gradients()]
        return loss + sum(self.losses), [g + p for g, p in zip(grads, penalty_grads)]

    @property
    def losses(self):
        """Every layer's regularization penalty, a list of floats (empty without regularizers)."""
        return [penalty for layer in self.layers for penalty in layer.losses]

    def constrained(self, weights):
        """``weights`` (aligned with `get_weights`) with every layer's constraints applied."""
        result, start = [], 0
        for layer in self.layers:
            count = len(layer.weights)
            result += layer.constrained(weights[start : start + count])
            start += count
        return result

    def train_step(self, x, y, mask=None):
        """One optimizer update on one minibatch.

        Returns ``{"loss", "grad_norm", "clipped"}``: the loss before the update,
        the global gradient norm (before clipping) and whether it was clipped.
        The update is all or nothing: if anything fails (bad shapes, NaN), the
        weights and the optimizer's state are left as they were.
        """
        loss, grads = self.loss_and_gradients(x, y, mask, training=True)
        saved = copy.deepcopy(vars(self.optimizer))  # its moments and step count, in case the update is refused
        # the constraints act after the optimizer step, as in Keras
        new_weights = self.constrained(self.optimizer.apply(self.get_weights(), grads))
        try:
            self.set_weights(new_weights)  # refuses NaN or inf weights, changing nothing
        except (ValueError, TypeError):
            vars(self.optimizer).update(saved)
            raise
        return {"loss": loss, "grad_norm": self.optimizer.last_grad_norm, "clipped": self.optimizer.last_clipped}

    def evaluate(self, x, y, mask=None):
        """``{"loss": L}``, plus ``"accuracy"`` for a classifier, on (x, y) without training."""
        x, y, mask = self.check_data(x, y, mask)
        outputs = self.predict(x)
        result = {"loss": self.loss_fn(outputs, y, mask)[0] + sum(self.losses)}  # penalties included, as in Keras
        if self.is_classifier:
            result["accuracy"] = losses.accuracy(outputs, y, mask)
        return result

    def check_data(self, x, y, mask=None):
        """Check x (B, T, F), y and the loss mask against this model and its loss, before any work.

        Expected targets: for ``"mse"`` floats shaped like the outputs, (B, units) or
        (B, T, units); for ``"cross_entropy"`` integer class ids, (B,) or (B, T).
        Returns ``(x, y, mask)`` as arrays.
        """
        x = validation.float_array(x, "x", self.dtype)
        if x.ndim != 3:
            raise ValueError(f"expected x of shape (batch, time, features), got an array of shape {x.shape}")
        if self.built and x.shape[-1] != self.input_size:
            raise ValueError(f"expected x with {self.input_size} features (batch, time, {self.input_size}), "
                             f"got {x.shape}")
        batch, time = x.shape[:2]
        if batch == 0:
            raise ValueError(f"x has no samples (shape {x.shape}); expected at least one")
        y = validation.rectangular(y, "y", "an array of targets")
        positions = (batch, time) if self.return_sequences else (batch,)
        layout = "(batch, time" if self.return_sequences else "(batch"
        units = self.readout.units
        if self.is_classifier:
            expected, what = positions, f"integer class ids of shape {layout})"
            if y.dtype.kind not in "iu":
                raise ValueError(f"the {self.loss!r} loss needs {what} = {expected}, got dtype {y.dtype}")
        elif isinstance(self.loss, str):
            expected, what = positions + (units,), f"float targets of shape {layout}, {units})"
        else:  # a custom loss checks its own targets
            expected, what = None, None
        if expected is not None and y.shape != expected:
            raise ValueError(f"the {self.loss!r} loss needs {what} = {expected} for x of shape {x.shape}, "
                             f"got y of shape {y.shape}")
        if mask is not None:
            mask = validation.rectangular(mask, "mask", f"a loss mask of shape {layout}) = {positions}")
            if mask.shape != positions:
                raise ValueError(f"expected a loss mask of shape {layout}) = {positions}, got {mask.shape}")
            mask = validation.booleans(mask, "mask")
        # The values too, so that fit never stops part-way through, having changed the weights.
        selected = np.ones(positions, bool) if mask is None else mask
        if self.is_classifier and selected.any() and (y[selected].min() < 0 or y[selected].max() >= units):
            raise ValueError(f"the {self.loss!r} loss needs class ids in [0, {units}) (the readout has "
                             f"{units} units), got ids from {y[selected].min()} to {y[selected].max()}")
        if expected is not None and not self.is_classifier:
            if y.dtype.kind not in "biuf":
                raise TypeError(f"the {self.loss!r} loss needs {what}, got dtype {y.dtype}")
            if not np.isfinite(y).all():
                raise ValueError("y contains NaN or inf; expected finite targets")
        return x, y, mask

    # -- training (the loop lives in rnnlab.train) -------------------------------

    def fit(self, x, y, epochs=None, batch_size=32, validation_data=None, callbacks=(), seed=None, shuffle=True,
            mask=None, steps=None, verbose=None):
        """Train on arrays; see `rnnlab.train.fit`.  Returns the `History`."""
        from . import train

        return train.fit(self, x, y, epochs=epochs, batch_size=batch_size, validation_data=validation_data,
                         callbacks=callbacks, seed=seed, shuffle=shuffle, mask=mask, steps=steps, verbose=verbose)

    def fit_generator(self, make_batch, steps, steps_per_epoch=None, validation_data=None, callbacks=(),
                      verbose=None):
        """Train on fresh batches ``make_batch(step)``; see `rnnlab.train.fit_generator`."""
        from . import train

        return train.fit_generator(self, make_batch, steps, steps_per_epoch=steps_per_epoch,
                                   validation_data=validation_data, callbacks=callbacks, verbose=verbose)

    # -- saving ----------------------------------------------------------------

    def save(self, path):
        """Write the architecture, loss, optimizer settings and weights to ``path`` (see `rnnlab.save`).

        The optimizer's state (moments, step count) is not saved: a loaded model starts a fresh optimizer.
        """
        from .io import save

        save(self, path)

    @classmethod
    def load(cls, path, custom_objects=None):
        """Read a model written by `save`."""
        from .io import load

        model = load(path, custom_objects)
        if not isinstance(model, cls):
            raise ValueError(f"{path} holds a {type(model).__name__}, not a {cls.__name__}")
        return model

    def get_config(self):
        if not isinstance(self.loss, str):
            raise ValueError("only a model whose loss is given by name can be saved")
        return {"layers": [serialize(layer) for layer in self.layers], "loss": self.loss,
                "optimizer": optimizer_to_config(self.optimizer), "name": self.name}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        layers = [deserialize(spec, custom_objects) for spec in config.pop("layers")]
        config["optimizer"] = optimizer_from_config(config["optimizer"])
        return cls(layers, **config)

    # -- showing ---------------------------------------------------------------

    def summary(self):
        """Print one row per layer: its type, output shape and number of parameters (Keras style)."""
        rows = [(_layer_kind(layer), self._output_shape(layer),
                 f"{_count(layer):,}" if layer.built else "? (unbuilt)") for layer in self.layers]
        header = ("Layer", "Output shape", "Params")
        widths = [max(len(row[k]) for row in rows + [header]) for k in range(3)]
        line = "  ".join("-" * w for w in widths)
        text = [f'Model "{self.name}"', line, "  ".join(h.ljust(w) for h, w in zip(header, widths)), line]
        text += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in rows]
        total = f"{self.count_params():,}" if self.built else "? (build by calling the model once)"
        text += [line, f"Total params: {total}", f"Loss: {self.loss!r}   Optimizer: {self.optimizer!r}"]
        print("\n".join(text))

    def _output_shape(self, layer):
        """The layer's output shape as text, e.g. ``(batch, time, 32)``."""
        if isinstance(layer, Dense):
            units, sequences = layer.units, self.return_sequences
        else:
            inner = layer.forward_layer if isinstance(layer, Bidirectional) else layer
            units, sequences = inner.cell.output_size, layer.return_sequences
            if isinstance(layer, Bidirectional) and layer.merge_mode == "concat":
                units *= 2
        return f"(batch, time, {units})" if sequences else f"(batch, {units})"

    def __repr__(self):
        layers = ",\n".join(f"    {layer!r}" for layer in self.layers)
        return f"Sequential([\n{layers},\n], loss={self.loss!r}, optimizer={self.optimizer!r})"


def _check_layers(layers):
    if not isinstance(layers, (list, tuple)) or len(layers) < 2:
        raise ValueError("Sequential needs a list of one or more RNN/Bidirectional layers followed by a Dense layer")
    layers = list(layers)
    *recurrent, readout = layers
    if not isinstance(readout, Dense):
        raise TypeError(f"the last layer must be a Dense readout, got {type(readout).__name__}")
    for k, layer in enumerate(recurrent):
        if not isinstance(layer, (RNN, Bidirectional)):
            raise TypeError(f"layer {k} must be an RNN or Bidirectional layer, got {type(layer).__name__}")
        if layer.return_state or layer.time_major or getattr(layer, "stateful", False):
            raise ValueError(f"layer {k}: Sequential needs batch-major layers without return_state or stateful")
        if isinstance(layer, Bidirectional) and layer.merge_mode is None:
            raise ValueError(f"layer {k}: Bidirectional needs a merge_mode to feed the next layer")
        if k < len(recurrent) - 1 and not layer.return_sequences:
            raise ValueError(f"layer {k} feeds another recurrent layer, so it needs return_sequences=True")
    dtypes = {layer.dtype for layer in layers}
    if len(dtypes) > 1:
        raise ValueError(f"all layers must share one dtype, got {sorted(dtypes)}; pass dtype=... to every cell "
                         "and to the Dense layer")
    return layers


def optimizer_to_config(optimizer):
    """``{"class_name": ..., "config": ...}``: the optimizer's settings, not its state."""
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


def optimizer_from_config(spec):
    """A fresh optimizer from `optimizer_to_config`'s output."""
    classes = {type_.__name__: type_ for type_ in optimizers.OPTIMIZERS.values()}
    if spec["class_name"] not in classes:
        raise ValueError(f"unknown optimizer class {spec['class_name']!r}; expected one of {sorted(classes)}")
    return classes[spec["class_name"]].from_config(spec["config"])


def _layer_kind(layer):
    """``RNN(LSTMCell)``, ``Bidirectional(GRUCell)`` or ``Dense``."""
    if isinstance(layer, Dense):
        return "Dense"
    inner = layer.forward_layer if isinstance(layer, Bidirectional) else layer
    return f"{type(layer).__name__}({type(inner.cell).__name__})"


def _count(layer):
    return sum(w.size for w in layer.weights)
