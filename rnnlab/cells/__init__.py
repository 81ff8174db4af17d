"""The built-in cells.  Each family has a room: ``cell.py`` is the readable
specification; kernels for the same equations sit beside it."""

from .gru.cell import GRUCell
from .lstm.cell import LSTMCell
from .minimal.cell import MinimalRNNCell
from .simple_rnn.cell import SimpleRNNCell
from .stacked import StackedRNNCells

__all__ = ["SimpleRNNCell", "GRUCell", "LSTMCell", "MinimalRNNCell", "StackedRNNCells"]
