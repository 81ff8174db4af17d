"""What a cell declares to the rest of rnnlab, in one place.

Each built-in cell has a room, ``rnnlab/cells/<room>/``, and one
`declare` line in ``rnnlab/cells/__init__.py``.  The room holds:

* ``cell.py``: the readable equations, forward and backward (the specification);
* ``cpu.py``: its ``@njit`` loops and ``adapter``, which the numba host calls
  (when ``"numba"`` is among its backends);
* ``cuda.py``: its ``numba.cuda`` device functions and ``adapter_for(cell)``,
  which the CUDA host calls (when ``"cuda"`` is among its backends);
* ``jacobian.py``: ``step_jacobians(cell, x, s, weights)``, its step-Jacobian rule.

The backends, the analyses, the models and the slider experiments only ever
ask this module; they never name a cell class.  The room's modules are
imported only when first used, so ``import rnnlab`` imports no numba.
"""

import importlib

#: Backend name -> the module that runs every cell declaring that backend.
BACKEND_HOSTS = {"numba": "rnnlab.backends.numba.host", "cuda": "rnnlab.backends.cuda.host"}


class Declaration:
    """One cell class as the rest of rnnlab knows it.

    Attributes:
        cell_class: the class (matched exactly: a subclass may change the equations).
        room: the package of the cell's room, e.g. ``"rnnlab.cells.lstm"``.
        short_name: the name in menus (``"LSTM"``), or None to stay off them.
        recurrent_blocks: ``(weight name, block names)``: the square blocks of the
            recurrent weight, side by side in gate order (``("recurrent_kernel", "ifco")``);
            None for a cell without one.
        backend_modules: backend name -> module path that runs the cell there
            (besides ``"python"``, which runs every cell).
    """

    def __init__(self, cell_class, room, short_name, recurrent_blocks, backend_modules):
        self.cell_class, self.room, self.short_name = cell_class, room, short_name
        self.recurrent_blocks, self.backend_modules = recurrent_blocks, backend_modules
        self._modules = {}  # part -> the imported room module: the backends ask on every call

    @property
    def backends(self):
        """The kernel backends that run the cell, e.g. ``("numba", "cuda")``."""
        return tuple(self.backend_modules)

    def module(self, part):
        """The room's module ``part`` ("cpu", "cuda", "jacobian"), imported on first use."""
        if part not in self._modules:
            self._modules[part] = importlib.import_module(f"{self.room}.{part}")
        return self._modules[part]

    def __repr__(self):
        return f"Declaration({self.cell_class.__name__}, room={self.room!r}, backends={self.backends})"


_DECLARATIONS = {}


def declare(cell_class, room=None, short_name=None, backends=(), recurrent_blocks=None):
    """Make ``cell_class`` known to the backends, analyses and menus.  Returns the class.

    ``backends`` lists the kernel backends its room implements (``"numba"``:
    ``cpu.py``, ``"cuda"``: ``cuda.py``), run by the hosts of `BACKEND_HOSTS`.
    """
    modules = {name: BACKEND_HOSTS[name] for name in backends}
    _DECLARATIONS[cell_class] = Declaration(cell_class, room, short_name, recurrent_blocks, modules)
    return cell_class


def declare_backend(cell_class, backend, module_path):
    """Run ``cell_class`` on ``backend`` through ``module_path`` (e.g. the numba custom-cell scan)."""
    declaration = _DECLARATIONS.get(cell_class)
    if declaration is None:
        declaration = _DECLARATIONS[cell_class] = Declaration(cell_class, None, None, None, {})
    declaration.backend_modules[backend] = module_path


def declaration_for(cell):
    """The `Declaration` of ``cell``'s exact class, or None."""
    return _DECLARATIONS.get(type(cell))


def backend_module(backend, cell):
    """The module path that runs ``cell`` on ``backend``, or None."""
    declaration = declaration_for(cell)
    return None if declaration is None else declaration.backend_modules.get(backend)


def room_module(cell, part):
    """The module ``part`` of ``cell``'s room, or None when the cell has no room."""
    declaration = declaration_for(cell)
    if declaration is None or declaration.room is None:
        return None
    return declaration.module(part)


def declarations():
    """Every `Declaration`, in declaration order."""
    return list(_DECLARATIONS.values())


def short_names():
    """``{"SimpleRNN": SimpleRNNCell, ...}``: every cell with a menu name, in declaration order."""
    return {d.short_name: d.cell_class for d in _DECLARATIONS.values() if d.short_name}


def with_recurrent_blocks():
    """Short names of the cells whose recurrent weight is square blocks (for spectral-radius sliders)."""
    return {name: cls for name, cls in short_names().items() if _DECLARATIONS[cls].recurrent_blocks}


def cell_class(short_name):
    """The cell class for a short name (``"LSTM"`` -> ``LSTMCell``)."""
    names = short_names()
    if short_name not in names:
        raise ValueError(f"unknown cell {short_name!r}; expected one of {sorted(names)}")
    return names[short_name]
