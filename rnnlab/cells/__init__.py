"""The built-in cells.  Each family has a room: ``cell.py`` is the readable
specification; kernels for the same equations sit beside it."""

from .gru.cell import GRUCell
from .lstm.cell import LSTMCell
from .minimal.cell import MinimalRNNCell
from .simple_rnn.cell import SimpleRNNCell
from .stacked import StackedRNNCells

__all__ = ["SimpleRNNCell", "GRUCell", "LSTMCell", "MinimalRNNCell", "StackedRNNCells"]

# GPU kernels (numba.cuda), imported only when backend="cuda" is first used.
from .. import backends as _backends

for _cls in (SimpleRNNCell, GRUCell, LSTMCell):
    _backends.register_kernel("cuda", _cls, "rnnlab.kernels.cuda_backend")

# CPU kernels (numba @njit), imported only when backend="numba" or "auto" first needs them.
for _cls in (SimpleRNNCell, GRUCell, LSTMCell, StackedRNNCells):
    _backends.register_kernel("numba", _cls, "rnnlab.kernels.numba_backend")
