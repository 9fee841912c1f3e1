"""Dense (fully connected) layer kernels on the CPU.

For float32 C-contiguous arrays each kernel works on register tiles of 16-lane vectors
(``_simd``): dense_forward keeps a 4 × 4 block of (sample, output) dot products in 16
vector accumulators, so every loaded vector feeds four FMAs; the two backward kernels keep
4 rows × 64 lanes of their output in registers while they sum over the batch (∂L/∂W) or
over the outputs (∂L/∂input).  Shapes off the tile grid, and other dtypes or layouts, take
the plain loops, whose innermost index walks contiguous memory so LLVM vectorises them.
The training loops themselves use the fused path of ``_fused.py``; these are the per-layer
kernels of the public kernel set, twins of ``reference`` and ``cuda``.
"""

import numpy as np
from numba import types
from numba.extending import overload

from ._jit import JIT_OPTIONS, jit
from ._simd import LANES, vfma, vload, vmuladd, vstore, vsum, vzero

TILE = 4  # rows per register tile (samples in forward, outputs/samples in backward)


def _fast(*arrays):
    """Typing-time test: float32, C-contiguous, 1-D or 2-D arrays (the tiled kernels' input)."""
    return all(isinstance(a, types.Array) and a.dtype == types.float32 and a.layout == "C"
               for a in arrays)


# ---------------------------------------------------------------------------- forward
def _dense_forward_impl(out, inp, W, b):
    raise NotImplementedError("compiled only")


@overload(_dense_forward_impl, jit_options=JIT_OPTIONS)
def _dense_forward_overload(out, inp, W, b):
    if _fast(out, inp, W, b):
        return _dense_forward_tiled
    return _dense_forward_loops


def _dense_forward_loops(out, inp, W, b):
    n_batch, n_in = inp.shape
    n_out = W.shape[0]
    for s in range(n_batch):
        for o in range(n_out):
            acc = b[o]
            for i in range(n_in):
                acc += W[o, i] * inp[s, i]
            out[s, o] = acc


def _dense_forward_tiled(out, inp, W, b):
    n_batch, n_in = inp.shape
    n_out = W.shape[0]
    x = inp.reshape(n_batch * n_in)
    w = W.reshape(n_out * n_in)
    vec_in = n_in - n_in % LANES
    s_full = n_batch - n_batch % TILE
    o_full = n_out - n_out % TILE
    for s in range(0, s_full, TILE):
        for o in range(0, o_full, TILE):
            a00 = vzero(); a01 = vzero(); a02 = vzero(); a03 = vzero()  # noqa: E702
            a10 = vzero(); a11 = vzero(); a12 = vzero(); a13 = vzero()  # noqa: E702
            a20 = vzero(); a21 = vzero(); a22 = vzero(); a23 = vzero()  # noqa: E702
            a30 = vzero(); a31 = vzero(); a32 = vzero(); a33 = vzero()  # noqa: E702
            xs = s * n_in
            wo = o * n_in
            for i in range(0, vec_in, LANES):
                x0 = vload(x, xs + i)
                x1 = vload(x, xs + n_in + i)
                x2 = vload(x, xs + 2 * n_in + i)
                x3 = vload(x, xs + 3 * n_in + i)
                w0 = vload(w, wo + i)
                a00 = vmuladd(a00, x0, w0); a10 = vmuladd(a10, x1, w0)  # noqa: E702
                a20 = vmuladd(a20, x2, w0); a30 = vmuladd(a30, x3, w0)  # noqa: E702
                w1 = vload(w, wo + n_in + i)
                a01 = vmuladd(a01, x0, w1); a11 = vmuladd(a11, x1, w1)  # noqa: E702
                a21 = vmuladd(a21, x2, w1); a31 = vmuladd(a31, x3, w1)  # noqa: E702
                w2 = vload(w, wo + 2 * n_in + i)
                a02 = vmuladd(a02, x0, w2); a12 = vmuladd(a12, x1, w2)  # noqa: E702
                a22 = vmuladd(a22, x2, w2); a32 = vmuladd(a32, x3, w2)  # noqa: E702
                w3 = vload(w, wo + 3 * n_in + i)
                a03 = vmuladd(a03, x0, w3); a13 = vmuladd(a13, x1, w3)  # noqa: E702
                a23 = vmuladd(a23, x2, w3); a33 = vmuladd(a33, x3, w3)  # noqa: E702
            out[s, o] = vsum(a00); out[s, o + 1] = vsum(a01)  # noqa: E702
            out[s, o + 2] = vsum(a02); out[s, o + 3] = vsum(a03)  # noqa: E702
            out[s + 1, o] = vsum(a10); out[s + 1, o + 1] = vsum(a11)  # noqa: E702
            out[s + 1, o + 2] = vsum(a12); out[s + 1, o + 3] = vsum(a13)  # noqa: E702
            out[s + 2, o] = vsum(a20); out[s + 2, o + 1] = vsum(a21)  # noqa: E702
            out[s + 2, o + 2] = vsum(a22); out[s + 2, o + 3] = vsum(a23)  # noqa: E702
            out[s + 3, o] = vsum(a30); out[s + 3, o + 1] = vsum(a31)  # noqa: E702
            out[s + 3, o + 2] = vsum(a32); out[s + 3, o + 3] = vsum(a33)  # noqa: E702
    # the remainder: inputs past the last full vector, and samples/outputs off the tile grid
    for s in range(n_batch):
        for o in range(n_out):
            if s < s_full and o < o_full:
                acc = out[s, o]
                start = vec_in
            else:
                acc = np.float32(0.0)
                start = 0
                if vec_in > 0:
                    lanes = vzero()
                    for i in range(0, vec_in, LANES):
                        lanes = vmuladd(lanes, vload(x, s * n_in + i), vload(w, o * n_in + i))
                    acc = vsum(lanes)
                    start = vec_in
            for i in range(start, n_in):
                acc += W[o, i] * inp[s, i]
            out[s, o] = acc + b[o]


@jit
def dense_forward(out, inp, W, b):
    """z = W·a + b for every row of ``inp``.

    inp (B, IN), W (OUT, IN), b (OUT,) -> out (B, OUT)
    """
    _dense_forward_impl(out, inp, W, b)


# ---------------------------------------------------------------------------- backward
@jit
def _sum_of_scaled_rows(c, n_rows, n_cols, a, a_k, a_r, m, n_k):
    """C[r] = Σ_k a[k·a_k + r·a_r] · M[k] for r < n_rows (overwritten); C (n_rows, n_cols)
    and M (n_k, n_cols) flat, float32.

    Both backward kernels are this sum: ∂L/∂W[o] = Σ_s δ[s, o]·a[s] and
    ∂L/∂input[s] = Σ_o δ[s, o]·W[o].  Tiles of 4 rows × 64 lanes stay in 16 vector registers
    for the whole sum over k; the rest goes 16 lanes at a time, then scalar.
    """
    block = 4 * LANES
    r_full = n_rows - n_rows % TILE
    c_full = n_cols - n_cols % block
    for r in range(0, r_full, TILE):
        for col in range(0, c_full, block):
            c00 = vzero(); c01 = vzero(); c02 = vzero(); c03 = vzero()  # noqa: E702
            c10 = vzero(); c11 = vzero(); c12 = vzero(); c13 = vzero()  # noqa: E702
            c20 = vzero(); c21 = vzero(); c22 = vzero(); c23 = vzero()  # noqa: E702
            c30 = vzero(); c31 = vzero(); c32 = vzero(); c33 = vzero()  # noqa: E702
            for k in range(n_k):
                row = k * n_cols + col
                m0 = vload(m, row)
                m1 = vload(m, row + LANES)
                m2 = vload(m, row + 2 * LANES)
                m3 = vload(m, row + 3 * LANES)
                at = k * a_k + r * a_r
                s0 = a[at]
                c00 = vfma(c00, s0, m0); c01 = vfma(c01, s0, m1)  # noqa: E702
                c02 = vfma(c02, s0, m2); c03 = vfma(c03, s0, m3)  # noqa: E702
                s1 = a[at + a_r]
                c10 = vfma(c10, s1, m0); c11 = vfma(c11, s1, m1)  # noqa: E702
                c12 = vfma(c12, s1, m2); c13 = vfma(c13, s1, m3)  # noqa: E702
                s2 = a[at + 2 * a_r]
                c20 = vfma(c20, s2, m0); c21 = vfma(c21, s2, m1)  # noqa: E702
                c22 = vfma(c22, s2, m2); c23 = vfma(c23, s2, m3)  # noqa: E702
                s3 = a[at + 3 * a_r]
                c30 = vfma(c30, s3, m0); c31 = vfma(c31, s3, m1)  # noqa: E702
                c32 = vfma(c32, s3, m2); c33 = vfma(c33, s3, m3)  # noqa: E702
            base = r * n_cols + col
            vstore(c, base, c00); vstore(c, base + LANES, c01)  # noqa: E702
            vstore(c, base + 2 * LANES, c02); vstore(c, base + 3 * LANES, c03)  # noqa: E702
            base += n_cols
            vstore(c, base, c10); vstore(c, base + LANES, c11)  # noqa: E702
            vstore(c, base + 2 * LANES, c12); vstore(c, base + 3 * LANES, c13)  # noqa: E702
            base += n_cols
            vstore(c, base, c20); vstore(c, base + LANES, c21)  # noqa: E702
            vstore(c, base + 2 * LANES, c22); vstore(c, base + 3 * LANES, c23)  # noqa: E702
            base += n_cols
            vstore(c, base, c30); vstore(c, base + LANES, c31)  # noqa: E702
            vstore(c, base + 2 * LANES, c32); vstore(c, base + 3 * LANES, c33)  # noqa: E702
    for r in range(n_rows):
        start = c_full if r < r_full else 0
        vec_end = start + (n_cols - start) // LANES * LANES
        for col in range(start, vec_end, LANES):
            acc = vzero()
            for k in range(n_k):
                acc = vfma(acc, a[k * a_k + r * a_r], vload(m, k * n_cols + col))
            vstore(c, r * n_cols + col, acc)
        for col in range(vec_end, n_cols):
            total = np.float32(0.0)
            for k in range(n_k):
                total += a[k * a_k + r * a_r] * m[k * n_cols + col]
            c[r * n_cols + col] = total


def _dense_backward_input_impl(dinp, dout, W):
    raise NotImplementedError("compiled only")


@overload(_dense_backward_input_impl, jit_options=JIT_OPTIONS)
def _dense_backward_input_overload(dinp, dout, W):
    if _fast(dinp, dout, W):
        def tiled(dinp, dout, W):
            n_batch, n_out = dout.shape
            n_in = W.shape[1]
            _sum_of_scaled_rows(dinp.reshape(n_batch * n_in), n_batch, n_in,
                                dout.reshape(n_batch * n_out), 1, n_out,
                                W.reshape(n_out * n_in), n_out)
        return tiled

    def loops(dinp, dout, W):
        n_batch, n_out = dout.shape
        n_in = W.shape[1]
        for s in range(n_batch):
            for i in range(n_in):
                dinp[s, i] = 0
            for o in range(n_out):
                d = dout[s, o]
                for i in range(n_in):
                    dinp[s, i] += d * W[o, i]
    return loops


@jit
def dense_backward_input(dinp, dout, W):
    """∂L/∂a of the layer input: (Wᵀ δ) for every row.

    dout (B, OUT), W (OUT, IN) -> dinp (B, IN)
    """
    _dense_backward_input_impl(dinp, dout, W)


def _dense_backward_params_impl(dW, db, dout, inp):
    raise NotImplementedError("compiled only")


@overload(_dense_backward_params_impl, jit_options=JIT_OPTIONS)
def _dense_backward_params_overload(dW, db, dout, inp):
    if _fast(dW, db, dout, inp):
        def tiled(dW, db, dout, inp):
            n_batch, n_out = dout.shape
            n_in = inp.shape[1]
            _sum_of_scaled_rows(dW.reshape(n_out * n_in), n_out, n_in,
                                dout.reshape(n_batch * n_out), n_out, 1,
                                inp.reshape(n_batch * n_in), n_batch)
            for o in range(n_out):
                acc = np.float32(0.0)
                for s in range(n_batch):
                    acc += dout[s, o]
                db[o] = acc
        return tiled

    def loops(dW, db, dout, inp):
        n_batch, n_out = dout.shape
        n_in = inp.shape[1]
        for o in range(n_out):
            acc = np.float32(0.0)
            for i in range(n_in):
                dW[o, i] = 0
            for s in range(n_batch):
                d = dout[s, o]
                acc += d
                if d != 0:  # ReLU and saturated units give exact zeros: skip their rows
                    for i in range(n_in):
                        dW[o, i] += d * inp[s, i]
            db[o] = acc
    return loops


@jit
def dense_backward_params(dW, db, dout, inp):
    """∂L/∂W = Σ_batch δ aᵀ and ∂L/∂b = Σ_batch δ (overwritten, not accumulated).

    dout (B, OUT), inp (B, IN) -> dW (OUT, IN), db (OUT,)
    """
    _dense_backward_params_impl(dW, db, dout, inp)
