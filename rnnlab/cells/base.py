"""Shared plumbing of the built-in cells: units, activations, initializers, config."""

from .. import activations, initializers, validation
from ..contract import AbstractRNNCell


class BuiltinCell(AbstractRNNCell):
    """A cell with ``units`` and Keras-style activation and initializer arguments.

    Subclasses list their extra constructor arguments in ``_extra_config``.
    """

    _extra_config = ()
    output_state_index = 0

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
        super().__init__(**kwargs)
        self.units = validation.units(units)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
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
            "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
        }
        for name in self._extra_config:
            value = getattr(self, name)
            config[name] = activations.serialize(value) if isinstance(value, activations.Activation) else value
        config.update(self._base_config())
        return config

    def __repr__(self):
        built = f"input_size={self.input_size}" if self.built else "unbuilt"
        return f"{type(self).__name__}(units={self.units}, activation={self.activation.name!r}, dtype={self.dtype!r}, {built})"
