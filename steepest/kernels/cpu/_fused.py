"""The fast path inside the CPU training loops: each sample goes through the whole network
while it is hot in cache, with 16-lane vector accumulators held in registers.

* The parameters are repacked once per call into the padded layout of ``_layout.py`` and
  copied back at the end; one ``Layout`` value (sizes, codes, offsets) travels with them.
  The first layer walks only the **nonzero** inputs of a row when the data is sparse
  (81% of MNIST pixels are 0, and skipping them is exact).
* Mini-batch semantics are kept exactly: every sample of a batch is run forward and backward
  with the weights as they were at the start of the batch, and the update θ ← θ − η·mean ∇
  is applied once the batch is done (layer 0 as one sparse rank-1 update per sample).
* The maths (activations, derivatives, losses, output deltas) is ``_maths.py``'s, applied
  to 16 lanes at a time where it is elementwise (σ then uses ``_simd.vexp``, within 2 ulp;
  ReLU and identity are exact) and element by element otherwise (tanh, softmax, losses).
* The loss is taken at the output layer's forward step, while its pre-activations z are
  still there: softmax + cross-entropy and sigmoid + binary cross-entropy from z, exact
  (``reference._output_loss``), every other pair from the activations.

It serves every CPU training loop (``loops.py``, ``optimizer_loops.py``) and the
whole-network ``network_forward`` / ``network_evaluate`` / ``network_gradient``.  How it
fits with the rest: ``kernels/DESIGN.md``.
"""

from collections import namedtuple

import numpy as np
from numba import types
from numba.extending import overload

from ..codes import HYPER_L2, RELU, SIGMOID, SOFTMAX, TANH
from ._inputs import (
    DENSITY_ROWS,
    input_value,
    inputs_are_sparse,
    is_dense,
    longest_row,
    n_samples,
    prefetch_sample,
    sample_inputs,
)
from ._jit import (
    JIT_OPTIONS,
    NO_REFCOUNT_OPTIONS,
    jit,
    jit_inline,
    jit_no_refcount,
    jit_true_division,
)
from ._layout import fused_layout, pack_params, unpack_params
from ._maths import (
    ONE,
    ZERO,
    activate_backward,
    check_activations,
    check_loss,
    log_one_plus_exp_minus_abs,
    loss_from_logits,
    output_delta_row,
    relu,
    row_max,
    sigmoid,
    softmax_backward_in_place,
    softmax_cross_entropy_from_logits,
    softmax_in_place,
    softplus_minus_linear,
    tanh,
)
from ._simd import (
    LANES,
    vadd,
    vfma,
    vload,
    vmuladd,
    vstore,
    vsum,
    vzero,
)
from .optimizers import hyper_slot, l2_penalty, optimizer_step

MINUS_ONE = np.float32(-1.0)

MAX_STORED_BATCH = 256  # larger batches find their nonzeros again for the update
# Inference on this many rows splits them across threads, in blocks of PARALLEL_ROW_BLOCK
# rows (``network.py``).  Small enough for each of fit's eight blocks of training-accuracy
# rows (1,250 each, from 12,500 rows up) to be shared: W3's took 3.1 ms each on one thread,
# a thread's start costs about 0.1 ms.  The blocks are a fixed size, so a loss summed over
# them does not depend on the threads.
PARALLEL_MIN_ROWS = 1024
PARALLEL_ROW_BLOCK = 128
PREFETCH_AHEAD = 4      # samples ahead whose input row is requested from memory
GRADIENT_CHUNK = 256    # rows per pass when a gradient is accumulated: bounds the scratch
INFERENCE_CHUNK = 32    # rows per pass of inference (evaluate_rows): their z¹ and lists in L1/L2
INFERENCE_TILE = 128    # columns of Wᵀ⁰ per pass over a chunk: 784 rows × 512 B in a core's L2

# Per-batch scratch of the training kernels (``batch_scratch``): slot s of acts/deltas holds
# sample s's activations/deltas (Layout.row_width floats each); for dense X read sparsely,
# idx its listed input positions (``_inputs.sample_inputs``) at s * stride, n_nonzero[s]
# their count; ``stored``: the update reads those lists back, else it asks sample_inputs
# again (sparse rows: free; dense rows: one shared 0..IN-1 list, or, for batches too large to
# store the lists, found again row by row).
# losses: the tiled passes' per-sample losses (two per slot), added up in sample order;
# col_ptr, col_slots, col_values: their column lists, the batch's inputs listed by position
# (input i's samples at col_ptr[i] to col_ptr[i + 1]), col_cursor their counting sort's
# work space (``_tiled._count_block_columns``), col_deltas each update job's copy of 32
# columns of the batch's δ¹ (``_tiled._update_first_layer_job``); all empty on the fused path.
Scratch = namedtuple("Scratch", "acts deltas idx stride n_nonzero sparse stored losses "
                     "col_ptr col_slots col_values col_cursor col_deltas")


@jit_no_refcount
def _activate(acts, base, n, padded, code):
    """f(z) in place on acts[base:base + padded]; the padding lanes are then set to 0."""
    if code == SIGMOID:
        for c in range(0, padded, LANES):
            vstore(acts, base + c, sigmoid(vload(acts, base + c)))
    elif code == RELU:
        for c in range(0, padded, LANES):
            vstore(acts, base + c, relu(vload(acts, base + c)))
    elif code == TANH:
        for j in range(n):
            acts[base + j] = tanh(acts[base + j])
    elif code == SOFTMAX:
        softmax_in_place(acts, base, n, row_max(acts, base, n))
    for j in range(n, padded):
        acts[base + j] = ZERO


@jit_no_refcount
def _sigmoid_binary_cross_entropy(acts, base, n, padded, code, Y, y_row):
    """σ(z) in place on acts[base:base + n] (``code`` is SIGMOID's: passed on, not written
    as a constant, so that ``_activate`` is not compiled a second time for a literal), and
    the sample's exact binary cross-entropy against target row Y[y_row],
    Σᵢ softplus(zᵢ) − yᵢzᵢ = Σᵢ [max(zᵢ, 0) − yᵢzᵢ] + log(1 + e^{−|zᵢ|}): the first part
    read from z before σ overwrites it, the second from a (the vector σ's own exp serves).
    """
    value = ZERO
    for j in range(n):
        value += softplus_minus_linear(acts[base + j], np.float32(Y[y_row, j]))
    _activate(acts, base, n, padded, code)
    for j in range(n):
        value += log_one_plus_exp_minus_abs(acts[base + j])
    return value


@jit_inline
def _activate_output(acts, base, n, padded, code, loss, Y, y_row):
    """The output layer's f(z) in place, as ``_activate``; returns the sample's exact loss
    against target row Y[y_row], from z where ``loss_from_logits`` (taken before z is
    overwritten), else 0 (the loss is then one of a: ``_output_delta``'s).
    """
    if not loss_from_logits(loss, code):
        _activate(acts, base, n, padded, code)
        return ZERO
    if code == SIGMOID:
        return _sigmoid_binary_cross_entropy(acts, base, n, padded, code, Y, y_row)
    value = softmax_cross_entropy_from_logits(acts, base, n, Y, y_row)
    for j in range(n, padded):
        acts[base + j] = ZERO
    return value


@jit_no_refcount
def first_layer_forward(acts, base, w, bias, values, idx, n_nonzero, stride, b0, c_start,
                        c_end):
    """z¹[c_start:c_end] = b + Σ_k xₖ·Wᵀ[idx[k]] over the sample's listed inputs, xₖ =
    ``input_value`` (``_inputs.sample_inputs``), 32 lanes (two vectors) per pass; Wᵀ's rows
    are ``stride`` floats apart.  The fused path asks for all columns (0, pads[1]); the
    tiled passes (``_tiled.py``) for one tile, c_start a multiple of 32, so the passes, and
    the bits, are the same.

    Two passes' worth of lanes share each index and input load; two accumulator chains per
    vector hide the FMA latency.  A width of 16 (or an odd last 16) takes the one-vector
    loop with four chains.
    """
    c = c_start
    while c + 2 * LANES <= c_end:
        lo0 = vload(bias, b0 + c)
        hi0 = vload(bias, b0 + c + LANES)
        lo1 = vzero()
        hi1 = vzero()
        k = 0
        while k + 2 <= n_nonzero:
            i0 = idx[k]
            i1 = idx[k + 1]
            v0 = np.float32(input_value(values, idx, k))
            v1 = np.float32(input_value(values, idx, k + 1))
            lo0 = vfma(lo0, v0, vload(w, i0 * stride + c))
            hi0 = vfma(hi0, v0, vload(w, i0 * stride + c + LANES))
            lo1 = vfma(lo1, v1, vload(w, i1 * stride + c))
            hi1 = vfma(hi1, v1, vload(w, i1 * stride + c + LANES))
            k += 2
        if k < n_nonzero:
            i0 = idx[k]
            v0 = np.float32(input_value(values, idx, k))
            lo0 = vfma(lo0, v0, vload(w, i0 * stride + c))
            hi0 = vfma(hi0, v0, vload(w, i0 * stride + c + LANES))
        vstore(acts, base + c, vadd(lo0, lo1))
        vstore(acts, base + c + LANES, vadd(hi0, hi1))
        c += 2 * LANES
    if c < c_end:
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
            v0 = np.float32(input_value(values, idx, k))
            v1 = np.float32(input_value(values, idx, k + 1))
            v2 = np.float32(input_value(values, idx, k + 2))
            v3 = np.float32(input_value(values, idx, k + 3))
            acc0 = vfma(acc0, v0, vload(w, i0 * stride + c))
            acc1 = vfma(acc1, v1, vload(w, i1 * stride + c))
            acc2 = vfma(acc2, v2, vload(w, i2 * stride + c))
            acc3 = vfma(acc3, v3, vload(w, i3 * stride + c))
            k += 4
        while k < n_nonzero:
            i0 = idx[k]
            v0 = np.float32(input_value(values, idx, k))
            acc0 = vfma(acc0, v0, vload(w, i0 * stride + c))
            k += 1
        vstore(acts, base + c, vadd(vadd(acc0, acc1), vadd(acc2, acc3)))


@jit_no_refcount
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


# Four samples at a time through a later layer (the tiled passes and inference, which hold
# many samples): W's rows are loaded once for the four, and the four samples' accumulator
# chains interleave, where one sample's two chains wait on the FMA latency (784-128-64-10's
# 128 -> 64 forward took 2,300 cycles a sample).  Each sample's chains and sums are the
# one-sample functions' (``_dense_forward_row``, ``_hidden_delta``), so are its bits.
# Samples sit ``row_width`` floats apart from ``arow``; with n < 4 the last sample stands
# in for the missing ones (the same values computed and stored again).

@jit_inline
def _four_bases(arow, row_width, n):
    return (arow, arow + min(1, n - 1) * row_width, arow + min(2, n - 1) * row_width,
            arow + min(3, n - 1) * row_width)


@jit_no_refcount
def _dense_forward_four(acts, arow, row_width, n, out_off, in_off, w, w0, bias, b0, n_out,
                        in_padded):
    """``_dense_forward_row`` for up to four samples (see above)."""
    r0, r1, r2, r3 = _four_bases(arow, row_width, n)
    for o in range(n_out):
        a0 = vzero()
        b0_ = vzero()
        a1 = vzero()
        b1 = vzero()
        a2 = vzero()
        b2 = vzero()
        a3 = vzero()
        b3 = vzero()
        row = w0 + o * in_padded
        c = 0
        while c + 2 * LANES <= in_padded:
            lo = vload(w, row + c)
            hi = vload(w, row + c + LANES)
            a0 = vmuladd(a0, lo, vload(acts, r0 + in_off + c))
            b0_ = vmuladd(b0_, hi, vload(acts, r0 + in_off + c + LANES))
            a1 = vmuladd(a1, lo, vload(acts, r1 + in_off + c))
            b1 = vmuladd(b1, hi, vload(acts, r1 + in_off + c + LANES))
            a2 = vmuladd(a2, lo, vload(acts, r2 + in_off + c))
            b2 = vmuladd(b2, hi, vload(acts, r2 + in_off + c + LANES))
            a3 = vmuladd(a3, lo, vload(acts, r3 + in_off + c))
            b3 = vmuladd(b3, hi, vload(acts, r3 + in_off + c + LANES))
            c += 2 * LANES
        if c < in_padded:
            lo = vload(w, row + c)
            a0 = vmuladd(a0, lo, vload(acts, r0 + in_off + c))
            a1 = vmuladd(a1, lo, vload(acts, r1 + in_off + c))
            a2 = vmuladd(a2, lo, vload(acts, r2 + in_off + c))
            a3 = vmuladd(a3, lo, vload(acts, r3 + in_off + c))
        b = bias[b0 + o]
        acts[r0 + out_off + o] = b + vsum(vadd(a0, b0_))
        acts[r1 + out_off + o] = b + vsum(vadd(a1, b1))
        acts[r2 + out_off + o] = b + vsum(vadd(a2, b2))
        acts[r3 + out_off + o] = b + vsum(vadd(a3, b3))


@jit_no_refcount
def forward_later_layers_four(acts, arow, row_width, n, w, bias, net):
    """``forward_later_layers`` for the n ≤ 4 samples at arow, arow + row_width, ..."""
    for layer in range(1, net.sizes.shape[0] - 1):
        for r in range(n):
            _activate(acts, arow + r * row_width + net.a_off[layer], net.sizes[layer],
                      net.pads[layer], net.activations[layer - 1])
        _dense_forward_four(acts, arow, row_width, n, net.a_off[layer + 1], net.a_off[layer],
                            w, net.w_off[layer], bias, net.b_off[layer], net.sizes[layer + 1],
                            net.pads[layer])


@jit_inline
def forward_logits(acts, arow, w, bias, values, idx, n_nonzero, net):
    """Every layer's activations for one sample (its listed inputs), into
    acts[arow:arow + row width], except the output layer's: it is left as its
    pre-activations z (the loss may need them).

    Returns z¹₀, the first unit's pre-activation, which is NaN or ±inf whenever an input is
    (b + Σ x·w with finite weights: NaN·w, ±inf·0 and inf − inf are NaN, ±inf·w is ±inf).
    The activations may lose that (ReLU's max(0, NaN) is 0, σ(±inf) is finite), so the
    inference loops add z¹₀·0 to what they return: a bad input always shows in its row.
    """
    # np.int64(0), not 0: a literal argument compiles a specialisation of its own
    first_layer_forward(acts, arow + net.a_off[1], w, bias, values, idx, n_nonzero,
                        net.w0_stride, net.b_off[0], np.int64(0), net.pads[1])
    first = acts[arow + net.a_off[1]]
    forward_later_layers(acts, arow, w, bias, net)
    return first


@jit_inline
def forward_later_layers(acts, arow, w, bias, net):
    """From z¹ (in acts) on: every layer's activations but the output's, left as its z."""
    for layer in range(1, net.sizes.shape[0] - 1):
        _activate(acts, arow + net.a_off[layer], net.sizes[layer], net.pads[layer],
                  net.activations[layer - 1])
        _dense_forward_row(acts, arow + net.a_off[layer + 1], arow + net.a_off[layer], w,
                           net.w_off[layer], bias, net.b_off[layer], net.sizes[layer + 1],
                           net.pads[layer])


@jit_no_refcount
def forward_sample(acts, arow, w, bias, values, idx, n_nonzero, net):
    """Every layer's activations for one sample (its listed inputs), into
    acts[arow:arow + row width]; returns z¹₀ (``forward_logits``)."""
    first = forward_logits(acts, arow, w, bias, values, idx, n_nonzero, net)
    last = net.sizes.shape[0] - 1
    _activate(acts, arow + net.a_off[last], net.sizes[last], net.pads[last],
              net.activations[last - 1])
    return first


@jit_inline
def forward_sample_loss(acts, arow, w, bias, values, idx, n_nonzero, Y, y_row, net, loss):
    """``forward_sample``, returning the sample's exact loss against target row Y[y_row] where
    ``loss_from_logits`` (else 0, see ``_activate_output``), NaN for a bad input
    (``forward_logits``: + z¹₀·0, which adds nothing to a finite loss)."""
    first = forward_logits(acts, arow, w, bias, values, idx, n_nonzero, net)
    return output_loss(acts, arow, first, Y, y_row, net, loss)


@jit_inline
def output_loss(acts, arow, first, Y, y_row, net, loss):
    """The output layer's f(z) in place and the sample's loss as ``forward_sample_loss``
    returns it (``first``: z¹₀, so that a bad input makes it NaN)."""
    last = net.sizes.shape[0] - 1
    return _activate_output(acts, arow + net.a_off[last], net.sizes[last], net.pads[last],
                            net.activations[last - 1], loss, Y, y_row) + first * ZERO


@jit_no_refcount
def _output_delta(deltas, acts, base, Y, y_row, n_out, padded, loss, code, inv_b):
    """δᴸ for one sample (with the batch's 1/B), written at deltas[base:]; returns its loss
    from a, log losses clamped as in ``loss_value``, or 0 where ``loss_from_logits`` (that
    loss was taken exactly from z by ``_activate_output``).  The padding lanes get 0."""
    value = output_delta_row(deltas, base, acts, base, Y, y_row, n_out, loss, code, inv_b)
    for j in range(n_out, padded):
        deltas[base + j] = ZERO
    return value


@jit_no_refcount
def _hidden_delta(deltas, acts, below, above, w, w0, n_out, n_in, in_padded, code):
    """δˡ = (Wᵀ δˡ⁺¹) ⊙ f′(aˡ) for one sample; W (n_out, in_padded) at w[w0:]."""
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
        _store_hidden_delta(deltas, acts, below + c, vadd(acc0, acc1), code)
    if code == SOFTMAX:  # over the real lanes (padding stays 0)
        softmax_backward_in_place(deltas, below, acts, below, n_in)


@jit_no_refcount
def _hidden_delta_four(deltas, acts, arow, row_width, n, below_off, above_off, w, w0, n_out,
                       n_in, in_padded, code):
    """``_hidden_delta`` for up to four samples (see ``_dense_forward_four``)."""
    r0, r1, r2, r3 = _four_bases(arow, row_width, n)
    for c in range(0, in_padded, LANES):
        a0 = vzero()
        b0 = vzero()
        a1 = vzero()
        b1 = vzero()
        a2 = vzero()
        b2 = vzero()
        a3 = vzero()
        b3 = vzero()
        o = 0
        while o + 2 <= n_out:
            even = vload(w, w0 + o * in_padded + c)
            odd = vload(w, w0 + (o + 1) * in_padded + c)
            a0 = vfma(a0, deltas[r0 + above_off + o], even)
            b0 = vfma(b0, deltas[r0 + above_off + o + 1], odd)
            a1 = vfma(a1, deltas[r1 + above_off + o], even)
            b1 = vfma(b1, deltas[r1 + above_off + o + 1], odd)
            a2 = vfma(a2, deltas[r2 + above_off + o], even)
            b2 = vfma(b2, deltas[r2 + above_off + o + 1], odd)
            a3 = vfma(a3, deltas[r3 + above_off + o], even)
            b3 = vfma(b3, deltas[r3 + above_off + o + 1], odd)
            o += 2
        if o < n_out:
            even = vload(w, w0 + o * in_padded + c)
            a0 = vfma(a0, deltas[r0 + above_off + o], even)
            a1 = vfma(a1, deltas[r1 + above_off + o], even)
            a2 = vfma(a2, deltas[r2 + above_off + o], even)
            a3 = vfma(a3, deltas[r3 + above_off + o], even)
        _store_hidden_delta(deltas, acts, r0 + below_off + c, vadd(a0, b0), code)
        _store_hidden_delta(deltas, acts, r1 + below_off + c, vadd(a1, b1), code)
        _store_hidden_delta(deltas, acts, r2 + below_off + c, vadd(a2, b2), code)
        _store_hidden_delta(deltas, acts, r3 + below_off + c, vadd(a3, b3), code)
    if code == SOFTMAX:  # in place, so once per sample
        for r in range(n):
            base = arow + r * row_width + below_off
            softmax_backward_in_place(deltas, base, acts, base, n_in)


@jit_inline
def _store_hidden_delta(deltas, acts, at, g, code):
    """δ[at:at + 16] = g ⊙ f′(a[at:at + 16]); softmax's δ is stored as g, its Jacobian needs
    the whole row (the callers apply it after the row is done)."""
    # a is loaded on every path, softmax's too: numba then drops its reference counting of
    # acts on entry and exit (with the load inside the branch it did not, and each call
    # paid six atomic operations)
    a = vload(acts, at)
    if code != SOFTMAX:
        g = activate_backward(g, a, code)
    vstore(deltas, at, g)


@jit_no_refcount
def backward_samples_four(deltas, acts, arow, row_width, n, w, Y, order, start, s0, net,
                          loss, inv_b, losses):
    """``backward_sample`` for the n ≤ 4 samples s0, s0 + 1, ... at arow, arow + row_width,
    ... (rows order[start + s] of Y); sample s's loss from a into losses[2 s + 1]."""
    n_layers = net.sizes.shape[0] - 1
    for r in range(n):
        base = arow + r * row_width + net.a_off[n_layers]
        losses[2 * (s0 + r) + 1] = _output_delta(
            deltas, acts, base, Y, order[start + s0 + r], net.sizes[n_layers],
            net.pads[n_layers], loss, net.activations[n_layers - 1], inv_b)
    for layer in range(n_layers - 1, 0, -1):
        _hidden_delta_four(deltas, acts, arow, row_width, n, net.a_off[layer],
                           net.a_off[layer + 1], w, net.w_off[layer], net.sizes[layer + 1],
                           net.sizes[layer], net.pads[layer], net.activations[layer - 1])


@jit_no_refcount
def backward_sample(deltas, acts, arow, w, Y, y_row, net, loss, inv_b):
    """Every layer's δ for one sample (from ``forward_sample``'s acts) against target row
    Y[y_row]; returns its loss from a (``_output_delta``)."""
    n_layers = net.sizes.shape[0] - 1
    value = _output_delta(deltas, acts, arow + net.a_off[n_layers], Y, y_row,
                          net.sizes[n_layers], net.pads[n_layers], loss,
                          net.activations[n_layers - 1], inv_b)
    for layer in range(n_layers - 1, 0, -1):
        _hidden_delta(deltas, acts, arow + net.a_off[layer], arow + net.a_off[layer + 1], w,
                      net.w_off[layer], net.sizes[layer + 1], net.sizes[layer],
                      net.pads[layer], net.activations[layer - 1])
    return value


def stored_inputs(X, row, scratch, s):
    """Sample s's (values, positions, n) for the update after the batch (``Scratch``)."""
    raise NotImplementedError("compiled only: call from @njit code")


@overload(stored_inputs, jit_options=JIT_OPTIONS, inline="always")
def _stored_inputs_impl(X, row, scratch, s):
    if isinstance(X, types.Array):
        def dense(X, row, scratch, s):
            if scratch.stored:
                at = s * scratch.stride
                return (X[row],), scratch.idx[at:], scratch.n_nonzero[s]
            return sample_inputs(X, row, scratch.idx, scratch.sparse)
        return dense
    return lambda X, row, scratch, s: sample_inputs(X, row, scratch.idx, scratch.sparse)


@jit_inline
def _update_first_layer(w, scratch, X, order, start, n_rows, net, neg):
    """Wᵀ⁰ += neg · x δ¹ᵀ per sample: a sparse rank-1 update of the rows of its listed
    inputs (``stored_inputs``)."""
    for s in range(n_rows):
        values, idx, count = stored_inputs(X, order[start + s], scratch, s)
        update_first_layer_row(w, scratch.deltas, s * net.row_width + net.a_off[1], values,
                               idx, count, net.w0_stride, 0, net.pads[1], neg)


@jit_inline
def update_first_layer_row(w, deltas, dbase, values, idx, count, stride, c_start, c_end, neg):
    """One sample's Wᵀ⁰[i, c_start:c_end] += neg · xᵢ δ¹[c_start:c_end] for its listed
    inputs i, Wᵀ⁰'s rows ``stride`` apart (the fused path: all columns; the tiled passes,
    ``_tiled.py``: one tile, c_start a multiple of 16; each entry's update is one FMA, so
    the bits do not depend on the tiles)."""
    c = c_start
    while c + 2 * LANES <= c_end:  # two vectors per pass: one index load for both
        d_lo = vload(deltas, dbase + c)
        d_hi = vload(deltas, dbase + c + LANES)
        for k in range(count):
            scale = neg * np.float32(input_value(values, idx, k))
            at = idx[k] * stride + c
            vstore(w, at, vfma(vload(w, at), scale, d_lo))
            vstore(w, at + LANES, vfma(vload(w, at + LANES), scale, d_hi))
        c += 2 * LANES
    if c < c_end:
        d = vload(deltas, dbase + c)
        for k in range(count):
            at = idx[k] * stride + c
            value = np.float32(input_value(values, idx, k))
            vstore(w, at, vfma(vload(w, at), neg * value, d))


@jit_inline
def update_biases(bias, deltas, n_rows, net, neg):
    """bˡ += neg · Σ_batch δˡ, every layer."""
    for layer in range(net.sizes.shape[0] - 1):
        for c in range(0, net.pads[layer + 1], LANES):
            acc = vzero()
            for s in range(n_rows):
                acc = vadd(acc, vload(deltas, s * net.row_width + net.a_off[layer + 1] + c))
            at = net.b_off[layer] + c
            vstore(bias, at, vfma(vload(bias, at), neg, acc))


@jit_inline
def _update_later_layers(w, acts, deltas, n_rows, net, neg):
    """Wˡ += neg · Σ_batch δˡ (aˡ⁻¹)ᵀ for l ≥ 1, row by row."""
    for layer in range(1, net.sizes.shape[0] - 1):
        for o in range(net.sizes[layer + 1]):
            update_weight_row(w, acts, deltas, n_rows, net, layer, o, neg)


@jit_inline
def update_weight_row(w, acts, deltas, n_rows, net, layer, o, neg):
    """Row o of Wˡ (l ≥ 1) += neg · Σ_batch δˡ[o] aˡ⁻¹, four samples' terms in flight per
    lane."""
    row_width = net.row_width
    in_padded = net.pads[layer]
    d_at = net.a_off[layer + 1] + o
    a_at = net.a_off[layer]
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
        at = net.w_off[layer] + o * in_padded + c
        vstore(w, at, vfma(vload(w, at), neg, vadd(vadd(acc0, acc1), vadd(acc2, acc3))))


@jit_no_refcount
def update_batch(w, bias, scratch, X, order, start, n_rows, net, learning_rate):
    """θ ← θ − η Σ_batch ∇ (the deltas already carry 1/B), after the whole batch's backward."""
    neg = np.float32(-learning_rate)
    _update_first_layer(w, scratch, X, order, start, n_rows, net, neg)
    update_biases(bias, scratch.deltas, n_rows, net, neg)
    _update_later_layers(w, scratch.acts, scratch.deltas, n_rows, net, neg)


@jit_inline
def batch_scratch(net, X, sparse, capacity, tiles):
    """``Scratch`` for batches of up to ``capacity`` rows: activations, deltas, input lists.

    Dense X read sparsely gets one list per row of the batch (one, rebuilt per row, for
    batches over MAX_STORED_BATCH on the fused path; the tiled passes, which read each
    list once per tile, always store them); dense X read densely one shared list 0..IN-1;
    ``SparseRows`` none (its rows are their own lists).
    """
    n_in = net.sizes[0]
    acts = np.empty(capacity * net.row_width, np.float32)
    deltas = np.empty(capacity * net.row_width, np.float32)
    stored = is_dense(X) and sparse and (capacity <= MAX_STORED_BATCH or is_tiled(tiles))
    stride = n_in + 8 if stored else 0
    slots = capacity if stored else 1
    idx = np.empty(slots * (n_in + 8), np.int32)
    for i in range(n_in):
        idx[i] = i
    n_nonzero = np.full(capacity, n_in, np.int64)
    losses = np.empty(2 * capacity, np.float32)
    n_blocks, room, n_update_jobs = column_room(tiles, net, X, capacity)
    col_ptr = np.empty(n_in + 1 if room else 0, np.int64)
    col_slots = np.empty(room, np.int32)
    col_values = np.empty(room, np.float32)
    col_cursor = np.empty(n_blocks * n_in, np.int64)
    col_deltas = np.empty(n_update_jobs * capacity * 2 * LANES, np.float32)
    return Scratch(acts, deltas, idx, stride, n_nonzero, sparse, stored, losses, col_ptr,
                   col_slots, col_values, col_cursor, col_deltas)


# --- the per-batch passes, chosen when numba compiles by the type of ``tiles``: None, the
# per-sample passes above, on one thread; a ``_tiled.Tiles`` value, the same arithmetic as
# tiled passes across threads (``_tiled.py``, imported when numba compiles one: it builds
# on this module).  So a fused-only loop never compiles the parallel code.

def is_tiled(tiles):
    """Whether ``tiles`` selects the tiled passes (a constant where numba compiles it)."""
    raise NotImplementedError("compiled only: call from @njit code")


@overload(is_tiled, jit_options=JIT_OPTIONS)
def _is_tiled_impl(tiles):
    tiled = not isinstance(tiles, types.NoneType)
    return lambda tiles: tiled


def column_room(tiles, net, X, capacity):
    """(blocks of samples, entries, update jobs) of the tiled passes' column lists for
    batches of up to ``capacity`` rows, room for the longest rows; zeros on the fused
    path."""
    raise NotImplementedError("compiled only: call from @njit code")


@overload(column_room, jit_options=JIT_OPTIONS)
def _column_room_impl(tiles, net, X, capacity):
    if isinstance(tiles, types.NoneType):
        return lambda tiles, net, X, capacity: (0, 0, 0)

    def tiled(tiles, net, X, capacity):
        return ((capacity + tiles.block - 1) // tiles.block, capacity * longest_row(X),
                (net.pads[1] + tiles.update - 1) // tiles.update)
    return tiled


def batch_step(tiles, total, scratch, w, bias, update_w, update_b, X, Y, order, start, n_rows,
               net, loss, inv_b, learning_rate):
    """A batch's rows forward and backward at the weights (w, bias), their losses added to
    ``total`` (returned), then (update_w, update_b) −= η Σ_batch δ aᵀ (the δ carry
    ``inv_b``): ``forward_backward_rows`` then ``update_batch`` on the fused path.  One
    compiled function for both halves: on the tiled path each half calls the one parallel
    loop (``_tiled._run_jobs``), and a function of its own per half would link and optimise
    that loop twice (issue 14).

    Compiled without reference counting (``_jit.jit_no_refcount``): it takes some forty
    arrays (the scratch's, the layout's, X's), and numba counted a reference to each on entry
    and let it go on exit, some eighty atomic operations per batch, each a full memory
    barrier that waits for the batch's stores.  For a batch of one that was most of
    per-sample training: W2's epoch on one thread took 87 ms with them, 31-43 ms without
    (MNIST's 50,000 rows as ``SparseRows``; 97 and 46-60 ms dense); ``fit(epochs=1)``
    95-108 ms, then 60-67 (``tests/test_refcounts.py`` holds it there).
    """
    raise NotImplementedError("compiled only: call from @njit code")


@overload(batch_step, jit_options=NO_REFCOUNT_OPTIONS)
def _batch_step_impl(tiles, total, scratch, w, bias, update_w, update_b, X, Y, order, start,
                     n_rows, net, loss, inv_b, learning_rate):
    if isinstance(tiles, types.NoneType):
        def fused(tiles, total, scratch, w, bias, update_w, update_b, X, Y, order, start,
                  n_rows, net, loss, inv_b, learning_rate):
            total = forward_backward_rows(total, scratch, w, bias, X, Y, order, start, n_rows,
                                          net, loss, inv_b)
            update_batch(update_w, update_b, scratch, X, order, start, n_rows, net,
                         learning_rate)
            return total
        return fused
    from ._tiled import tiled_rows, tiled_update

    def tiled(tiles, total, scratch, w, bias, update_w, update_b, X, Y, order, start, n_rows,
              net, loss, inv_b, learning_rate):
        total = tiled_rows(tiles, total, scratch, w, bias, X, Y, order, start, n_rows, net,
                           loss, inv_b)
        tiled_update(tiles, update_w, update_b, scratch, X, Y, order, start, n_rows, net, loss,
                     learning_rate)
        return total
    return tiled


@jit_inline
def forward_backward_rows(total, scratch, w, bias, X, Y, order, start, n_rows, net, loss,
                          inv_b):
    """Forward and backward of the samples order[start:start + n_rows], sample s into slot
    s of the scratch (its δ carrying ``inv_b``); returns ``total`` plus their losses (exact
    from z where ``loss_from_logits``, else from a)."""
    acts, deltas = scratch.acts, scratch.deltas
    for s in range(n_rows):
        prefetch_sample(X, Y, order, start + s + PREFETCH_AHEAD)
        row = order[start + s]
        at = s * scratch.stride
        values, idx, n = sample_inputs(X, row, scratch.idx[at:], scratch.sparse)
        scratch.n_nonzero[s] = n
        arow = s * net.row_width
        # each gives its share of the sample's loss, the other 0 (see loss_from_logits)
        total += forward_sample_loss(acts, arow, w, bias, values, idx, n, Y, row, net, loss)
        total += backward_sample(deltas, acts, arow, w, Y, row, net, loss, inv_b)
    return total


@jit_inline
def _packed(params, net):
    """params in the padded layout: one vector θ = [weights | biases], and its two parts."""
    theta = np.empty(net.w_total + net.b_total, np.float32)
    w, bias = theta[:net.w_total], theta[net.w_total:]
    pack_params(w, bias, params, net)
    return theta, w, bias


@jit_inline
def fused_sgd_epoch(params, sizes, activations, loss, X, Y, order, batch_size, learning_rate,
                    tiles, probe):
    """Mini-batch (batch_size ≥ 1) SGD epoch on the fused path; returns the mean loss.
    ``tiles``: None, or the tiled passes' ``_tiled.Tiles`` (``batch_step``).

    With a (P,) ``probe`` (else an empty array), no epoch: the gradient of the mean loss
    over all rows of X at ``params`` goes into it and that loss is returned, by the same
    steps and so with the same bits as ``fused_gradient`` (fit's gradient probe run by the
    epoch's compiled loop, ``loops.py``): GRADIENT_CHUNK rows per batch step, each adding
    its Σ δ aᵀ (δ carrying 1/N) into a zeroed gradient ("θ ← θ − (−1)·Σ δ aᵀ").

    params (P,) updated in place; X (N, IN), Y (N, OUT), order (N,) int
    """
    check_activations(activations)
    check_loss(loss)
    probing = probe.shape[0] > 0
    rows = np.arange(n_samples(X)) if probing else order
    n = rows.shape[0]
    capacity = max(1, min(GRADIENT_CHUNK if probing else batch_size, n))
    net = fused_layout(sizes, activations)
    theta, w, bias = _packed(params, net)
    grad = np.zeros(theta.shape[0] if probing else 0, np.float32)
    update_w, update_b = (grad[:net.w_total], grad[net.w_total:]) if probing else (w, bias)
    scratch = batch_scratch(net, X, inputs_are_sparse(X, rows), capacity, tiles)
    inv_n = ONE / np.float32(n)
    total = ZERO
    for start in range(0, n, capacity):
        n_rows = min(capacity, n - start)
        inv_b, rate = (inv_n, MINUS_ONE) if probing else (ONE / np.float32(n_rows),
                                                          learning_rate)
        total = batch_step(tiles, total, scratch, w, bias, update_w, update_b, X, Y, rows,
                           start, n_rows, net, loss, inv_b, rate)
    if probing:
        unpack_params(probe, update_w, update_b, net)
        return total * inv_n
    unpack_params(params, w, bias, net)
    return mean_loss(total, n)


@jit_true_division
def mean_loss(total, n):
    """An epoch's mean loss over its n samples: one true division, wherever it is inlined."""
    return total / np.float32(n)


@jit_inline
def accumulate_gradient(total, grad, theta, scratch, X, Y, order, start, n_rows, net, loss,
                        inv_b, tiles):
    """Forward and backward of order[start:start + n_rows] at the parameters θ, in chunks of
    the scratch's capacity, their Σ δ aᵀ added into ``grad`` (both in the packed layout);
    returns ``total`` plus their losses."""
    w, bias = theta[:net.w_total], theta[net.w_total:]
    grad_w, grad_b = grad[:net.w_total], grad[net.w_total:]
    capacity = scratch.n_nonzero.shape[0]
    for chunk in range(start, start + n_rows, capacity):
        rows = min(capacity, start + n_rows - chunk)
        # "θ ← θ − (−1)·Σ δ aᵀ" on the gradient: the update accumulates it
        total = batch_step(tiles, total, scratch, w, bias, grad_w, grad_b, X, Y, order, chunk,
                           rows, net, loss, inv_b, MINUS_ONE)
    return total


@jit_inline
def fused_optimizer_epoch(params, state, step, sizes, activations, loss, optimizer, hyper, X,
                          Y, order, batch_size, tiles, probe):
    """A mini-batch epoch by any optimiser on the fused path; returns the mean loss.

    Every optimiser's update is elementwise, so it runs on the packed layout with the
    state packed the same way: padding lanes hold 0 in θ, ∇ and the state, and stay 0.
    A batch's gradient is accumulated GRADIENT_CHUNK rows at a time (bounded scratch for
    any batch size, full batch included), then ``optimizer_step`` applies it.  With
    α = hyper[HYPER_L2] ≠ 0, ``l2_penalty`` first adds (α/B)·W to the weights' gradient —
    the packed θ holds all weights first, [weights | biases], so θ[:w_total] — and ½α‖W‖²
    to the loss (``reference.optimizer_epoch_minibatch``).

    With a (P,) ``probe`` (else an empty array), no epoch: the gradient of the mean loss
    over all rows of X at ``params`` into it, and that loss, with ``fused_gradient``'s
    bits (as ``fused_sgd_epoch``).

    params (P,), state (slots, P), step (1,) int64 updated in place; hyper (N_HYPER,)
    float32 (or the 5 slots of before α: α = 0)
    """
    check_activations(activations)
    check_loss(loss)
    probing = probe.shape[0] > 0
    rows = np.arange(n_samples(X)) if probing else order
    n = rows.shape[0]
    batch = n if probing else max(1, min(batch_size, n))
    net = fused_layout(sizes, activations)
    theta, w, bias = _packed(params, net)
    w_total = net.w_total
    packed_state = np.empty((state.shape[0], theta.shape[0]), np.float32)
    for k in range(state.shape[0]):
        pack_params(packed_state[k, :w_total], packed_state[k, w_total:], state[k], net)
    grad = np.empty(theta.shape[0], np.float32)
    scratch = batch_scratch(net, X, inputs_are_sparse(X, rows),
                            max(1, min(batch, GRADIENT_CHUNK)), tiles)
    alpha = hyper_slot(hyper, HYPER_L2)
    total = ZERO
    for start in range(0, n, batch):
        n_batch = min(batch, n - start)
        grad[:] = 0
        total = accumulate_gradient(total, grad, theta, scratch, X, Y, rows, start, n_batch,
                                    net, loss, ONE / np.float32(n_batch), tiles)
        if probing:  # one batch of all rows: fused_gradient's steps
            unpack_params(probe, grad[:w_total], grad[w_total:], net)
            return total * (ONE / np.float32(n))
        if alpha != ZERO:
            total += l2_penalty(grad, theta, w_total, alpha, n_batch)
        optimizer_step(theta, packed_state, step, grad, optimizer, hyper)
    unpack_params(params, w, bias, net)
    for k in range(state.shape[0]):
        unpack_params(state[k], packed_state[k, :w_total], packed_state[k, w_total:], net)
    return total / np.float32(n)


@jit_no_refcount
def _forward_chunk(scratch, w, bias, X, first, n_rows, net):
    """Rows first to first + n_rows of X through every layer but the output's activation,
    row r into slot r − first of the scratch, its z¹₀ into scratch.losses[r − first]
    (``forward_logits`` for each).  The first layer goes tile by tile (INFERENCE_TILE
    columns of Wᵀ⁰ for every row of the chunk before the next tile), so a wide Wᵀ⁰ (784 ×
    2048 floats is 6.4 MB) is read from memory once per chunk instead of once per row.  The
    tiles start at multiples of 32, so each z¹ has the bits of the one-row call.

    A function of its own, not inlined: numba's dead-code elimination after inlining drops
    stores through an array field of a tuple made in the same function (numba issue 10041),
    and the callers make the scratch themselves."""
    if scratch.stored:  # dense rows read sparsely: list each row's nonzero inputs once
        for s in range(n_rows):
            scratch.n_nonzero[s] = sample_inputs(X, first + s, scratch.idx[s * scratch.stride:],
                                                 True)[2]
    for c0 in range(0, net.pads[1], INFERENCE_TILE):
        c1 = min(net.pads[1], c0 + INFERENCE_TILE)
        for s in range(n_rows):
            values, idx, n = stored_inputs(X, first + s, scratch, s)
            first_layer_forward(scratch.acts, s * net.row_width + net.a_off[1], w, bias,
                                values, idx, n, net.w0_stride, net.b_off[0], c0, c1)
    for s in range(n_rows):
        scratch.losses[s] = scratch.acts[s * net.row_width + net.a_off[1]]
    for s in range(0, n_rows, 4):
        forward_later_layers_four(scratch.acts, s * net.row_width, net.row_width,
                                  min(4, n_rows - s), w, bias, net)


@jit_inline
def _inference_setup(params, sizes, activations, X):
    """The layout, the packed parameters and the sparsity test of an inference call."""
    check_activations(activations)
    net = fused_layout(sizes, activations)
    theta, w, bias = _packed(params, net)
    sparse = inputs_are_sparse(X, np.arange(min(n_samples(X), DENSITY_ROWS)))
    return net, w, bias, sparse


@jit
def evaluate_rows(out, w, bias, X, Y, first, last_row, sparse, net, loss):
    """Output activations of rows [first, last_row) of X into out, INFERENCE_CHUNK rows at a
    time (``_forward_chunk``), and the sum of the rows' losses, each taken exactly from z
    at its output layer where ``loss_from_logits`` (else 0, and Y is not read).  A bad
    input makes its row's first output NaN (+ z¹₀·0) as well as its loss.  Own scratch, so
    calls on disjoint row ranges may run at the same time."""
    last = net.sizes.shape[0] - 1
    scratch = batch_scratch(net, X, sparse, INFERENCE_CHUNK, None)
    acts = scratch.acts
    total = ZERO
    for chunk in range(first, last_row, INFERENCE_CHUNK):
        n_rows = min(INFERENCE_CHUNK, last_row - chunk)
        _forward_chunk(scratch, w, bias, X, chunk, n_rows, net)
        for s in range(n_rows):
            arow = s * net.row_width
            total += output_loss(acts, arow, scratch.losses[s], Y, chunk + s, net, loss)
            for j in range(net.sizes[last]):
                out[chunk + s, j] = acts[arow + net.a_off[last] + j]
            out[chunk + s, 0] += scratch.losses[s] * ZERO  # NaN for a bad input
    return total


@jit
def fused_inference(out, params, sizes, activations, loss, X, Y, sums, first_block,
                    last_block):
    """Output activations on the fused path for the rows of X in blocks [first_block,
    last_block) of PARALLEL_ROW_BLOCK rows, and in sums[block] the sum over each block's
    rows of their losses against Y, each taken exactly from z at its output layer where
    ``loss_from_logits`` (else 0: the other losses need only the outputs, ``network.py``,
    and Y is not read).   X (N, IN), Y (N, OUT) -> out (N, OUT), sums (blocks,)

    One kernel for ``network_forward`` and ``network_evaluate``, so that a user who calls
    both compiles it once.  Inference has no sample-to-sample dependence: ``network.py``
    hands disjoint runs of blocks to Python threads, with no parallel loop compiled (with
    one, this kernel's compile took 9.9-10.1 s of the CLI's cold start, without 4.6-4.9 s,
    issue 14); the blocks are a fixed size, so a loss
    summed over them in order does not depend on the threads.
    """
    check_loss(loss)
    n = n_samples(X)
    net, w, bias, sparse = _inference_setup(params, sizes, activations, X)
    for block in range(first_block, last_block):
        first = block * PARALLEL_ROW_BLOCK
        sums[block] = evaluate_rows(out, w, bias, X, Y, first,
                                    min(n, first + PARALLEL_ROW_BLOCK), sparse, net, loss)


@jit_inline
def fused_gradient(grads, params, sizes, activations, loss, X, Y, tiles):
    """∇ of the mean loss over all rows of X, and that loss, on the fused path.

    Rows go through in chunks of GRADIENT_CHUNK with the same weights; each chunk's
    Σ δ aᵀ (δ carrying 1/N) is added into the gradient in the packed layout, which is then
    written to ``grads`` in the flat layout (every entry overwritten).
    params (P,), X (N, IN), Y (N, OUT) -> grads (P,), returns the loss
    """
    check_activations(activations)
    check_loss(loss)
    n = n_samples(X)
    net = fused_layout(sizes, activations)
    theta = _packed(params, net)[0]
    grad = np.zeros(theta.shape[0], np.float32)
    order = np.arange(n)
    # capacity ≤ GRADIENT_CHUNK ≤ MAX_STORED_BATCH: per-row nonzero lists, never recompute
    capacity = max(1, min(n, GRADIENT_CHUNK))
    scratch = batch_scratch(net, X, inputs_are_sparse(X, order), capacity, tiles)
    inv_n = ONE / np.float32(n)
    total = accumulate_gradient(ZERO, grad, theta, scratch, X, Y, order, 0, n, net, loss,
                                inv_n, tiles)
    unpack_params(grads, grad[:net.w_total], grad[net.w_total:], net)
    return total * inv_n
