"""Dense (fully connected) layer kernels on the CPU.

Loops are written so that the innermost index walks contiguous memory (a row of ``W`` or of
``inp``), which LLVM turns into SIMD code; no BLAS is needed for these small layers.
"""

import numpy as np

from ._jit import jit


@jit
def dense_forward(out, inp, W, b):
    """z = W·a + b for every row of ``inp``.

    inp (B, IN), W (OUT, IN), b (OUT,) -> out (B, OUT)
    """
    n_batch, n_in = inp.shape
    n_out = W.shape[0]
    for s in range(n_batch):
        for o in range(n_out):
            acc = b[o]
            for i in range(n_in):
                acc += W[o, i] * inp[s, i]
            out[s, o] = acc


@jit
def dense_backward_input(dinp, dout, W):
    """∂L/∂a of the layer input: (Wᵀ δ) for every row.

    dout (B, OUT), W (OUT, IN) -> dinp (B, IN)
    """
    n_batch, n_out = dout.shape
    n_in = W.shape[1]
    for s in range(n_batch):
        for i in range(n_in):
            dinp[s, i] = 0
        for o in range(n_out):
            d = dout[s, o]
            for i in range(n_in):
                dinp[s, i] += d * W[o, i]


@jit
def dense_backward_params(dW, db, dout, inp):
    """∂L/∂W = Σ_batch δ aᵀ and ∂L/∂b = Σ_batch δ (overwritten, not accumulated).

    dout (B, OUT), inp (B, IN) -> dW (OUT, IN), db (OUT,)
    """
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
