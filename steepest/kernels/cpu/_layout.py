"""The fused path's private parameter layout, and the one structure that carries it.

A network reaches the fused kernels as a flat float32 vector W⁰, b⁰, W¹, b¹, … (W of shape
(OUT, IN)).  Each call repacks it once into a padded layout and copies it back at the end:

* the first layer as Wᵀ (IN, OUT₁), so that its forward pass and update are axpy's over a
  row's **nonzero** inputs only (a zero input adds nothing to z nor to ∂L/∂W);
* later layers as W (OUT, IN), so that backpropagation is an axpy too;
* every width padded to a multiple of 16 lanes with zeros that stay zero;
* from STRIDE_FROM columns on, Wᵀ's rows an odd number of 128-byte pairs of cache lines
  apart (``w0_stride``; whole pairs, so that each of the tiled passes' threads,
  ``_tiled.py``, writes whole pairs of a row).  At a power-of-two stride (784-512-10: 2 KB)
  the rows of a column fall into a few of the cache's sets and evict each other:
  784-512-10 trained at half the speed of 784-528-10, 784-1024-10 at a third of
  784-1040-10's, and the odd stride made 784-2048-10 2.7× faster (the 2-core machine).
  Narrower first layers fit in the cache whole; W1 (784-30-10) was not faster with it.

``Layout`` holds what every fused function needs to find its way in that layout: the
network's sizes and activation codes, the padded widths and the offsets of each layer's
weights, biases and activations, so that it travels as one argument.
"""

from collections import namedtuple

import numpy as np

from ._jit import jit, jit_inline
from ._simd import LANES

STRIDE_FROM = 128  # padded first-layer widths from which Wᵀ's rows get an odd stride

Layout = namedtuple("Layout", [
    "sizes",        # (L+1,) layer widths
    "activations",  # (L,) activation codes
    "pads",         # (L+1,) widths padded to LANES (pads[0] = sizes[0]: inputs unpadded)
    "w_off",        # (L,) where layer l's weights start in the packed weight vector
    "b_off",        # (L,) where its biases start in the packed bias vector
    "a_off",        # (L+1,) where layer l's activations start in one sample's scratch row
    "row_width",    # floats of scratch per sample (activations, or deltas)
    "w_total",      # length of the packed weight vector
    "b_total",      # length of the packed bias vector
    "w0_stride",    # floats from one row of the first layer's Wᵀ to the next (≥ pads[1])
])


@jit
def _padded(n):
    return (n + LANES - 1) // LANES * LANES


@jit
def fused_layout(sizes, activations):
    """The ``Layout`` of a network.  Layer 0 is stored as Wᵀ (sizes[0], pads[1]) with rows
    ``w0_stride`` apart; layer l ≥ 1 as W (sizes[l+1], pads[l])."""
    n_layers = sizes.shape[0] - 1
    pads = np.empty(n_layers + 1, np.int64)
    pads[0] = sizes[0]
    for layer in range(1, n_layers + 1):
        pads[layer] = _padded(sizes[layer])
    w0_stride = pads[1]
    if pads[1] >= STRIDE_FROM:
        pairs = (pads[1] + 2 * LANES - 1) // (2 * LANES)
        w0_stride = (pairs + 1 - pairs % 2) * 2 * LANES
    w_off = np.empty(n_layers, np.int64)
    b_off = np.empty(n_layers, np.int64)
    w_total = 0
    b_total = 0
    for layer in range(n_layers):
        w_off[layer] = w_total
        if layer == 0:
            w_total += sizes[0] * w0_stride
        else:
            w_total += sizes[layer + 1] * pads[layer]
        b_off[layer] = b_total
        b_total += pads[layer + 1]
    a_off = np.zeros(n_layers + 1, np.int64)
    row = 0
    for layer in range(1, n_layers + 1):
        a_off[layer] = row
        row += pads[layer]
    return Layout(sizes, activations, pads, w_off, b_off, a_off, row, w_total, b_total,
                  w0_stride)


@jit_inline
def _packed_index(net, layer, o, i):
    """Where W[o, i] of ``layer`` lives in the packed weight vector."""
    if layer == 0:
        return net.w_off[0] + i * net.w0_stride + o
    return net.w_off[layer] + o * net.pads[layer] + i


@jit
def pack_params(w, bias, params, net):
    """Flat parameters (W (OUT, IN) per layer) -> the padded layout (padding zeroed)."""
    w[:] = 0
    bias[:] = 0
    sizes = net.sizes
    offset = 0
    for layer in range(sizes.shape[0] - 1):
        n_in, n_out = sizes[layer], sizes[layer + 1]
        for o in range(n_out):
            for i in range(n_in):
                w[_packed_index(net, layer, o, i)] = params[offset + o * n_in + i]
        offset += n_out * n_in
        for o in range(n_out):
            bias[net.b_off[layer] + o] = params[offset + o]
        offset += n_out


@jit
def unpack_params(params, w, bias, net):
    """The padded layout -> flat parameters (the inverse of ``pack_params``)."""
    sizes = net.sizes
    offset = 0
    for layer in range(sizes.shape[0] - 1):
        n_in, n_out = sizes[layer], sizes[layer + 1]
        for o in range(n_out):
            for i in range(n_in):
                params[offset + o * n_in + i] = w[_packed_index(net, layer, o, i)]
        offset += n_out * n_in
        for o in range(n_out):
            params[offset + o] = bias[net.b_off[layer] + o]
        offset += n_out
