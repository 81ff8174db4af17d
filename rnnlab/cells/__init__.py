"""The built-in cells.  Each has a room, ``cells/<room>/``: ``cell.py`` is the
readable specification, and its kernels and Jacobian sit beside it.  Each cell
has three lines here: its import, the ``declare`` line that makes it known to
the backends, analyses and menus (see `rnnlab.cells.registry`), and its
name in ``__all__``, which ``rnnlab`` exports."""

from .gru.cell import GRUCell
from .lstm.cell import LSTMCell
from .min_gru.cell import MinGRUCell
from .min_lstm.cell import MinLSTMCell
from .minimal.cell import MinimalRNNCell
from .registry import declare
from .simple_rnn.cell import SimpleRNNCell
from .stacked import StackedRNNCells

declare(SimpleRNNCell, "rnnlab.cells.simple_rnn", "SimpleRNN", ("numba", "cuda"), ("recurrent_kernel", "h"))
declare(GRUCell, "rnnlab.cells.gru", "GRU", ("numba", "cuda"), ("recurrent_kernel", "zrh"))
declare(LSTMCell, "rnnlab.cells.lstm", "LSTM", ("numba", "cuda"), ("recurrent_kernel", "ifco"))
declare(MinimalRNNCell, "rnnlab.cells.minimal", "MinimalRNN", (), ("recurrent_kernel", "h"))
declare(MinGRUCell, "rnnlab.cells.min_gru", "MinGRU", ("numba", "cuda"), recurrent_blocks=None)
declare(MinLSTMCell, "rnnlab.cells.min_lstm", "MinLSTM", ("numba", "cuda"), recurrent_blocks=None)
declare(StackedRNNCells, backends=("numba",))  # runs its cells one after another, each in its own kernels

__all__ = ["SimpleRNNCell", "GRUCell", "LSTMCell", "MinimalRNNCell", "MinGRUCell", "MinLSTMCell",
           "StackedRNNCells"]  # rnnlab exports these
