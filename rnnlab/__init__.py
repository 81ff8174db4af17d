"""rnnlab: read, run, watch and differentiate recurrent neural network cells."""

from . import (activations, analysis, bptt, constraints, ensemble, initializers, losses, nest, optimizers, plot,
               regularizers, tasks, train)
from .cells import *  # noqa: F403, every declared cell (rnnlab.cells.__all__)
from .contract import AbstractRNNCell
from .io import load, save
from .layers import RNN, Bidirectional, Dense
from .nest import TensorShape
from .models import Sequential
from .text_model import CharModel, sample
from .train import EarlyStopping, History
from . import experiments  # after Sequential: it builds models

__version__ = "0.1.0"


def __getattr__(name):
    """``rl.sweep`` is imported on first use: it brings in dask, which ``import rnnlab`` must not pay for."""
    if name == "sweep":
        import importlib

        return importlib.import_module(".sweep", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
