"""rnnlab: read, run, watch and differentiate recurrent neural network cells."""

from . import activations, bptt, initializers, losses, nest, optimizers, tasks
from .cells import GRUCell, LSTMCell, MinimalRNNCell, SimpleRNNCell, StackedRNNCells
from .contract import AbstractRNNCell
from .io import load, save
from .layers import RNN, Bidirectional, Dense

__version__ = "0.1.0"
from . import train
from .models import Sequential
from .train import EarlyStopping, History
from . import experiments
from .text_model import CharModel, sample
