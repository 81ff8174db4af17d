"""Host side of ``backend="numba"`` (work in progress: no cell is supported yet)."""


def unsupported(cell):
    return "the numba kernels are not written yet"
