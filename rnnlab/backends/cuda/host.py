"""Host side of ``backend="cuda"``: from a layer to its cell's kernels and back.

`rnnlab.backends` reaches this module through
``rnnlab.cells.registry.BACKEND_HOSTS["cuda"]``, only when a layer asks for
``backend="cuda"``.  Importing it is cheap: ``numba.cuda`` is imported on
first real use, and every kernel is compiled by numba at its first launch.

The backend interface (as every backend host):

* `unsupported` -- why a cell cannot run here: numba-cuda missing, no GPU
  (and no simulator), a cell whose room has no CUDA kernels, or a
  configuration its kernels do not implement.  ``backend="auto"`` never
  picks this backend.
* `scan` -- forward over a prepared `SequenceRun`;
  the `CudaRecord` keeps the tape on the device for `backward`
  and copies states and gates to the host on request.
* `backward` -- full or truncated BPTT, with masks, ``state_grads`` and
  optional per-step weight contributions (computed on the host from the
  per-step pre-activation gradients).

Dropout: the host multiplies x by the input mask before the projection; the
recurrent mask (B, U) goes to the kernels, whose products with R take
``h * M`` (see `rnnlab.backends.cuda.schedules`), and dR is the product of
the masked states.

Below them sits a device-level API that keeps arrays on the GPU (used by the
benchmark): `device_weights`, `forward_device`,
`backward_device`.

This module knows no cell.  Everything that depends on one comes from the
adapter that the cell's room gives (``rnnlab/cells/<room>/cuda.py``,
``adapter_for(cell)``; see `rnnlab.backends.cuda.adapter`).

How work is split (see ``docs/gpu.md``): the input projection of every
timestep is one GEMM; the recurrence runs in a persistent kernel (one launch)
for ``units <= CONFIG["persistent_max_units"]``, else in tiled kernels (one
launch per step); weight gradients are GEMMs over all timesteps afterwards.
The device, its memory and its GEMMs are `rnnlab.backends.cuda.device`;
the launch geometry is `rnnlab.backends.cuda.launch`.
"""

import numpy as np

from ...cells import registry
from ...types import Gradients, input_dropout, truncation_windows
from .device import CONFIG, availability_problem, get_device
from .launch import LaunchGeometry

# -- cells ---------------------------------------------------------------------------------


def adapter_for(cell):
    """The CUDA adapter from ``cell``'s room, or None when the room has no CUDA kernels."""
    declaration = registry.declaration_for(cell)
    if declaration is None or "cuda" not in declaration.backends:
        return None
    return registry.room_module(cell, "cuda").adapter_for(cell)


def _no_kernel(cell):
    return f"backend 'cuda' has no kernel for {type(cell).__name__}"


def unsupported(cell):
    """Why ``cell`` has no CUDA kernel here, or None."""
    problem = availability_problem()
    if problem is not None:
        return problem
    adapter = adapter_for(cell)
    if adapter is None:
        return _no_kernel(cell)
    return adapter.unsupported(cell)


# -- weights -------------------------------------------------------------------------------


class DeviceWeights:
    """A cell's weights on the device, in the kernels' layout (see `rnnlab.backends.cuda.adapter`).

    Attributes: ``adapter``; K (F, GU), R (U, GU) and RT = R^T (GU, U),
    contiguous; b_in and b_rec (GU,); ``features`` F, ``units`` U, ``dtype``.
    """

    def __init__(self, adapter, K, R, RT, b_in, b_rec):
        self.adapter = adapter
        self.K, self.R, self.RT, self.b_in, self.b_rec = K, R, RT, b_in, b_rec
        self.features, GU = K.shape
        self.units = GU // adapter.G
        self.dtype = np.dtype(K.dtype)


def device_weights(cell, dev=None):
    """Copy ``cell``'s weights to the device (a `DeviceWeights`)."""
    dev = dev or get_device()
    adapter = adapter_for(cell)
    if adapter is None:
        raise ValueError(_no_kernel(cell))
    K, R, b_in, b_rec = adapter.host_weights(cell)
    return DeviceWeights(adapter, dev.to_device(K), dev.to_device(R), dev.to_device(np.ascontiguousarray(R.T)),
                         dev.to_device(b_in), dev.to_device(b_rec))


# -- forward -------------------------------------------------------------------------------


class DeviceForward:
    """The result of `forward_device`: device arrays, and the inputs and geometry they came from."""

    def __init__(self, **arrays):
        self.__dict__.update(arrays)


def forward_device(W, x, s0, mask=None, zero_output=False, record=False, dev=None, recurrent_mask=None):
    """Run the recurrence on device arrays.

    W: `DeviceWeights`; x (T, B, F) in processing order; s0 (L, B, U);
    mask (T, B) uint8 or None; recurrent_mask (B, U) the recurrent dropout mask
    (the products with R take h * recurrent_mask) or None.  Returns a `DeviceForward` with ``out``
    (T, B, U), ``final`` (L, B, U) and, with ``record``, the tape: ``seq``
    (L, T, B, U), ``gates`` (T, B, GU), ``extra`` (T, B, U).
    """
    dev = dev or get_device()
    T, B, F = x.shape
    adapter, U, dtype = W.adapter, W.units, W.dtype
    G, L, GU = adapter.G, adapter.L, adapter.G * U
    geometry = LaunchGeometry(adapter, B, U, dtype)
    forward_kernel, _ = adapter.kernels(dtype.name, geometry)
    xp = dev.empty((T, B, GU), dtype)  # (T, B, GU): x K + b_in for every step, one GEMM
    dev.gemm(x.reshape(T * B, F), W.K, xp.reshape(T * B, GU), bias=W.b_in)
    out = dev.empty((T, B, U), dtype)
    seq = dev.empty((L, T, B, U) if record else (L, 1, 1, 1), dtype)
    gates = dev.empty((T, B, GU) if record else (1, 1, G), dtype)
    extra = dev.empty((T, B, U) if record else (1, 1, 1), dtype)
    has_mask = mask is not None
    mask_d = mask if has_mask else dev.empty((1, 1), np.uint8)
    has_rmask = recurrent_mask is not None
    rmask_d = recurrent_mask if has_rmask else dev.empty((1, 1), dtype)
    if geometry.path == "persistent":
        final = dev.empty((L, B, U), dtype)
        dev.launch(forward_kernel, (geometry.blocks,), (geometry.threads_forward,), geometry.shared_forward,
                   xp, W.R, W.b_rec, rmask_d, int(has_rmask), s0, mask_d, int(has_mask), int(zero_output),
                   int(record), geometry.rows,
                   out, seq, final, gates, extra)
    else:
        buffers = [dev.empty((L, B, U), dtype), dev.empty((L, B, U), dtype)]  # states in turn
        for t in range(T):
            s_in = s0 if t == 0 else buffers[(t - 1) % 2]
            dev.launch(forward_kernel, geometry.tile_grid, geometry.tile_block, 0,
                       t, xp, W.R, W.b_rec, rmask_d, int(has_rmask), s_in, buffers[t % 2], mask_d, int(has_mask),
                       int(zero_output),
                       int(record), out, seq, gates, extra)
        final = buffers[(T - 1) % 2]
    return DeviceForward(W=W, x=x, s0=s0, mask=mask, rmask=recurrent_mask, zero_output=zero_output, geometry=geometry,
                         xp=xp, out=out,
                         final=final, seq=seq if record else None, gates=gates if record else None,
                         extra=extra if record else None)


# -- backward ------------------------------------------------------------------------------


class DeviceGradients:
    """The result of `backward_device` (device arrays).

    dK (F, GU); dR as the adapter forms it (U, GU), or in parts (the
    reset_before GRU: dR_zr (U, 2U) and dR_h (U, U)); db_in (GU,) and, when
    the adapter has ``separate_dah``, db_rec (GU,), else None; dx (T, B, F),
    d_init (L, B, U), state_grads (L, T, B, U), and the per-step
    pre-activation gradients dAX, dAH (T, B, GU) (dAH is dAX unless ``separate_dah``).
    """

    def __init__(self, **arrays):
        self.__dict__.update(arrays)


def backward_device(fw, d_out, d_final, truncate=None, carries_output=True, dev=None):
    """BPTT on the device for a recorded `DeviceForward`.

    d_out (T, B, U): dL/d(outputs) in processing order; d_final (L, B, U):
    dL/d(final states).  ``truncate=k`` lets each output's gradient reach k
    steps back (the windows of `rnnlab.types.truncation_windows`).
    ``carries_output``: masked steps repeat the previous output (False with
    ``zero_output_for_mask``).
    """
    from .primitives import ADD, ATOMIC_ADD, STORE

    dev = dev or get_device()
    W, geometry = fw.W, fw.geometry
    adapter = W.adapter
    if fw.seq is None:
        raise ValueError("backward_device needs a forward run with record=True")
    T, B, F = fw.x.shape
    U, dtype, L = W.units, W.dtype, adapter.L
    GU = adapter.G * U
    full = truncate is None or truncate >= T
    truncate = T if full else int(truncate)
    alloc = dev.empty if full else dev.zeros  # truncated sweeps add into their outputs
    dAX = alloc((T, B, GU), dtype)
    dAH = alloc((T, B, GU), dtype) if adapter.separate_dah else dAX
    d_init = alloc((L, B, U), dtype)
    state_grads = alloc((L, T, B, U), dtype)
    has_mask = fw.mask is not None
    mask_d = fw.mask if has_mask else dev.empty((1, 1), np.uint8)
    has_rmask = fw.rmask is not None
    rmask_d = fw.rmask if has_rmask else dev.empty((1, 1), dtype)
    _, backward_kernel = adapter.kernels(dtype.name, geometry)
    if geometry.path == "persistent":
        mode = STORE if full else ATOMIC_ADD
        # the truncated sweeps share out over gridDim.y (the kernel finds its windows itself)
        sweeps = 1 if full else max(1, min(T, CONFIG["sweep_blocks"] // geometry.blocks or 1))
        dev.launch(backward_kernel, (geometry.blocks, sweeps), (geometry.threads_backward,),
                   geometry.shared_backward, W.RT, rmask_d, int(has_rmask), fw.s0, fw.seq, fw.gates, fw.extra, mask_d,
                   int(has_mask),
                   int(carries_output), d_out, d_final, truncate, mode, geometry.rows, dAX, dAH, d_init, state_grads)
    else:
        mode = STORE if full else ADD
        da = [dev.empty((B, GU), dtype), dev.empty((B, GU), dtype)]  # dah of step t+1 and of step t, in turn
        direct, dcs, carry = dev.empty((B, U), dtype), dev.empty((B, U), dtype), dev.empty((B, U), dtype)
        for last, first in reversed(truncation_windows(T, truncate)):  # the last output's sweep first, as before
            stop = -2 if first == 0 else first - 1  # t = -1 adds the sweep's carried gradient to d_init
            for t in range(last, stop, -1):
                dev.launch(backward_kernel, geometry.tile_grid, geometry.tile_block, 0,
                           t, last, first, int(full), W.RT, rmask_d, int(has_rmask), fw.s0, fw.seq, fw.gates,
                           fw.extra, mask_d,
                           int(has_mask), int(carries_output), d_out, d_final, mode, da[(t + 1) % 2], da[t % 2],
                           direct, dcs, carry, dAX, dAH, d_init, state_grads)
    # weight and input gradients: GEMMs over all timesteps
    x2 = fw.x.reshape(T * B, F)
    dAX2 = dAX.reshape(T * B, GU)
    dx = dev.empty((T, B, F), dtype)
    dev.gemm(dAX2, W.K, dx.reshape(T * B, F), trans_b=True)  # (TB, GU) @ (GU, F)
    dK = dev.empty((F, GU), dtype)
    dev.gemm(x2, dAX2, dK, trans_a=True)  # (F, TB) @ (TB, GU)
    db_in = dev.empty((GU,), dtype)
    dev.colsum(dAX2, db_in)
    db_rec = None
    if adapter.separate_dah:
        db_rec = dev.empty((GU,), dtype)
        dev.colsum(dAH.reshape(T * B, GU), db_rec)
    dR = adapter.recurrent_weight_gradient(dev, fw, dAX, dAH)
    return DeviceGradients(dK=dK, dR=dR, db_in=db_in, db_rec=db_rec, dx=dx, d_init=d_init,
                           state_grads=state_grads, dAX=dAX, dAH=dAH)


# -- the backend interface -----------------------------------------------------------------


class CudaRecord:
    """The tape of one `scan`: device arrays for `backward`, host copies on request.

    Follows the `rnnlab.types.Record` protocol.
    """

    def __init__(self, forward):
        self.forward = forward
        self._states = None
        self._gates = None

    def stacked_states(self):
        """Flat list of (T, B, U): the states after every step (host arrays)."""
        if self._states is None:
            seq = get_device().to_host(self.forward.seq)
            self._states = [seq[leaf] for leaf in range(seq.shape[0])]
        return self._states

    def gates(self, cell):
        """``{name: (T, B, U)}`` for the adapter's gate names (host arrays); {} for a cell without gates."""
        if self._gates is None:
            gates = get_device().to_host(self.forward.gates)
            U = self.forward.W.units
            names = self.forward.W.adapter.gate_names
            self._gates = {name: gates[:, :, g * U : (g + 1) * U] for g, name in enumerate(names)}
        return self._gates

    def extra(self):
        """(T, B, U): the one extra value per unit that the kernels record (host copy)."""
        return get_device().to_host(self.forward.extra)


def scan(layer, sequence_run, record=False):
    """Forward over a prepared run: ``(outputs (T, B, U), final_states[, record])``, host arrays."""
    dev = get_device()
    W = device_weights(layer.cell, dev)
    x = np.ascontiguousarray(input_dropout(sequence_run.inputs, sequence_run.dropout), dtype=W.dtype)  # (T, B, F)
    s0 = dev.to_device(np.stack([np.asarray(s, dtype=W.dtype) for s in sequence_run.initial_states]))
    mask = None if sequence_run.mask is None else dev.to_device(np.asarray(sequence_run.mask, dtype=np.uint8))
    recurrent = None if sequence_run.dropout is None else sequence_run.dropout.recurrent
    rmask = None if recurrent is None else dev.to_device(np.ascontiguousarray(recurrent, dtype=W.dtype))  # (B, U)
    fw = forward_device(W, dev.to_device(x), s0, mask, layer.zero_output_for_mask, record, dev, rmask)
    outputs = dev.to_host(fw.out)
    final = dev.to_host(fw.final)
    final_states = [final[leaf] for leaf in range(final.shape[0])]
    if record:
        return outputs, final_states, CudaRecord(fw)
    return outputs, final_states


def backward(tape, d_outputs, d_final, truncate, per_step):
    """BPTT for a tape recorded by `scan`; returns `rnnlab.types.Gradients`."""
    dev = get_device()
    fw = tape.record.forward
    W = fw.W
    d_out = dev.to_device(np.asarray(d_outputs, dtype=W.dtype))
    d_fin = dev.to_device(np.stack([np.asarray(d, dtype=W.dtype) for d in d_final]))
    g = backward_device(fw, d_out, d_fin, truncate, not tape.layer.zero_output_for_mask, dev)
    weights = W.adapter.weight_gradients(tape.cell, g, dev)
    d_init = dev.to_host(g.d_init)
    state_grads = dev.to_host(g.state_grads)
    per = _per_step(tape, g, dev) if per_step else None
    return Gradients(weights, input_dropout(dev.to_host(g.dx), tape.dropout), [d_init[k] for k in range(d_init.shape[0])],
                     [state_grads[k] for k in range(state_grads.shape[0])], per)


def _per_step(tape, g, dev):
    """Each step's contribution to each weight gradient, (T, *shape), from the per-step dA."""
    adapter = tape.record.forward.W.adapter
    dAX = dev.to_host(g.dAX)
    dAH = dev.to_host(g.dAH) if adapter.separate_dah else dAX
    x = np.asarray(input_dropout(tape.inputs, tape.dropout), dtype=dAX.dtype)  # (T, B, F)
    h_seq = tape.record.stacked_states()[0]
    h_prev = np.concatenate([np.asarray(tape.initial_states[0], dtype=dAX.dtype)[None], h_seq[:-1]])  # (T, B, U)
    if tape.dropout is not None and tape.dropout.recurrent is not None:
        h_prev = h_prev * np.asarray(tape.dropout.recurrent, dtype=dAX.dtype)  # what the products with R saw
    return adapter.per_step_weight_gradients(tape.cell, x, h_prev, dAX, dAH, tape.record)
