"""Dense layers on CUDA as tiled shared-memory matmuls (TILE × TILE threads per block).

Each block computes a TILE × TILE tile of its output, walking the shared dimension one tile at
a time: both operand tiles are loaded with consecutive threads on consecutive addresses
(coalesced), then every thread does TILE multiply-adds out of shared memory.  The weight tile
is padded to TILE + 1 columns where threads read it down a column, so they hit distinct banks.
Grid x walks batch rows (the long dimension, which may exceed 65,535 tiles), grid y the
features.

The kernels are also the mini-batch training steps' building blocks, so they take what the
training loop needs beyond the plain op: the row count (buffers are allocated once for the
largest batch), an optional gather of the input rows through the epoch's sample order (the
data set stays where it is on the device), the activation fused into the forward pass, f′
fused into delta propagation, and the parameter update fused into the gradient (θ += s·∇θ).
"""

import numpy as np

from ..codes import IDENTITY
from ._device import (
    ONE,
    TILE,
    TILE_PADDED,
    ZERO,
    activate,
    activate_backward,
    blocks_for,
    cuda,
    no_rows,
)

__all__ = ["dense_forward", "dense_backward_input", "dense_backward_params"]


@cuda.jit
def _dense_forward_kernel(out, inp, rows, row_start, gather, W, b, activation, n_rows):
    """out[r] = f(W·inp[row(r)] + b) for r < n_rows; softmax is left to a row kernel (z kept)."""
    tile_inp = cuda.shared.array((TILE, TILE), np.float32)
    tile_w = cuda.shared.array((TILE, TILE_PADDED), np.float32)
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    r = cuda.blockIdx.x * TILE + ty
    o = cuda.blockIdx.y * TILE + tx
    w_row = cuda.blockIdx.y * TILE + ty  # the W row this thread loads (not the one it computes)
    n_out = W.shape[0]
    n_in = W.shape[1]
    src = -1
    if r < n_rows:
        src = rows[row_start + r] if gather else r
    acc = ZERO
    for k0 in range(0, n_in, TILE):
        k = k0 + tx
        tile_inp[ty, tx] = inp[src, k] if (src >= 0 and k < n_in) else ZERO
        tile_w[ty, tx] = W[w_row, k] if (w_row < n_out and k < n_in) else ZERO
        cuda.syncthreads()
        for kk in range(TILE):
            acc += tile_inp[ty, kk] * tile_w[tx, kk]
        cuda.syncthreads()
    if r < n_rows and o < n_out:
        out[r, o] = activate(acc + b[o], activation)


@cuda.jit
def _dense_backward_input_kernel(dinp, dout, W, a_below, activation_below, n_rows):
    """dinp[r] = f′_below applied to Wᵀ·dout[r] (δ propagation), for r < n_rows."""
    tile_d = cuda.shared.array((TILE, TILE), np.float32)
    tile_w = cuda.shared.array((TILE, TILE_PADDED), np.float32)
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    r = cuda.blockIdx.x * TILE + ty
    i = cuda.blockIdx.y * TILE + tx
    n_out = W.shape[0]
    n_in = W.shape[1]
    acc = ZERO
    for k0 in range(0, n_out, TILE):
        k = k0 + tx
        tile_d[ty, tx] = dout[r, k] if (r < n_rows and k < n_out) else ZERO
        w_row = k0 + ty
        tile_w[ty, tx] = W[w_row, i] if (w_row < n_out and i < n_in) else ZERO
        cuda.syncthreads()
        for kk in range(TILE):
            acc += tile_d[ty, kk] * tile_w[kk, tx]
        cuda.syncthreads()
    if r < n_rows and i < n_in:
        # softmax passes through: its Jacobian is a row operation, applied by the caller
        dinp[r, i] = activate_backward(acc, a_below[r, i], activation_below)


@cuda.jit
def _dense_params_kernel(target_W, target_b, dout, inp, rows, row_start, gather, scale,
                         overwrite, n_rows):
    """target ← s·∇ (overwrite) or target + s·∇: ∇W = Σ_r dout[r]ᵀ inp[row(r)], ∇b = Σ_r dout[r].

    The bias is column IN of an (OUT, IN + 1) result whose extra input is 1, so one grid
    covers both.  With target = the parameters and s = −η this is the SGD step itself.
    """
    tile_d = cuda.shared.array((TILE, TILE_PADDED), np.float32)
    tile_inp = cuda.shared.array((TILE, TILE_PADDED), np.float32)
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    i = cuda.blockIdx.x * TILE + tx
    o = cuda.blockIdx.y * TILE + ty
    n_out = dout.shape[1]
    n_in = inp.shape[1]
    o_load = cuda.blockIdx.y * TILE + tx  # the δ column this thread loads
    acc = ZERO
    for k0 in range(0, n_rows, TILE):
        k = k0 + ty
        tile_d[ty, tx] = dout[k, o_load] if (k < n_rows and o_load < n_out) else ZERO
        value = ZERO
        if k < n_rows:
            if i < n_in:
                value = inp[rows[row_start + k] if gather else k, i]
            elif i == n_in:
                value = ONE
        tile_inp[ty, tx] = value
        cuda.syncthreads()
        for kk in range(TILE):
            acc += tile_d[kk, ty] * tile_inp[kk, tx]
        cuda.syncthreads()
    if o < n_out:
        step = scale * acc
        if i < n_in:
            target_W[o, i] = step if overwrite else target_W[o, i] + step
        elif i == n_in:
            target_b[o] = step if overwrite else target_b[o] + step


# ---------------------------------------------------------------------------- launchers
def launch_forward(out, inp, W, b, activation, n_rows, rows=None, row_start=0):
    n_out = W.shape[0]
    grid = (blocks_for(n_rows, TILE), blocks_for(n_out, TILE))
    _dense_forward_kernel[grid, (TILE, TILE)](
        out, inp, no_rows() if rows is None else rows, row_start, rows is not None, W, b,
        activation, n_rows)


def launch_backward_input(dinp, dout, W, a_below, activation_below, n_rows):
    grid = (blocks_for(n_rows, TILE), blocks_for(W.shape[1], TILE))
    _dense_backward_input_kernel[grid, (TILE, TILE)](dinp, dout, W, a_below, activation_below,
                                                     n_rows)


def launch_params(target_W, target_b, dout, inp, scale, overwrite, n_rows, rows=None,
                  row_start=0):
    grid = (blocks_for(inp.shape[1] + 1, TILE), blocks_for(dout.shape[1], TILE))
    _dense_params_kernel[grid, (TILE, TILE)](
        target_W, target_b, dout, inp, no_rows() if rows is None else rows, row_start,
        rows is not None, np.float32(scale), overwrite, n_rows)


def dense_forward(out, inp, W, b):
    """z = W·a + b for every row of ``inp``.

    inp (B, IN), W (OUT, IN), b (OUT,) -> out (B, OUT)
    """
    launch_forward(out, inp, W, b, IDENTITY, inp.shape[0])


def dense_backward_input(dinp, dout, W):
    """∂L/∂a of the layer input: (Wᵀ δ) for every row.

    dout (B, OUT), W (OUT, IN) -> dinp (B, IN)
    """
    launch_backward_input(dinp, dout, W, dinp, IDENTITY, dout.shape[0])


def dense_backward_params(dW, db, dout, inp):
    """∂L/∂W = Σ_batch δ aᵀ and ∂L/∂b = Σ_batch δ (overwritten, not accumulated).

    dout (B, OUT), inp (B, IN) -> dW (OUT, IN), db (OUT,)
    """
    launch_params(dW, db, dout, inp, 1.0, True, dout.shape[0])
