"""GRUCell on the GPU: the equations of ``cell.py`` as ``numba.cuda`` device code.

Gate order z, r, h (Keras).  The activation is tanh; the recurrent activation
is sigmoid or a hard sigmoid (``GATE_ACTIVATIONS``; written ``sigmoid`` below).  `adapter_for` gives the host
(`rnnlab.backends.cuda.host`) one of two adapters, by ``reset_after``.

``reset_after=True`` (the default) fits the generic schedules of
`rnnlab.backends.cuda.schedules`: one product ``h R`` per step.  With
``ax = x K + b_in`` and ``ah = h R + b_rec``:

```text
    z  = sigmoid(ax_z + ah_z)      r = sigmoid(ax_r + ah_r)
    hh = tanh(ax_h + r * ah_h)     h' = z * h + (1 - z) * hh       extra = ah_h
```

Backward, with gh = dL/dh':

```text
    dz = gh (h - hh)    dph = gh (1 - z)(1 - hh^2)    dr = dph * ah_h
    dax = [dz z(1-z), dr r(1-r), dph]      dah = [dz z(1-z), dr r(1-r), dph * r]
    dh = gh * z + dah R^T
```

``reset_after=False`` (called reset_before here) needs the reset gate *before*
the product with R_h, so a step has two dependent products and its own
persistent kernels here:

```text
    z = sigmoid(ax_z + (h R_z))    r = sigmoid(ax_r + (h R_r))
    hh = tanh(ax_h + (r * h) R_h)  h' = z * h + (1 - z) * hh       extra = r * h

    dph = gh (1 - z)(1 - hh^2)     d(rh) = dph R_h^T
    dr = d(rh) * h                 dh = gh * z + d(rh) * r + [dz', dr'] R_zr^T
```

With a recurrent dropout mask M both products take ``h * M`` (``extra = r * h * M``),
and what comes back through them to h is multiplied by M; the blend keeps h.
"""

import functools

import numpy as np
from numba import cuda

from ...backends.cuda.adapter import CellAdapter, per_gate, recurrent_gemm, recurrent_inputs
from ...backends.cuda.device import CONFIG
from ...backends.cuda.masking import masked_backward, masked_forward, masked_passthrough, step_is_real
from ...backends.cuda.primitives import GATE_ACTIVATIONS, gate_math, numba_dtype, scalar_math, store
from ...backends.cuda.schedules import MAXR


# -- reset_before (reset_after=False): two dependent products per step ---------------------


def reset_before_forward_shared(rows, U, itemsize):
    """Bytes of dynamic shared memory `reset_before_forward` needs: h, r*h and (rows, 3U) products."""
    return (2 * rows * U + rows * 3 * U) * itemsize


def reset_before_backward_shared(rows, U, itemsize):
    """Bytes of dynamic shared memory `reset_before_backward` needs."""
    return (4 * rows * U + rows * 3 * U) * itemsize


@functools.lru_cache(maxsize=None)
def reset_before_forward(dtype_name, gate_name):
    """Persistent forward of the reset_before GRU; arguments as `rnnlab.backends.cuda.schedules.persistent_forward`."""
    _, tanh, one, zero = scalar_math(dtype_name)
    sigmoid, _ = gate_math(dtype_name, gate_name)  # the recurrent activation
    nb = numba_dtype(dtype_name)

    @cuda.jit
    def kernel(xp, R, b_rec, rmask, has_rmask, s0, mask, has_mask, zero_output, record, rows, out, seq, final, gates,
               extra):
        T = xp.shape[0]
        B = xp.shape[1]
        GU = xp.shape[2]
        U = GU // 3
        tid = cuda.threadIdx.x
        nt = cuda.blockDim.x
        b0 = cuda.blockIdx.x * rows
        nr = min(rows, B - b0)
        n = rows * U
        sh = cuda.shared.array(0, nb)
        sh_h = sh[0:n]
        sh_rh = sh[n : 2 * n]  # r * h (r * h * rmask under recurrent dropout)
        sh_m = sh[2 * n : 2 * n + rows * GU]  # z, r (after stage 1) and (r h) R_h (stage 2)
        acc = cuda.local.array(MAXR, nb)
        for idx in range(tid, nr * U, nt):
            r = idx // U
            sh_h[idx] = s0[0, b0 + r, idx - r * U]
        cuda.syncthreads()
        for t in range(T):
            # stage 1: h R_zr
            for j in range(tid, 2 * U, nt):
                for r in range(nr):
                    acc[r] = zero
                for k in range(U):
                    w = R[k, j]
                    for r in range(nr):
                        hv = sh_h[r * U + k]
                        if has_rmask:
                            hv *= rmask[b0 + r, k]
                        acc[r] += hv * w
                for r in range(nr):
                    sh_m[r * GU + j] = acc[r]
            cuda.syncthreads()
            for idx in range(tid, nr * U, nt):
                r = idx // U
                u = idx - r * U
                b = b0 + r
                zg = sigmoid(xp[t, b, u] + sh_m[r * GU + u])
                rg = sigmoid(xp[t, b, U + u] + sh_m[r * GU + U + u])
                sh_m[r * GU + u] = zg
                sh_m[r * GU + U + u] = rg
                sh_rh[idx] = rg * sh_h[idx]
                if has_rmask:
                    sh_rh[idx] *= rmask[b, u]
            cuda.syncthreads()
            # stage 2: (r h) R_h
            for j in range(tid, U, nt):
                for r in range(nr):
                    acc[r] = zero
                for k in range(U):
                    w = R[k, 2 * U + j]
                    for r in range(nr):
                        acc[r] += sh_rh[r * U + k] * w
                for r in range(nr):
                    sh_m[r * GU + 2 * U + j] = acc[r]
            cuda.syncthreads()
            for idx in range(tid, nr * U, nt):
                r = idx // U
                u = idx - r * U
                b = b0 + r
                zg = sh_m[r * GU + u]
                hh = tanh(xp[t, b, 2 * U + u] + sh_m[r * GU + 2 * U + u])
                h_prev = sh_h[idx]
                h_new = zg * h_prev + (one - zg) * hh
                if record:
                    gates[t, b, u] = zg
                    gates[t, b, U + u] = sh_m[r * GU + U + u]
                    gates[t, b, 2 * U + u] = hh
                    extra[t, b, u] = sh_rh[idx]
                h_new, _ = masked_forward(mask, has_mask, zero_output, out, t, b, u, h_prev, zero, h_new, zero, zero)
                sh_h[idx] = h_new
                if record:
                    seq[0, t, b, u] = h_new
            cuda.syncthreads()
        for idx in range(tid, nr * U, nt):
            r = idx // U
            final[0, b0 + r, idx - r * U] = sh_h[idx]

    return kernel


@functools.lru_cache(maxsize=None)
def reset_before_backward(dtype_name, gate_name):
    """Persistent backward of the reset_before GRU; arguments as `rnnlab.backends.cuda.schedules.persistent_backward`.

    Writes dAX (T, B, 3U) = [dz', dr', dph] (dK, the bias and dx follow from it;
    dR_zr = h^T dAX[:, :2U] and dR_h = (r h)^T dAX[:, 2U:]).  dAH is unused.
    """
    _sigmoid, _tanh, one, zero = scalar_math(dtype_name)
    _, gate_grad = gate_math(dtype_name, gate_name)
    nb = numba_dtype(dtype_name)

    @cuda.jit
    def kernel(RT, rmask, has_rmask, s0, seq, gates, extra, mask, has_mask, carries_output, d_out, d_final,
               truncate, mode, rows, dAX, dAH, d_init, state_grads):
        T = seq.shape[1]
        B = seq.shape[2]
        U = seq.shape[3]
        GU = 3 * U
        tid = cuda.threadIdx.x
        nt = cuda.blockDim.x
        b0 = cuda.blockIdx.x * rows
        nr = min(rows, B - b0)
        n = rows * U
        sh = cuda.shared.array(0, nb)
        sh_dh = sh[0:n]
        sh_carry = sh[n : 2 * n]
        sh_direct = sh[2 * n : 3 * n]
        sh_drh = sh[3 * n : 4 * n]  # d(r h)
        sh_da = sh[4 * n : 4 * n + rows * GU]  # [dz', dr', dph]
        acc = cuda.local.array(MAXR, nb)
        full = truncate >= T
        n_sweeps = 1 if full else T
        for sweep in range(cuda.blockIdx.y, n_sweeps, cuda.gridDim.y):
            last = T - 1 if full else T - 1 - sweep
            first = 0 if full else max(0, last - truncate + 1)  # rnnlab.types.truncation_windows, on the device
            for idx in range(tid, nr * U, nt):
                r = idx // U
                sh_dh[idx] = d_final[0, b0 + r, idx - r * U] if last == T - 1 else zero
                sh_carry[idx] = zero
            cuda.syncthreads()
            for t in range(last, first - 1, -1):
                for idx in range(tid, nr * U, nt):
                    r = idx // U
                    u = idx - r * U
                    b = b0 + r
                    d_o = sh_carry[idx]
                    if full or t == last:
                        d_o += d_out[t, b, u]
                    keep = step_is_real(mask, has_mask, t, b)
                    dh = sh_dh[idx]
                    gh, _, d_state, sh_carry[idx] = masked_backward(keep, carries_output, d_o, dh, zero, zero)
                    store(state_grads, (0, t, b, u), d_state, mode)
                    h_prev = seq[0, t - 1, b, u] if t > 0 else s0[0, b, u]
                    zg = gates[t, b, u]
                    hh = gates[t, b, 2 * U + u]
                    dph = gh * (one - zg) * (one - hh * hh)
                    dpz = gh * (h_prev - hh) * gate_grad(zg)
                    store(dAX, (t, b, u), dpz, mode)
                    store(dAX, (t, b, 2 * U + u), dph, mode)
                    sh_da[r * GU + u] = dpz
                    sh_da[r * GU + 2 * U + u] = dph
                    sh_direct[idx], _ = masked_passthrough(keep, gh * zg, zero, dh, zero)
                cuda.syncthreads()
                # d(r h) = dph R_h^T
                for idx in range(tid, nr * U, nt):
                    r = idx // U
                    k = idx - r * U
                    s = zero
                    for j in range(U):
                        s += sh_da[r * GU + 2 * U + j] * RT[2 * U + j, k]
                    sh_drh[idx] = s
                cuda.syncthreads()
                for idx in range(tid, nr * U, nt):
                    r = idx // U
                    u = idx - r * U
                    b = b0 + r
                    m = rmask[b, u] if has_rmask else one  # the products saw h * m
                    h_prev = seq[0, t - 1, b, u] if t > 0 else s0[0, b, u]
                    rg = gates[t, b, U + u]
                    drh = sh_drh[idx]
                    dpr = drh * h_prev * m * gate_grad(rg)
                    store(dAX, (t, b, U + u), dpr, mode)
                    sh_da[r * GU + U + u] = dpr
                    sh_direct[idx] += drh * rg * m
                cuda.syncthreads()
                # dh_prev = direct + [dz', dr'] R_zr^T
                for w in range(tid, U, nt):
                    for r in range(nr):
                        acc[r] = zero
                    for j in range(2 * U):
                        wv = RT[j, w]
                        for r in range(nr):
                            acc[r] += sh_da[r * GU + j] * wv
                    for r in range(nr):
                        if has_rmask:
                            acc[r] *= rmask[b0 + r, w]
                        sh_dh[r * U + w] = sh_direct[r * U + w] + acc[r]
                cuda.syncthreads()
            if first == 0:  # a sweep that stops later ends at a constant state, not the initial one
                for idx in range(tid, nr * U, nt):
                    r = idx // U
                    store(d_init, (0, b0 + r, idx - r * U), sh_dh[idx], mode)
            cuda.syncthreads()

    return kernel


# -- what the host needs to know -------------------------------------------------------------


class GRUAdapter(CellAdapter):
    """What both GRU variants share: three gate blocks z, r, h and state [h]."""

    G = 3  # gate blocks z, r, h
    L = 1  # state leaves: [h]
    gate_names = ("z", "r", "hh")
    required_activations = {"activation": "tanh", "recurrent_activation": GATE_ACTIVATIONS}


class ResetAfterGRUAdapter(GRUAdapter):
    """reset_after=True: the generic schedules, with the recurrent bias row and its own gradient dAH."""

    name = "GRUCell(reset_after=True)"
    separate_dah = True  # dah_h = dph * r, while dax_h = dph

    @staticmethod
    def unit_functions(gate, gate_grad, tanh, one, zero):
        @cuda.jit(device=True)
        def forward_unit(ax, ah, h_prev, c_prev, gv):
            z = gate(ax[0] + ah[0])
            r = gate(ax[1] + ah[1])
            hh = tanh(ax[2] + r * ah[2])
            gv[0] = z
            gv[1] = r
            gv[2] = hh
            return z * h_prev + (one - z) * hh, c_prev, ah[2]

        @cuda.jit(device=True)
        def backward_unit(gh, gc, h_prev, c_prev, h_new, c_new, gv, extra, dax, dah):
            z = gv[0]
            r = gv[1]
            hh = gv[2]
            dz = gh * (h_prev - hh)
            dph = gh * (one - z) * (one - hh * hh)
            dr = dph * extra
            dpz = dz * gate_grad(z)
            dpr = dr * gate_grad(r)
            dax[0] = dpz
            dax[1] = dpr
            dax[2] = dph
            dah[0] = dpz
            dah[1] = dpr
            dah[2] = dph * r
            return gh * z, zero

        return forward_unit, backward_unit

    def host_weights(self, cell):
        """The bias (2, 3U) is [b_in, b_rec]: b_rec is added to h R before the reset gate acts."""
        K, R, *bias = cell.weights
        if bias:
            return K, R, bias[0][0], bias[0][1]
        zeros = np.zeros(R.shape[1], dtype=K.dtype)
        return K, R, zeros, zeros

    def weight_gradients(self, cell, g, dev):
        """The bias gradient stacks its two rows, (2, 3U), as the bias does."""
        weights = super().weight_gradients(cell, g, dev)
        if cell.use_bias:
            weights[2] = np.stack([weights[2], dev.to_host(g.db_rec)])
        return weights

    def per_step_weight_gradients(self, cell, x, h_prev, dAX, dAH, record):
        per = super().per_step_weight_gradients(cell, x, h_prev, dAX, dAH, record)
        if cell.use_bias:
            per[2] = np.stack([per[2], dAH.sum(axis=1)], axis=1)  # (T, 2, 3U)
        return per


class ResetBeforeGRUAdapter(GRUAdapter):
    """reset_after=False: its own persistent kernels, and dR in two parts.

    R_zr = R[:, :2U] multiplies h and R_h = R[:, 2U:] multiplies r * h (the
    recorded ``extra``), so dR_zr = h^T dAX[:, :2U] and dR_h = (r h)^T dAX[:, 2U:] (h * M for h under
    recurrent dropout).
    """

    name = "GRUCell(reset_after=False)"
    paths = ("persistent",)
    persistent_r_in_shared = False

    def unsupported(self, cell):
        problem = super().unsupported(cell)
        if problem is not None:
            return problem
        limit = CONFIG["shared_limit"]
        if reset_before_backward_shared(1, cell.units, np.dtype(cell.dtype).itemsize) > limit:
            return (f"backend 'cuda' runs GRUCell(reset_after=False) in one persistent kernel, which holds "
                    f"{cell.units} units only up to {limit} bytes of shared memory; "
                    "use reset_after=True or fewer units")
        return None

    def kernels(self, dtype_name, geometry):
        return reset_before_forward(dtype_name, self.gate), reset_before_backward(dtype_name, self.gate)

    def persistent_shared(self, rows, units, itemsize, r_in_shared):
        return reset_before_forward_shared(rows, units, itemsize), reset_before_backward_shared(rows, units, itemsize)

    def persistent_threads(self, rows, units):
        """The forward's widest loop is over the 2U columns of R_zr."""
        return max(2 * units, rows * units), max(3 * units, rows * units)

    def recurrent_weight_gradient(self, dev, fw, dAX, dAH):
        """(dR_zr (U, 2U), dR_h (U, U)) on the device."""
        T, B, GU = dAX.shape
        U = GU // 3
        dR_zr, dR_h = dev.empty((U, 2 * U), fw.W.dtype), dev.empty((U, U), fw.W.dtype)
        recurrent_gemm(dev, *recurrent_inputs(dev, fw), dAX, dR_zr, 0, 2 * U)
        dev.gemm(fw.extra.reshape(T * B, U), dAX.reshape(T * B, GU)[:, 2 * U :], dR_h, trans_a=True)  # (r h)^T dph
        return dR_zr, dR_h

    def weight_gradients(self, cell, g, dev):
        dR_zr, dR_h = g.dR
        weights = [dev.to_host(g.dK), np.concatenate([dev.to_host(dR_zr), dev.to_host(dR_h)], axis=1)]
        if cell.use_bias:
            weights.append(dev.to_host(g.db_in))
        return weights

    def per_step_weight_gradients(self, cell, x, h_prev, dAX, dAH, record):
        U = dAX.shape[2] // 3
        rh = record.extra()  # (T, B, U): r * h, what R_h multiplies
        per = [np.einsum("tbf,tbg->tfg", x, dAX),
               np.concatenate([np.einsum("tbu,tbg->tug", h_prev, dAX[:, :, : 2 * U]),
                               np.einsum("tbu,tbg->tug", rh, dAX[:, :, 2 * U :])], axis=2)]
        if cell.use_bias:
            per.append(dAX.sum(axis=1))
        return per


_RESET_AFTER = per_gate(ResetAfterGRUAdapter)
_RESET_BEFORE = per_gate(ResetBeforeGRUAdapter)


def adapter_for(cell):
    """The CUDA adapter of a GRUCell: reset_after and reset_before run different kernels (one per recurrent activation)."""
    return _RESET_AFTER(cell) if cell.reset_after else _RESET_BEFORE(cell)
