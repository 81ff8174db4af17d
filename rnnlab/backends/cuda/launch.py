"""Launch geometry: which schedule runs a problem, and with how many blocks, threads and bytes.

`LaunchGeometry` turns (cell adapter, batch, units, dtype) and
`CONFIG` into the numbers the host needs to
launch the cell's kernels.  Everything cell-specific comes from the adapter
(see `rnnlab.backends.cuda.adapter`): its gate count, which schedules
it has, and what its persistent kernels need.
"""

import math

import numpy as np

from .device import CONFIG


def _round_threads(n):
    """n rounded up to whole warps, between 32 and CONFIG["max_threads"]."""
    return int(min(CONFIG["max_threads"], max(32, 32 * math.ceil(n / 32))))


class LaunchGeometry:
    """How one (adapter, batch, units, dtype) problem is launched.

    Attributes:
        path: "persistent" (one launch for all steps) or "tiled" (one launch per step).
        rows: batch rows per persistent block; blocks: persistent blocks, ceil(B / rows).
        r_in_shared: whether the persistent forward keeps R in shared memory.
        threads_forward, threads_backward: threads per persistent block.
        shared_forward, shared_backward: bytes of dynamic shared memory per persistent block.
        tiles: (batch rows, units, reduction) per tile of the tiled kernels.
        tile_grid, tile_block: grid (ceil(U / tile units), ceil(B / tile rows)) and
            block (tile units, tile rows) of the tiled kernels.
    """

    def __init__(self, adapter, batch, units, dtype):
        from .schedules import MAXR

        self.adapter = adapter
        itemsize = np.dtype(dtype).itemsize
        U, limit = units, CONFIG["shared_limit"]
        path = CONFIG["path"]
        if path == "auto":
            path = "persistent" if units <= CONFIG["persistent_max_units"] else "tiled"
        if path not in adapter.paths:
            path = adapter.paths[0]
        rows = CONFIG["rows_per_block"]
        if rows is None:
            rows = 1 if batch <= 32 else min(MAXR, math.ceil(batch / 32))
        rows = max(1, min(int(rows), MAXR, batch))
        self.r_in_shared = False
        if path == "persistent":
            need = lambda r: max(adapter.persistent_shared(r, U, itemsize, False))
            while rows > 1 and need(rows) > limit:
                rows -= 1
            if need(rows) <= limit:
                self.r_in_shared = (adapter.persistent_r_in_shared
                                    and adapter.persistent_shared(rows, U, itemsize, True)[0] <= limit)
            elif "tiled" in adapter.paths:
                path = "tiled"
            else:
                raise ValueError(f"{adapter.name} with {units} units needs more shared memory than {limit} bytes "
                                 "on backend 'cuda'")
        self.path, self.rows = path, rows
        self.blocks = math.ceil(batch / rows)
        threads_forward, threads_backward = adapter.persistent_threads(rows, U)
        self.threads_forward = _round_threads(threads_forward)
        self.threads_backward = _round_threads(threads_backward)
        self.shared_forward, self.shared_backward = adapter.persistent_shared(rows, U, itemsize, self.r_in_shared)
        self.tiles = tuple(CONFIG["tiles"])
        tile_rows, tile_units, _ = self.tiles
        self.tile_grid = (math.ceil(U / tile_units), math.ceil(batch / tile_rows))
        self.tile_block = (tile_units, tile_rows)

    def __repr__(self):
        return (f"LaunchGeometry({self.adapter.name}, path={self.path}, rows={self.rows}, blocks={self.blocks}, "
                f"R in shared={self.r_in_shared})")
