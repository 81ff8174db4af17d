"""What the CUDA host needs to know about a cell: the base class of the cell adapters.

Each cell room's ``cuda.py`` defines ``adapter_for(cell)``, which returns a
`CellAdapter`.  The host (`rnnlab.backends.cuda.host`) and the
launch geometry (`rnnlab.backends.cuda.launch`) ask the adapter
everything that depends on the cell; they never look at the cell themselves.

The defaults below fit a cell whose step is one product with a recurrent
weight, ``a = x K + b + h R`` split into ``G`` gate blocks of ``U`` columns
(SimpleRNN, LSTM, the reset_after GRU), whose ``cell.weights`` are
[kernel, recurrent kernel] plus a bias when ``cell.use_bias``, and which the
generic schedules of `rnnlab.backends.cuda.schedules` run.  A room
overrides only what differs; a cell with other weights or another step
overrides the weight methods or `CellAdapter.kernels`.  A cell with no
recurrent weight at all subclasses `ProjectionCellAdapter`.

Layout of the kernels (``U`` units, ``G`` gates, ``L`` state leaves, ``F`` inputs):
K (F, GU), R (U, GU), b_in and b_rec (GU,); the forward's input projection is
``x K + b_in`` and its recurrent part ``h R + b_rec``.  The backward gives the
pre-activation gradients dAX (T, B, GU) of the input part and dAH (T, B, GU)
of the recurrent part (the same array unless `CellAdapter.separate_dah`).
"""

import functools
import math

import numpy as np

from ... import activations
from . import schedules
from .primitives import CANDIDATE_ACTIVATIONS, GATE_ACTIVATIONS, candidate_math, gate_math, scalar_math


class CellAdapter:
    """The CUDA side of one cell configuration.  Adapters hold no weights: one instance serves every cell.

    Attributes:
        name: how messages name the cell, e.g. ``"GRUCell(reset_after=False)"``.
        G: gate blocks in the columns of K and R.
        L: state leaves (1: [h]; 2: [h, c]).
        gate_names: names of the G blocks of the recorded gates, for ``tape.gates`` (() for none).
        required_activations: ``{attribute: activation name}`` that the kernels implement.
        separate_dah: True when the recurrent part's gradient dAH differs from dAX
            (then the backward writes both, and db_rec = sum dAH).
        paths: the schedules the cell has, preferred first when CONFIG cannot have its way.
        persistent_r_in_shared: whether its persistent forward can read R from shared memory.
        recurrent: False for a cell without a recurrent weight: the schedules leave out the products with R.
    """

    name = "cell"
    G = 1
    L = 1
    gate_names = ()
    required_activations = {}
    separate_dah = False
    paths = ("persistent", "tiled")
    persistent_r_in_shared = True
    recurrent = True

    #: The recurrent activation the gates of this instance's kernels use (see `.primitives.gate_math`).
    gate = "sigmoid"

    def unsupported(self, cell):
        """Why the kernels cannot run ``cell`` (an activation they do not implement), or None."""
        for attribute, names in self.required_activations.items():
            names = (names,) if isinstance(names, str) else names
            value = getattr(cell, attribute)
            if not any(value is activations.get(name) for name in names):
                wanted = f"{attribute}={names[0]!r}" if len(names) == 1 else f"{attribute} in {names}"
                return f"backend 'cuda' implements {wanted} only, got {value.name!r}"
        return None

    # -- weights ------------------------------------------------------------------------

    def host_weights(self, cell):
        """(K (F, GU), R (U, GU), b_in (GU,), b_rec (GU,)) as host arrays in the kernels' layout.

        Default: ``cell.weights`` is [kernel, recurrent kernel] plus an optional
        bias (GU,), which goes into the input projection; b_rec is zeros.
        """
        K, R, *bias = cell.weights
        zeros = np.zeros(R.shape[1], dtype=K.dtype)
        return K, R, (bias[0] if bias else zeros), zeros

    def weight_gradients(self, cell, g, dev):
        """The host gradients aligned with ``cell.get_weights()``, from device gradients ``g``.

        g: `DeviceGradients`.  Default: [dK, dR] plus db_in with a bias.
        """
        weights = [dev.to_host(g.dK), dev.to_host(g.dR)]
        if cell.use_bias:
            weights.append(dev.to_host(g.db_in))
        return weights

    def per_step_weight_gradients(self, cell, x, h_prev, dAX, dAH, record):
        """Each step's contribution to each weight gradient, a list of (T, *shape) aligned with ``get_weights()``.

        x (T, B, F) the inputs, h_prev (T, B, U) the state h entering each step as the
        recurrent products saw it (times the recurrent dropout mask, if any),
        dAX and dAH (T, B, GU) host arrays; record: the
        `CudaRecord` (for cells that need more of the tape).
        """
        per = [np.einsum("tbf,tbg->tfg", x, dAX), np.einsum("tbu,tbg->tug", h_prev, dAH)]
        if cell.use_bias:
            per.append(dAX.sum(axis=1))
        return per

    # -- kernels ------------------------------------------------------------------------

    def device_functions(self, dtype_name):
        """(forward_unit, backward_unit): the cell's device functions for the generic schedules, in ``dtype_name``.

        Built once per adapter class, dtype and gate from `unit_functions`.
        """
        return _units(type(self), dtype_name, self.gate)

    @staticmethod
    def unit_functions(gate, gate_grad, tanh, one, zero):
        """Define ``forward_unit`` and ``backward_unit`` (see `.schedules`) with one dtype's math.

        ``gate`` (the recurrent activation), ``gate_grad`` (its derivative, from
        its output) and ``tanh`` are device functions (`.primitives.gate_math`)
        and ``one``, ``zero`` constants of the kernel's dtype (`.primitives.scalar_math`).
        """
        raise NotImplementedError("this cell gives no unit functions; override unit_functions() or kernels()")

    def kernels(self, dtype_name, geometry):
        """(forward kernel, backward kernel) for ``geometry.path``; their arguments are those of the schedules."""
        forward_unit, backward_unit = self.device_functions(dtype_name)
        return schedules.kernels(forward_unit, backward_unit, self.G, self.L, self.separate_dah, dtype_name,
                                 geometry, self.recurrent)

    def persistent_shared(self, rows, units, itemsize, r_in_shared):
        """(forward, backward) bytes of dynamic shared memory of the persistent kernels."""
        return (schedules.persistent_forward_shared(rows, units, self.G, itemsize, r_in_shared),
                schedules.persistent_backward_shared(rows, units, self.G, itemsize))

    def persistent_threads(self, rows, units):
        """(forward, backward) threads a persistent block would like, before rounding to warps."""
        wanted = max(self.G * units, rows * units)
        return wanted, wanted

    def recurrent_weight_gradient(self, dev, fw, dAX, dAH):
        """dR on the device: sum over t of h_{t-1}^T dAH_t, one GEMM (h_{-1} = s0[0]; h * M under recurrent dropout).

        fw: the `DeviceForward`; dAX, dAH (T, B, GU) device arrays.
        """
        U, GU = fw.W.units, dAH.shape[2]
        dR = dev.empty((U, GU), fw.W.dtype)
        recurrent_gemm(dev, *recurrent_inputs(dev, fw), dAH, dR, 0, GU)
        return dR

    def __repr__(self):
        return f"{type(self).__name__}({self.name})"


class ProjectionCellAdapter(CellAdapter):
    """A cell whose pre-activations are ``x K + b`` alone, with no recurrent weight (minGRU, minLSTM).

    ``cell.weights`` is [kernel] plus a bias (GU,) when ``cell.use_bias``.  The
    generic schedules run it with ``recurrent = False``: its unit functions get
    ``ah`` = 0 and their ``dah`` is never used, and R is a zero matrix that no
    kernel reads (the host's weight layout wants one).
    """

    recurrent = False
    persistent_r_in_shared = False
    required_activations = {"activation": CANDIDATE_ACTIVATIONS}  # the candidate's; the gates are sigmoids

    #: The candidate activation this instance's kernels use (see `.primitives.candidate_math`).
    candidate = "linear"

    def device_functions(self, dtype_name):
        return _candidate_units(type(self), dtype_name, self.candidate)

    @staticmethod
    def unit_functions(sigmoid, act, act_grad, one, zero):
        """Define ``forward_unit`` and ``backward_unit`` (see `.schedules`) with one dtype's math.

        As `CellAdapter.unit_functions`, with ``sigmoid`` for the gates and
        the candidate's activation ``act`` and its derivative ``act_grad`` (from
        its output, `.primitives.candidate_math`).
        """
        raise NotImplementedError("this cell gives no unit functions; override unit_functions()")

    def host_weights(self, cell):
        K, *bias = cell.weights
        zeros = np.zeros(K.shape[1], dtype=K.dtype)
        R = np.zeros((K.shape[1] // self.G, K.shape[1]), dtype=K.dtype)
        return K, R, (bias[0] if bias else zeros), zeros

    def weight_gradients(self, cell, g, dev):
        return [dev.to_host(g.dK)] + ([dev.to_host(g.db_in)] if cell.use_bias else [])

    def per_step_weight_gradients(self, cell, x, h_prev, dAX, dAH, record):
        return [np.einsum("tbf,tbg->tfg", x, dAX)] + ([dAX.sum(axis=1)] if cell.use_bias else [])

    def recurrent_weight_gradient(self, dev, fw, dAX, dAH):
        return None  # no recurrent weight


def recurrent_inputs(dev, fw):
    """(h0 (B, U), h_seq (T', B, U)) for `recurrent_gemm`: what the recurrent products of `fw` multiplied.

    Without a recurrent dropout mask: s0[0] and the recorded states; with one, M (B, U),
    a (T, B, U) array of h_{t-1} * M, split as its step 0 and the rest.
    """
    if fw.rmask is None:
        return fw.s0[0], fw.seq[0]
    from .primitives import masked_inputs_kernel

    T, B, U = fw.seq.shape[1:]
    hm = dev.empty((T, B, U), fw.W.dtype)
    dev.launch(masked_inputs_kernel(hm.dtype.name), (math.ceil(T * B * U / 128),), (128,), 0,
               fw.s0[0], fw.seq[0], fw.rmask, hm)
    return hm[0], hm[1:]


def recurrent_gemm(dev, h0, h_seq, dA, out, col0, col1):
    """out = sum_t h_{t-1}^T dA_t[:, col0:col1] on the device, with h_{-1} = h0.

    h0 (B, U), h_seq (T, B, U) the states after each step, dA (T, B, GU), out (U, col1 - col0).
    """
    T, B, GU = dA.shape
    U = h0.shape[1]
    cols = slice(col0, col1)
    whole = col0 == 0 and col1 == GU
    first = dA[0] if whole else dA[0][:, cols]
    dev.gemm(h0, first, out, trans_a=True)
    if T > 1:
        rest = dA[1:].reshape((T - 1) * B, GU)
        dev.gemm(h_seq[: T - 1].reshape((T - 1) * B, U), rest if whole else rest[:, cols], out,
                 trans_a=True, accumulate=True)


@functools.lru_cache(maxsize=None)
def _units(adapter_class, dtype_name, gate_name):
    """The unit functions of ``adapter_class`` in ``dtype_name`` with ``gate_name`` gates, made once per process."""
    _, tanh, one, zero = scalar_math(dtype_name)
    return adapter_class.unit_functions(*gate_math(dtype_name, gate_name), tanh, one, zero)


@functools.lru_cache(maxsize=None)
def _candidate_units(adapter_class, dtype_name, candidate):
    """The unit functions of a `ProjectionCellAdapter` class, made once per dtype and candidate activation."""
    sigmoid, _, one, zero = scalar_math(dtype_name)
    return adapter_class.unit_functions(sigmoid, *candidate_math(dtype_name, candidate), one, zero)


def _per_activation(adapter_class, cell_attribute, setting, known, fallback):
    """``adapter_for``: one ``adapter_class`` instance per activation ``cell.<cell_attribute>``, made on first use.

    The instance's ``setting`` is that activation's name, or ``fallback`` for one
    the kernels lack (which ``unsupported`` then refuses before anything runs).
    """
    instances = {}

    def adapter_for(cell):
        name = getattr(cell, cell_attribute).name
        if name not in instances:
            instances[name] = adapter_class()
            setattr(instances[name], setting, name if name in known else fallback)
        return instances[name]

    return adapter_for


def per_candidate(adapter_class):
    """``adapter_for`` of a `ProjectionCellAdapter`: one instance per candidate activation."""
    return _per_activation(adapter_class, "activation", "candidate", CANDIDATE_ACTIVATIONS, "linear")


def per_gate(adapter_class):
    """``adapter_for`` of a gated cell: one adapter instance per recurrent activation."""
    return _per_activation(adapter_class, "recurrent_activation", "gate", GATE_ACTIVATIONS, "sigmoid")
