"""rnnlab: read, run, watch and differentiate recurrent neural network cells."""

from . import activations, initializers, nest
from .cells import GRUCell, LSTMCell, MinimalRNNCell, SimpleRNNCell, StackedRNNCells
from .contract import AbstractRNNCell

__version__ = "0.1.0"
