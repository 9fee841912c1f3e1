"""The fast path inside the CPU training loops: each sample goes through the whole network
while it is hot in cache, with 16-lane vector accumulators held in registers.

What it does differently from the layer-by-layer path in ``network.py`` (same maths, other
summation order):

* The parameters are repacked once per call into a private layout and copied back at the end:
  the first layer as Wᵀ (IN, OUT₁) so its forward pass and update are axpy's over the input's
  **nonzero** entries only (81% of MNIST pixels are 0, and a zero input adds nothing to z nor
  to ∂L/∂W: skipping it is exact); later layers as W (OUT, IN) so backpropagation is an axpy
  too.  Widths are padded to a multiple of 16 lanes with zeros that stay zero (padded
  activations and deltas are forced to 0).
* Mini-batch semantics are kept exactly: every sample of a batch is run forward and backward
  with the weights as they were at the start of the batch, and the update θ ← θ − η·mean ∇
  is applied once the batch is done (layer 0 as one sparse rank-1 update per sample).
* σ uses the vector exp of ``_simd.vexp`` (within 2 ulp); ReLU, identity are exact; tanh and
  softmax use the scalar library exp/tanh.

* The loss is taken at the output layer's forward step, while its pre-activations z are
  still there: softmax + cross-entropy and sigmoid + binary cross-entropy from z, exact
  (``reference._output_loss``), every other pair from the activations.

It serves every CPU training loop (``loops.py``, ``optimizer_loops.py``) and the
whole-network ``network_forward`` / ``network_evaluate`` / ``network_gradient``; the layer
kernels of ``dense.py`` and ``activations.py`` stay the per-layer API.
"""

import numpy as np
from numba import prange, types
from numba.extending import overload

from ..codes import BINARY_CROSS_ENTROPY, CROSS_ENTROPY, MAE, RELU, SIGMOID, SOFTMAX, TANH
from ._jit import JIT_OPTIONS, jit, jit_inline, jit_parallel
from ._simd import (
    LANES,
    compact8,
    nonzero_position_table,
    prefetch,
    vadd,
    vdiv,
    vexp,
    vfma,
    vload,
    vmul,
    vmuladd,
    vpositive,
    vrelu,
    vsplat,
    vstore,
    vsub,
    vsum,
    vzero,
)
from .losses import loss_value
from .optimizers import optimizer_step

ONE = np.float32(1.0)
ZERO = np.float32(0.0)
HALF = np.float32(0.5)
MINUS_ONE = np.float32(-1.0)
LOG_EPS = np.float32(1e-12)  # as losses.LOG_EPS

SPARSE_BELOW_HALVES = 1  # skip zero inputs when fewer than 1/2 of the inputs are nonzero
DENSITY_ROWS = 256       # rows sampled to measure that fraction
MAX_STORED_BATCH = 256  # larger batches find their nonzeros again for the update
PARALLEL_MIN_ROWS = 4096  # inference on this many rows splits them across threads
PARALLEL_ROW_BLOCK = 512  # rows per parallel job
PREFETCH_AHEAD = 4      # samples ahead whose input row is requested from memory
GRADIENT_CHUNK = 256    # rows per pass when a gradient is accumulated: bounds the scratch
_POSITIONS = nonzero_position_table()  # a global array: numba bakes it into the compiled code


@jit
def inputs_are_sparse(X, order):
    """Whether under half the entries of the first rows of ``order`` are nonzero.

    Measured, not assumed: on dense data the zero test and index list cost more than they
    save, so the first layer then walks every input.  (Integer arithmetic: no float64.)
    """
    rows = min(order.shape[0], DENSITY_ROWS)
    nonzero = 0
    for k in range(rows):
        x = X[order[k]]
        for i in range(x.shape[0]):
            nonzero += x[i] != 0
    return 2 * nonzero < SPARSE_BELOW_HALVES * rows * X.shape[1]


@jit
def prefetch_sample(X, Y, order, k):
    """Ask for the rows of sample order[k] (if any) before they are needed."""
    if k < order.shape[0]:
        row = order[k]
        x = X[row]
        for j in range(0, x.shape[0], 64 // x.itemsize):
            prefetch(x, j)
        prefetch(Y[row], 0)


@jit
def _padded(n):
    return (n + LANES - 1) // LANES * LANES


@jit
def fused_layout(sizes):
    """Padded widths and offsets of the private layout.

    Returns pads (L+1,), w_off (L,), b_off (L,), a_off (L+1,) and the per-sample row width
    of the activation/delta scratch.  Layer 0 is stored as Wᵀ (sizes[0], pads[1]); layer
    l ≥ 1 as W (sizes[l+1], pads[l]).
    """
    n_layers = sizes.shape[0] - 1
    pads = np.empty(n_layers + 1, np.int64)
    pads[0] = sizes[0]
    for layer in range(1, n_layers + 1):
        pads[layer] = _padded(sizes[layer])
    w_off = np.empty(n_layers, np.int64)
    b_off = np.empty(n_layers, np.int64)
    w_total = 0
    b_total = 0
    for layer in range(n_layers):
        w_off[layer] = w_total
        if layer == 0:
            w_total += sizes[0] * pads[1]
        else:
            w_total += sizes[layer + 1] * pads[layer]
        b_off[layer] = b_total
        b_total += pads[layer + 1]
    a_off = np.zeros(n_layers + 1, np.int64)
    row = 0
    for layer in range(1, n_layers + 1):
        a_off[layer] = row
        row += pads[layer]
    return pads, w_off, b_off, a_off, row, w_total, b_total


@jit
def pack_params(w, bias, params, sizes, pads, w_off, b_off):
    """Flat parameters (W (OUT, IN) per layer) -> the private padded layout."""
    w[:] = 0
    bias[:] = 0
    offset = 0
    for layer in range(sizes.shape[0] - 1):
        n_in, n_out = sizes[layer], sizes[layer + 1]
        for o in range(n_out):
            for i in range(n_in):
                value = params[offset + o * n_in + i]
                if layer == 0:
                    w[w_off[0] + i * pads[1] + o] = value
                else:
                    w[w_off[layer] + o * pads[layer] + i] = value
        offset += n_out * n_in
        for o in range(n_out):
            bias[b_off[layer] + o] = params[offset + o]
        offset += n_out


@jit
def unpack_params(params, w, bias, sizes, pads, w_off, b_off):
    """The private layout -> flat parameters (the inverse of ``pack_params``)."""
    offset = 0
    for layer in range(sizes.shape[0] - 1):
        n_in, n_out = sizes[layer], sizes[layer + 1]
        for o in range(n_out):
            for i in range(n_in):
                if layer == 0:
                    params[offset + o * n_in + i] = w[w_off[0] + i * pads[1] + o]
                else:
                    params[offset + o * n_in + i] = w[w_off[layer] + o * pads[layer] + i]
        offset += n_out * n_in
        for o in range(n_out):
            params[offset + o] = bias[b_off[layer] + o]
        offset += n_out


def compact_nonzero(idx, x):
    """idx[:n] = positions of the nonzero entries of x, in order; returns n.

    idx needs len(x) + 8 slots.  float32 rows go 8 lanes at a time through a mask and a
    table of bit positions (``_simd.compact8``, ~4x faster than one at a time); other dtypes
    take the scalar loop, which is branch-free: every position is written and the count
    advances only on a nonzero, faster than a branch on MNIST's irregular zero runs.
    """
    raise NotImplementedError("compiled only: call from @njit code")


@overload(compact_nonzero, jit_options=JIT_OPTIONS)
def _compact_nonzero_impl(idx, x):
    if isinstance(x, types.Array) and x.dtype == types.float32 and x.layout == "C":
        def vector(idx, x):
            n = 0
            full = x.shape[0] - x.shape[0] % 8
            for start in range(0, full, 8):
                n = compact8(idx, n, x, start, _POSITIONS)
            for i in range(full, x.shape[0]):
                idx[n] = i
                n += x[i] != 0
            return n
        return vector

    def scalar(idx, x):
        n = 0
        for i in range(x.shape[0]):
            idx[n] = i
            n += x[i] != 0
        return n
    return scalar


@jit
def _activate(acts, base, n, padded, code):
    """f(z) in place on acts[base:base + padded]; the padding lanes are then set to 0."""
    if code == SIGMOID:
        one = vsplat(ONE)
        for c in range(0, padded, LANES):
            z = vload(acts, base + c)
            vstore(acts, base + c, vdiv(one, vadd(one, vexp(vsub(vzero(), z)))))
    elif code == RELU:
        for c in range(0, padded, LANES):
            vstore(acts, base + c, vrelu(vload(acts, base + c)))
    elif code == TANH:
        for j in range(n):
            acts[base + j] = np.tanh(acts[base + j])
    elif code == SOFTMAX:
        _softmax(acts, base, n, _row_max(acts, base, n))
    for j in range(n, padded):
        acts[base + j] = ZERO


@jit_inline
def _row_max(acts, base, n):
    """max z over acts[base:base + n] (softmax's shift)."""
    top = acts[base]
    for j in range(1, n):
        top = max(top, acts[base + j])
    return top


@jit_inline
def _softmax(acts, base, n, top):
    """softmax(z) in place on acts[base:base + n], shifted by ``top`` = max z so that exp
    cannot overflow; returns Σⱼ e^{zⱼ − top} (log-sum-exp needs it)."""
    total = ZERO
    for j in range(n):
        e = np.exp(acts[base + j] - top)
        acts[base + j] = e
        total += e
    inv = ONE / total
    for j in range(n):
        acts[base + j] *= inv
    return total


@jit
def _softmax_cross_entropy(acts, base, n, Y, y_row):
    """softmax(z) in place on acts[base:base + n], and the sample's exact cross-entropy
    Σₖ yₖ (logsumexp(z) − zₖ), with logsumexp(z) − zₖ = (max z − zₖ) + log Σⱼ e^{zⱼ − max z}.

    Both terms are ≥ 0 and no probability is formed, so nothing is clamped or cancels.  The
    softmax's own exp pass gives the sum: one log per sample, as the clamped loss cost.
    """
    top = _row_max(acts, base, n)
    gap = ZERO   # Σ yₖ (max z − zₖ), read before softmax overwrites z
    mass = ZERO  # Σ yₖ (1 for a one-hot target)
    for j in range(n):
        y = np.float32(Y[y_row, j])
        if y != ZERO:
            gap += y * (top - acts[base + j])
            mass += y
    return gap + mass * np.log(_softmax(acts, base, n, top))


@jit
def _sigmoid_binary_cross_entropy(acts, base, n, padded, code, Y, y_row):
    """σ(z) in place on acts[base:base + n] (``code`` is SIGMOID's: passed on, not written
    as a constant, so that ``_activate`` is not compiled a second time for a literal), and
    the sample's exact binary cross-entropy
    Σᵢ softplus(zᵢ) − yᵢzᵢ, with softplus(z) = max(z, 0) + log(1 + e^{−|z|}).

    log(1 + e^{−|z|}) = −log σ(|z|), and σ(|z|) is a or 1 − a, whichever is ≥ ½: it never
    underflows, and the vector σ's own exp serves, so a sample costs one log per output as
    the clamped loss did.
    """
    value = ZERO
    for j in range(n):  # the part from z, read before σ overwrites it
        z = acts[base + j]
        value += max(z, ZERO) - np.float32(Y[y_row, j]) * z
    _activate(acts, base, n, padded, code)
    for j in range(n):
        a = acts[base + j]
        value -= np.log(max(a, ONE - a))
    return value


@jit
def loss_from_logits(loss, code):
    """Whether a sample's loss is taken exactly from the output pre-activations z (softmax +
    cross-entropy, sigmoid + binary cross-entropy) rather than from the activations a."""
    return (loss == CROSS_ENTROPY and code == SOFTMAX) or (
        loss == BINARY_CROSS_ENTROPY and code == SIGMOID)


@jit_inline
def _activate_output(acts, base, n, padded, code, loss, Y, y_row):
    """The output layer's f(z) in place, as ``_activate``; returns the sample's exact loss
    from z where ``loss_from_logits``, taken before z is overwritten, else 0 (the loss is
    then one of a: ``_output_delta``'s).
    """
    if loss == CROSS_ENTROPY and code == SOFTMAX:
        value = _softmax_cross_entropy(acts, base, n, Y, y_row)
        for j in range(n, padded):
            acts[base + j] = ZERO
        return value
    if loss == BINARY_CROSS_ENTROPY and code == SIGMOID:
        return _sigmoid_binary_cross_entropy(acts, base, n, padded, code, Y, y_row)
    _activate(acts, base, n, padded, code)
    return ZERO


@jit
def _first_layer_forward(acts, base, w, bias, x, idx, n_nonzero, width, b0):
    """z¹ = b + Σ over listed inputs i of x[i]·Wᵀ[i], 32 lanes (two vectors) per pass.

    Two passes' worth of lanes share each index and input load; two accumulator chains per
    vector hide the FMA latency.  A width of 16 (or an odd last 16) takes the one-vector
    loop with four chains.
    """
    c = 0
    while c + 2 * LANES <= width:
        lo0 = vload(bias, b0 + c)
        hi0 = vload(bias, b0 + c + LANES)
        lo1 = vzero()
        hi1 = vzero()
        k = 0
        while k + 2 <= n_nonzero:
            i0 = idx[k]
            i1 = idx[k + 1]
            v0 = np.float32(x[i0])
            v1 = np.float32(x[i1])
            lo0 = vfma(lo0, v0, vload(w, i0 * width + c))
            hi0 = vfma(hi0, v0, vload(w, i0 * width + c + LANES))
            lo1 = vfma(lo1, v1, vload(w, i1 * width + c))
            hi1 = vfma(hi1, v1, vload(w, i1 * width + c + LANES))
            k += 2
        if k < n_nonzero:
            i0 = idx[k]
            v0 = np.float32(x[i0])
            lo0 = vfma(lo0, v0, vload(w, i0 * width + c))
            hi0 = vfma(hi0, v0, vload(w, i0 * width + c + LANES))
        vstore(acts, base + c, vadd(lo0, lo1))
        vstore(acts, base + c + LANES, vadd(hi0, hi1))
        c += 2 * LANES
    if c < width:
        acc0 = vload(bias, b0 + c)
        acc1 = vzero()
        acc2 = vzero()
        acc3 = vzero()
        k = 0
        while k + 4 <= n_nonzero:
            i0 = idx[k]
            i1 = idx[k + 1]
            i2 = idx[k + 2]
            i3 = idx[k + 3]
            acc0 = vfma(acc0, np.float32(x[i0]), vload(w, i0 * width + c))
            acc1 = vfma(acc1, np.float32(x[i1]), vload(w, i1 * width + c))
            acc2 = vfma(acc2, np.float32(x[i2]), vload(w, i2 * width + c))
            acc3 = vfma(acc3, np.float32(x[i3]), vload(w, i3 * width + c))
            k += 4
        while k < n_nonzero:
            i0 = idx[k]
            acc0 = vfma(acc0, np.float32(x[i0]), vload(w, i0 * width + c))
            k += 1
        vstore(acts, base + c, vadd(vadd(acc0, acc1), vadd(acc2, acc3)))


@jit
def _dense_forward_row(acts, out_base, in_base, w, w0, bias, b0, n_out, in_padded):
    """z[o] = b[o] + ⟨W[o], a⟩ for one sample; W (n_out, in_padded) at w[w0:].

    Two accumulators over alternate 16-lane blocks halve the FMA latency chain of wide rows.
    """
    for o in range(n_out):
        acc0 = vzero()
        acc1 = vzero()
        row = w0 + o * in_padded
        c = 0
        while c + 2 * LANES <= in_padded:
            acc0 = vmuladd(acc0, vload(w, row + c), vload(acts, in_base + c))
            acc1 = vmuladd(acc1, vload(w, row + c + LANES), vload(acts, in_base + c + LANES))
            c += 2 * LANES
        if c < in_padded:
            acc0 = vmuladd(acc0, vload(w, row + c), vload(acts, in_base + c))
        acts[out_base + o] = bias[b0 + o] + vsum(vadd(acc0, acc1))


@jit_inline
def forward_logits(acts, arow, w, bias, x, idx, n_nonzero, sizes, activations, pads, w_off,
                   b_off, a_off):
    """Every layer's activations for one input row x, into acts[arow:arow + row width],
    except the output layer's: it is left as its pre-activations z (the loss may need them).
    """
    n_layers = sizes.shape[0] - 1
    _first_layer_forward(acts, arow + a_off[1], w, bias, x, idx, n_nonzero, pads[1], b_off[0])
    for layer in range(1, n_layers):
        _activate(acts, arow + a_off[layer], sizes[layer], pads[layer], activations[layer - 1])
        _dense_forward_row(acts, arow + a_off[layer + 1], arow + a_off[layer], w, w_off[layer],
                           bias, b_off[layer], sizes[layer + 1], pads[layer])


@jit
def forward_sample(acts, arow, w, bias, x, idx, n_nonzero, sizes, activations, pads, w_off,
                   b_off, a_off):
    """Every layer's activations for one input row x, into acts[arow:arow + row width]."""
    forward_logits(acts, arow, w, bias, x, idx, n_nonzero, sizes, activations, pads, w_off,
                   b_off, a_off)
    last = sizes.shape[0] - 1
    _activate(acts, arow + a_off[last], sizes[last], pads[last], activations[last - 1])


@jit_inline
def forward_sample_loss(acts, arow, w, bias, x, idx, n_nonzero, Y, y_row, sizes, activations,
                        loss, pads, w_off, b_off, a_off):
    """``forward_sample``, returning the sample's exact loss against row y_row of Y where
    ``loss_from_logits`` (else 0, see ``_activate_output``)."""
    forward_logits(acts, arow, w, bias, x, idx, n_nonzero, sizes, activations, pads, w_off,
                   b_off, a_off)
    last = sizes.shape[0] - 1
    return _activate_output(acts, arow + a_off[last], sizes[last], pads[last],
                            activations[last - 1], loss, Y, y_row)


@jit
def _output_delta(deltas, acts, base, Y, y_row, n_out, padded, loss, code, inv_b):
    """δᴸ for one sample (with the batch's 1/B), written at deltas[base:]; returns its loss
    from a, log losses clamped as in ``loss_value``, or 0 where ``loss_from_logits`` (that
    loss was taken exactly from z by ``_activate_output``, and δ = a − y needs no log).

    The formulas of ``losses.py`` (loss_value, output_delta) restated for one row: calling
    those 2-D kernels here costs seconds of compile time (they bring every activation's
    backward along).  tests/test_fused_cpu.py holds the two to the reference for every
    loss and output activation.  An unknown loss code is MSE, as in ``loss_value``.
    The loss and δ share one loop on purpose: under fastmath, LLVM's operand order for
    δ·a·(1 − a) depends on the code around it, and this is the order training has used.
    """
    if loss_from_logits(loss, code):  # the fused deltas: the Jacobian cancels against ∂L/∂a
        for j in range(n_out):
            deltas[base + j] = (acts[base + j] - np.float32(Y[y_row, j])) * inv_b
        for j in range(n_out, padded):
            deltas[base + j] = ZERO
        return ZERO
    value = ZERO
    for j in range(n_out):
        a = acts[base + j]
        y = np.float32(Y[y_row, j])
        if loss == CROSS_ENTROPY:
            if y != 0:
                value -= y * np.log(max(a, LOG_EPS))
            da = -y / max(a, LOG_EPS)
        elif loss == MAE:
            d = a - y
            value += abs(d)
            da = ONE if d > 0 else (-ONE if d < 0 else ZERO)
        elif loss == BINARY_CROSS_ENTROPY:
            if y != 0:
                value -= y * np.log(max(a, LOG_EPS))
            if y != ONE:
                value -= (ONE - y) * np.log(max(ONE - a, LOG_EPS))
            da = -y / max(a, LOG_EPS) + (ONE - y) / max(ONE - a, LOG_EPS)
        else:
            d = a - y
            value += HALF * d * d
            da = d
        if code == SIGMOID:
            da *= a * (ONE - a)
        elif code == TANH:
            da *= ONE - a * a
        elif code == RELU:
            if not a > ZERO:
                da = ZERO
        deltas[base + j] = da * inv_b
    if code == SOFTMAX and loss != CROSS_ENTROPY:  # a ⊙ (da − ⟨da, a⟩)
        dot = ZERO
        for j in range(n_out):
            dot += deltas[base + j] * acts[base + j]
        for j in range(n_out):
            deltas[base + j] = acts[base + j] * (deltas[base + j] - dot)
    for j in range(n_out, padded):
        deltas[base + j] = ZERO
    return value


@jit
def _hidden_delta(deltas, acts, below, above, w, w0, n_out, n_in, in_padded, code):
    """δˡ = (Wᵀ δˡ⁺¹) ⊙ f′(aˡ) for one sample; W (n_out, in_padded) at w[w0:]."""
    one = vsplat(ONE)
    for c in range(0, in_padded, LANES):
        acc0 = vzero()
        acc1 = vzero()
        o = 0
        while o + 2 <= n_out:
            acc0 = vfma(acc0, deltas[above + o], vload(w, w0 + o * in_padded + c))
            acc1 = vfma(acc1, deltas[above + o + 1], vload(w, w0 + (o + 1) * in_padded + c))
            o += 2
        if o < n_out:
            acc0 = vfma(acc0, deltas[above + o], vload(w, w0 + o * in_padded + c))
        g = vadd(acc0, acc1)
        a = vload(acts, below + c)
        if code == SOFTMAX:
            vstore(deltas, below + c, g)  # the Jacobian product needs the whole row: below
            continue
        if code == SIGMOID:
            g = vmul(g, vmul(a, vsub(one, a)))
        elif code == RELU:
            g = vmul(g, vpositive(a))
        elif code == TANH:
            g = vmul(g, vsub(one, vmul(a, a)))
        vstore(deltas, below + c, g)
    if code == SOFTMAX:  # δ = a ⊙ (g − ⟨g, a⟩) over the real lanes (padding stays 0)
        dot = ZERO
        for j in range(n_in):
            dot += deltas[below + j] * acts[below + j]
        for j in range(n_in):
            deltas[below + j] = acts[below + j] * (deltas[below + j] - dot)


@jit
def backward_sample(deltas, acts, arow, w, Y, y_row, sizes, activations, loss, pads, w_off,
                    a_off, inv_b):
    """Every layer's δ for one sample (from ``forward_sample``'s acts); returns its loss from a
    (``_output_delta``)."""
    n_layers = sizes.shape[0] - 1
    value = _output_delta(deltas, acts, arow + a_off[n_layers], Y, y_row, sizes[n_layers],
                          pads[n_layers], loss, activations[n_layers - 1], inv_b)
    for layer in range(n_layers - 1, 0, -1):
        _hidden_delta(deltas, acts, arow + a_off[layer], arow + a_off[layer + 1], w,
                      w_off[layer], sizes[layer + 1], sizes[layer], pads[layer],
                      activations[layer - 1])
    return value


@jit
def update_batch(w, bias, acts, deltas, row_width, X, order, start, n_rows, idx, idx_stride,
                 n_nonzero, recompute, sizes, pads, w_off, b_off, a_off, learning_rate):
    """θ ← θ − η Σ_batch ∇ (the deltas already carry 1/B), after the whole batch's backward.

    Layer 0 as one sparse rank-1 update per sample (only the rows of its nonzero inputs),
    from the stored nonzero lists, or found again (``recompute``) for large batches.
    """
    n_layers = sizes.shape[0] - 1
    neg = np.float32(-learning_rate)
    width = pads[1]
    for s in range(n_rows):
        x = X[order[start + s]]
        ibase = s * idx_stride
        count = n_nonzero[s]
        if recompute:
            count = compact_nonzero(idx, x)
        dbase = s * row_width + a_off[1]
        c = 0
        while c + 2 * LANES <= width:  # two vectors per pass: one index load for both
            d_lo = vload(deltas, dbase + c)
            d_hi = vload(deltas, dbase + c + LANES)
            for k in range(count):
                i = idx[ibase + k]
                scale = neg * np.float32(x[i])
                at = i * width + c
                vstore(w, at, vfma(vload(w, at), scale, d_lo))
                vstore(w, at + LANES, vfma(vload(w, at + LANES), scale, d_hi))
            c += 2 * LANES
        if c < width:
            d = vload(deltas, dbase + c)
            for k in range(count):
                i = idx[ibase + k]
                at = i * width + c
                vstore(w, at, vfma(vload(w, at), neg * np.float32(x[i]), d))
    for layer in range(n_layers):
        padded = pads[layer + 1]
        for c in range(0, padded, LANES):
            acc = vzero()
            for s in range(n_rows):
                acc = vadd(acc, vload(deltas, s * row_width + a_off[layer + 1] + c))
            at = b_off[layer] + c
            vstore(bias, at, vfma(vload(bias, at), neg, acc))
    for layer in range(1, n_layers):
        in_padded = pads[layer]
        for o in range(sizes[layer + 1]):
            d_at = a_off[layer + 1] + o
            a_at = a_off[layer]
            for c in range(0, in_padded, LANES):
                acc0 = vzero()
                acc1 = vzero()
                acc2 = vzero()
                acc3 = vzero()
                s = 0
                while s + 4 <= n_rows:
                    r0 = s * row_width
                    r1 = r0 + row_width
                    r2 = r1 + row_width
                    r3 = r2 + row_width
                    acc0 = vfma(acc0, deltas[r0 + d_at], vload(acts, r0 + a_at + c))
                    acc1 = vfma(acc1, deltas[r1 + d_at], vload(acts, r1 + a_at + c))
                    acc2 = vfma(acc2, deltas[r2 + d_at], vload(acts, r2 + a_at + c))
                    acc3 = vfma(acc3, deltas[r3 + d_at], vload(acts, r3 + a_at + c))
                    s += 4
                while s < n_rows:
                    r0 = s * row_width
                    acc0 = vfma(acc0, deltas[r0 + d_at], vload(acts, r0 + a_at + c))
                    s += 1
                at = w_off[layer] + o * in_padded + c
                vstore(w, at, vfma(vload(w, at), neg, vadd(vadd(acc0, acc1), vadd(acc2, acc3))))


@jit_inline
def batch_scratch(sizes, X, order, capacity, row_width):
    """Scratch for batches of up to ``capacity`` rows: activations, deltas, nonzero lists.

    Sparse inputs get one nonzero list per row of the batch (one, rebuilt per row, for
    batches over MAX_STORED_BATCH: ``recompute``); dense inputs one shared list 0..IN-1.
    Returns acts, deltas, idx, idx_stride, n_nonzero, sparse, recompute.
    """
    n_in = sizes[0]
    acts = np.empty(capacity * row_width, np.float32)
    deltas = np.empty(capacity * row_width, np.float32)
    sparse = inputs_are_sparse(X, order)
    recompute = sparse and capacity > MAX_STORED_BATCH
    idx_stride = n_in + 8 if sparse and not recompute else 0
    idx = np.empty(capacity * idx_stride if idx_stride else n_in + 8, np.int32)
    if not sparse:
        for i in range(n_in):
            idx[i] = i
    n_nonzero = np.full(capacity, n_in, np.int64)
    return acts, deltas, idx, idx_stride, n_nonzero, sparse, recompute


@jit_inline
def forward_backward_rows(total, acts, deltas, w, bias, X, Y, order, start, n_rows, idx,
                          idx_stride, n_nonzero, sparse, sizes, activations, loss, pads, w_off,
                          b_off, a_off, row_width, inv_b):
    """Forward and backward of the samples order[start:start + n_rows], sample s into slot
    s of acts/deltas (its δ carrying ``inv_b``); returns ``total`` plus their losses (exact
    from z where ``loss_from_logits``, else from a)."""
    n_in = sizes[0]
    for s in range(n_rows):
        prefetch_sample(X, Y, order, start + s + PREFETCH_AHEAD)
        row = order[start + s]
        x = X[row]
        ibase = s * idx_stride
        if sparse:
            n_nonzero[s] = compact_nonzero(idx[ibase:ibase + n_in + 8], x)
        arow = s * row_width
        # each gives its share of the sample's loss, the other 0 (see loss_from_logits)
        total += forward_sample_loss(acts, arow, w, bias, x, idx[ibase:], n_nonzero[s], Y, row,
                                     sizes, activations, loss, pads, w_off, b_off, a_off)
        total += backward_sample(deltas, acts, arow, w, Y, row, sizes, activations, loss, pads,
                                 w_off, a_off, inv_b)
    return total


@jit_inline
def fused_sgd_epoch(params, sizes, activations, loss, X, Y, order, batch_size, learning_rate):
    """Mini-batch (batch_size ≥ 1) SGD epoch on the fused path; returns the mean loss.

    params (P,) updated in place; X (N, IN), Y (N, OUT), order (N,) int
    """
    n = order.shape[0]
    capacity = max(1, min(batch_size, n))
    pads, w_off, b_off, a_off, row_width, w_total, b_total = fused_layout(sizes)
    w = np.empty(w_total, np.float32)
    bias = np.empty(b_total, np.float32)
    pack_params(w, bias, params, sizes, pads, w_off, b_off)
    acts, deltas, idx, idx_stride, n_nonzero, sparse, recompute = batch_scratch(
        sizes, X, order, capacity, row_width)
    total = ZERO
    for start in range(0, n, capacity):
        n_rows = min(capacity, n - start)
        total = forward_backward_rows(total, acts, deltas, w, bias, X, Y, order, start, n_rows,
                                      idx, idx_stride, n_nonzero, sparse, sizes, activations,
                                      loss, pads, w_off, b_off, a_off, row_width,
                                      ONE / np.float32(n_rows))
        update_batch(w, bias, acts, deltas, row_width, X, order, start, n_rows, idx,
                     idx_stride, n_nonzero, recompute, sizes, pads, w_off, b_off, a_off,
                     learning_rate)
    unpack_params(params, w, bias, sizes, pads, w_off, b_off)
    return total / np.float32(n)


@jit_inline
def fused_optimizer_epoch(params, state, step, sizes, activations, loss, optimizer, hyper, X,
                          Y, order, batch_size):
    """A mini-batch epoch by any optimiser on the fused path; returns the mean loss.

    Every optimiser's update is elementwise, so it runs on the private layout with the
    state packed the same way: padding lanes hold 0 in θ, ∇ and the state, and stay 0.
    A batch's gradient is accumulated GRADIENT_CHUNK rows at a time (bounded scratch for
    any batch size, full batch included), then ``optimizer_step`` applies it.
    params (P,), state (slots, P), step (1,) int64 updated in place; hyper (5,) float32
    """
    n = order.shape[0]
    batch = max(1, min(batch_size, n))
    capacity = min(batch, GRADIENT_CHUNK)
    pads, w_off, b_off, a_off, row_width, w_total, b_total = fused_layout(sizes)
    theta = np.empty(w_total + b_total, np.float32)
    w, bias = theta[:w_total], theta[w_total:]
    pack_params(w, bias, params, sizes, pads, w_off, b_off)
    packed_state = np.empty((state.shape[0], w_total + b_total), np.float32)
    for k in range(state.shape[0]):
        pack_params(packed_state[k, :w_total], packed_state[k, w_total:], state[k], sizes,
                    pads, w_off, b_off)
    grad = np.empty(w_total + b_total, np.float32)
    grad_w, grad_b = grad[:w_total], grad[w_total:]
    acts, deltas, idx, idx_stride, n_nonzero, sparse, recompute = batch_scratch(
        sizes, X, order, capacity, row_width)
    total = ZERO
    for start in range(0, n, batch):
        n_batch = min(batch, n - start)
        inv_b = ONE / np.float32(n_batch)
        grad[:] = 0
        for chunk in range(start, start + n_batch, capacity):
            n_rows = min(capacity, start + n_batch - chunk)
            total = forward_backward_rows(total, acts, deltas, w, bias, X, Y, order, chunk,
                                          n_rows, idx, idx_stride, n_nonzero, sparse, sizes,
                                          activations, loss, pads, w_off, b_off, a_off,
                                          row_width, inv_b)
            # "θ ← θ − (−1)·Σ δ aᵀ" on the zeroed gradient: update_batch accumulates it
            update_batch(grad_w, grad_b, acts, deltas, row_width, X, order, chunk, n_rows, idx,
                         idx_stride, n_nonzero, recompute, sizes, pads, w_off, b_off, a_off,
                         MINUS_ONE)
        optimizer_step(theta, packed_state, step, grad, optimizer, hyper)
    unpack_params(params, w, bias, sizes, pads, w_off, b_off)
    for k in range(state.shape[0]):
        unpack_params(state[k], packed_state[k, :w_total], packed_state[k, w_total:], sizes,
                      pads, w_off, b_off)
    return total / np.float32(n)


@jit_inline
def _row_scratch(n_in, row_width, sparse):
    """One row's activations buffer and input index list for the inference loops: dense
    inputs list every index once, sparse ones are listed row by row (compact_nonzero)."""
    acts = np.empty(row_width, np.float32)
    idx = np.empty(n_in + 8, np.int32)
    if not sparse:
        for i in range(n_in):
            idx[i] = i
    return acts, idx, n_in


@jit
def forward_rows(out, w, bias, X, first, last_row, sparse, sizes, activations, pads, w_off,
                 b_off, a_off, row_width):
    """Output activations of rows [first, last_row) of X into out; own scratch, so calls on
    disjoint row ranges may run at the same time."""
    last = sizes.shape[0] - 1
    acts, idx, n_nonzero = _row_scratch(sizes[0], row_width, sparse)
    for row in range(first, last_row):
        x = X[row]
        if sparse:
            n_nonzero = compact_nonzero(idx, x)
        forward_sample(acts, 0, w, bias, x, idx, n_nonzero, sizes, activations, pads, w_off,
                       b_off, a_off)
        for j in range(sizes[last]):
            out[row, j] = acts[a_off[last] + j]


@jit_parallel
def forward_rows_parallel(out, w, bias, X, sparse, sizes, activations, pads, w_off, b_off,
                          a_off, row_width):
    """``forward_rows`` over all of X in blocks of PARALLEL_ROW_BLOCK rows, across threads."""
    n = X.shape[0]
    n_blocks = (n + PARALLEL_ROW_BLOCK - 1) // PARALLEL_ROW_BLOCK
    for block in prange(n_blocks):
        first = block * PARALLEL_ROW_BLOCK
        forward_rows(out, w, bias, X, first, min(n, first + PARALLEL_ROW_BLOCK), sparse, sizes,
                     activations, pads, w_off, b_off, a_off, row_width)


@jit
def fused_forward(out, params, sizes, activations, X):
    """Output activations for every row of X on the fused path.   X (N, IN) -> out (N, OUT)

    Inference has no sample-to-sample dependence, so from PARALLEL_MIN_ROWS rows on the rows
    are split across threads: one parallel region per call, whose 10–150 µs start-up
    (measured on a busy 2-core machine) is small against thousands of rows.
    """
    n = X.shape[0]
    pads, w_off, b_off, a_off, row_width, w_total, b_total = fused_layout(sizes)
    w = np.empty(w_total, np.float32)
    bias = np.empty(b_total, np.float32)
    pack_params(w, bias, params, sizes, pads, w_off, b_off)
    sparse = inputs_are_sparse(X, np.arange(min(n, DENSITY_ROWS)))
    if n >= PARALLEL_MIN_ROWS:
        forward_rows_parallel(out, w, bias, X, sparse, sizes, activations, pads, w_off, b_off,
                              a_off, row_width)
    else:
        forward_rows(out, w, bias, X, 0, n, sparse, sizes, activations, pads, w_off, b_off,
                     a_off, row_width)


@jit
def evaluate_rows(out, w, bias, X, Y, first, last_row, sparse, sizes, activations, loss, pads,
                  w_off, b_off, a_off, row_width):
    """``forward_rows`` that also returns the sum of the rows' losses, each taken exactly
    from z at its output layer (``loss_from_logits`` pairs only)."""
    last = sizes.shape[0] - 1
    acts, idx, n_nonzero = _row_scratch(sizes[0], row_width, sparse)
    total = ZERO
    for row in range(first, last_row):
        x = X[row]
        if sparse:
            n_nonzero = compact_nonzero(idx, x)
        total += forward_sample_loss(acts, 0, w, bias, x, idx, n_nonzero, Y, row, sizes,
                                     activations, loss, pads, w_off, b_off, a_off)
        for j in range(sizes[last]):
            out[row, j] = acts[a_off[last] + j]
    return total


@jit_parallel
def evaluate_rows_parallel(out, w, bias, X, Y, sparse, sizes, activations, loss, pads, w_off,
                           b_off, a_off, row_width):
    """``evaluate_rows`` over all of X in blocks of PARALLEL_ROW_BLOCK rows, across threads;
    the blocks' sums are added in block order, so the loss does not depend on the threads."""
    n = X.shape[0]
    n_blocks = (n + PARALLEL_ROW_BLOCK - 1) // PARALLEL_ROW_BLOCK
    sums = np.empty(n_blocks, np.float32)
    for block in prange(n_blocks):
        first = block * PARALLEL_ROW_BLOCK
        sums[block] = evaluate_rows(out, w, bias, X, Y, first,
                                    min(n, first + PARALLEL_ROW_BLOCK), sparse, sizes,
                                    activations, loss, pads, w_off, b_off, a_off, row_width)
    total = ZERO
    for block in range(n_blocks):
        total += sums[block]
    return total


@jit
def fused_evaluate(out, params, sizes, activations, loss, X, Y):
    """``fused_forward`` into ``out``, and the mean loss over the rows of X against Y.

    Where ``loss_from_logits``, each row's loss is taken exactly from z at its output layer;
    the other losses (MSE, MAE, mismatched pairs) need only a, and the plain forward pass
    and ``loss_value`` are the faster way to them (no loss carried through the rows).
    X (N, IN), Y (N, OUT) -> out (N, OUT), returns the loss
    """
    if not loss_from_logits(loss, activations[activations.shape[0] - 1]):
        fused_forward(out, params, sizes, activations, X)
        return loss_value(out, Y, loss)
    n = X.shape[0]
    pads, w_off, b_off, a_off, row_width, w_total, b_total = fused_layout(sizes)
    w = np.empty(w_total, np.float32)
    bias = np.empty(b_total, np.float32)
    pack_params(w, bias, params, sizes, pads, w_off, b_off)
    sparse = inputs_are_sparse(X, np.arange(min(n, DENSITY_ROWS)))
    if n >= PARALLEL_MIN_ROWS:
        total = evaluate_rows_parallel(out, w, bias, X, Y, sparse, sizes, activations, loss,
                                       pads, w_off, b_off, a_off, row_width)
    else:
        total = evaluate_rows(out, w, bias, X, Y, 0, n, sparse, sizes, activations, loss, pads,
                              w_off, b_off, a_off, row_width)
    return total / np.float32(n)


@jit
def fused_gradient(grads, params, sizes, activations, loss, X, Y):
    """∇ of the mean loss over all rows of X, and that loss, on the fused path.

    Rows go through in chunks of GRADIENT_CHUNK with the same weights; each chunk's
    Σ δ aᵀ (δ carrying 1/N) is added into the gradient in the private layout, which is then
    written to ``grads`` in the flat layout (every entry overwritten).
    params (P,), X (N, IN), Y (N, OUT) -> grads (P,), returns the loss
    """
    n = X.shape[0]
    capacity = max(1, min(n, GRADIENT_CHUNK))
    pads, w_off, b_off, a_off, row_width, w_total, b_total = fused_layout(sizes)
    w = np.empty(w_total, np.float32)
    bias = np.empty(b_total, np.float32)
    pack_params(w, bias, params, sizes, pads, w_off, b_off)
    grad_w = np.zeros(w_total, np.float32)
    grad_b = np.zeros(b_total, np.float32)
    order = np.arange(n)
    # capacity ≤ GRADIENT_CHUNK ≤ MAX_STORED_BATCH: per-row nonzero lists, never recompute
    acts, deltas, idx, idx_stride, n_nonzero, sparse, recompute = batch_scratch(
        sizes, X, order, capacity, row_width)
    inv_n = ONE / np.float32(n)
    total = ZERO
    for start in range(0, n, capacity):
        n_rows = min(capacity, n - start)
        total = forward_backward_rows(total, acts, deltas, w, bias, X, Y, order, start, n_rows,
                                      idx, idx_stride, n_nonzero, sparse, sizes, activations,
                                      loss, pads, w_off, b_off, a_off, row_width, inv_n)
        # "θ ← θ − (−1)·Σ δ aᵀ" on zeroed buffers: the same kernel accumulates the gradient
        update_batch(grad_w, grad_b, acts, deltas, row_width, X, order, start, n_rows, idx,
                     idx_stride, n_nonzero, recompute, sizes, pads, w_off, b_off, a_off,
                     MINUS_ONE)
    unpack_params(grads, grad_w, grad_b, sizes, pads, w_off, b_off)
    return total * inv_n
