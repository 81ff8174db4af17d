"""Shared plumbing of the built-in cells: units, activations, initializers, config."""

from .. import activations, constraints, initializers, regularizers, validation
from ..contract import AbstractRNNCell


class UnitsCell(AbstractRNNCell):
    """What every built-in cell shares: ``units``, an activation, an optional bias, Keras-style initializers.

    The state is [h] with h (batch, units), unless a subclass says otherwise, and
    the output is h.  Each subclass lists the constructor arguments it adds in its
    own ``_extra_config``; the config holds those of every class up the hierarchy
    (initializers and activations among them serialized by name).
    """

    _extra_config = ()
    output_state_index = 0  # the output is the state h

    def __init__(self, units, activation, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self.units = validation.units(units)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)

    @property
    def state_size(self):
        return self.units

    @property
    def output_size(self):
        return self.units

    def get_config(self):
        config = {
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
        }
        extra = [name for cls in reversed(type(self).__mro__) for name in vars(cls).get("_extra_config", ())]
        for name in dict.fromkeys(extra):  # in class order, each once
            value = getattr(self, name)
            if isinstance(value, activations.Activation):
                value = activations.serialize(value)
            elif isinstance(value, initializers.Initializer):
                value = initializers.serialize(value)
            config[name] = value
        config.update(self._base_config())
        return config

    def __repr__(self):
        built = f"input_size={self.input_size}" if self.built else "unbuilt"
        return f"{type(self).__name__}(units={self.units}, activation={self.activation.name!r}, dtype={self.dtype!r}, {built})"


class BuiltinCell(UnitsCell):
    """A cell with a square recurrent weight R: a units cell with Keras's ``recurrent_initializer`` too."""

    _extra_config = ("recurrent_initializer",)

    def __init__(
        self,
        units,
        activation="tanh",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(units, activation, use_bias, kernel_initializer, bias_initializer, **kwargs)
        self.recurrent_initializer = initializers.get(recurrent_initializer)


def masked(array, dropout_mask):
    """``array * dropout_mask``, or ``array`` itself when there is no mask (None)."""
    return array if dropout_mask is None else array * dropout_mask


class KerasCell(BuiltinCell):
    """A built-in cell with tf.keras 2's dropout, regularizer and constraint arguments (SimpleRNN, GRU, LSTM).

    Dropout follows tf.keras 2 (see `rnnlab.types.DropoutMasks`): the
    layer draws one input mask (B, F) when ``dropout > 0`` and one recurrent
    mask (B, U) when ``recurrent_dropout > 0`` per call with ``training=True``,
    and the cell's ``forward(inputs, states, dropout=masks)`` multiplies the
    inputs by the first before the kernel product and the previous h by the
    second before the recurrent product.

    Args, besides `BuiltinCell`'s:
        dropout, recurrent_dropout: rates in [0, 1) (tf.keras 2 clips other values; rnnlab refuses them).
        kernel_regularizer, recurrent_regularizer, bias_regularizer: see `rnnlab.regularizers`.
        kernel_constraint, recurrent_constraint, bias_constraint: see `rnnlab.constraints`.
    """

    takes_dropout = True

    def __init__(self, units, dropout=0.0, recurrent_dropout=0.0, kernel_regularizer=None,
                 recurrent_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(units, **kwargs)
        self.dropout = validation.rate(dropout, "dropout")
        self.recurrent_dropout = validation.rate(recurrent_dropout, "recurrent_dropout")
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)

    def add_weight(self, name, shape, initializer="glorot_uniform", dtype=None):
        """As `Weighted.add_weight`, with the regularizer and constraint named after the weight."""
        prefix = {"kernel": "kernel", "recurrent_kernel": "recurrent", "bias": "bias"}[name]
        self.set_weight_rules(name, getattr(self, f"{prefix}_regularizer"), getattr(self, f"{prefix}_constraint"))
        return super().add_weight(name, shape, initializer, dtype)

    def call(self, inputs, states, dropout=None):
        """One step: `forward` without its cache (``dropout`` passed on only when given,
        so a subclass's ``forward(inputs, states)`` without it still works)."""
        output, new_states, _ = self.forward(inputs, states, **({} if dropout is None else {"dropout": dropout}))
        return output, new_states

    def get_config(self):
        config = super().get_config()
        config.update(dropout=self.dropout, recurrent_dropout=self.recurrent_dropout)
        for prefix in ("kernel", "recurrent", "bias"):
            config[f"{prefix}_regularizer"] = regularizers.serialize(getattr(self, f"{prefix}_regularizer"))
            config[f"{prefix}_constraint"] = constraints.serialize(getattr(self, f"{prefix}_constraint"))
        return config
