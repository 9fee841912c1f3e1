"""The fused CPU training path (kernels/cpu/_fused.py) against the float64 reference.

The public loops run on it, so this holds it to the reference for every activation, every
loss, sparse and dense inputs, layer widths that are not multiples of the 16-lane vectors,
batches that do not divide the data, and batches large enough to rebuild their nonzero lists.
"""

import numpy as np
import pytest
from helpers import assert_close

from steepest.kernels import codes, cpu, reference
from steepest.kernels.cpu import _fused, _inputs, _simd

LOSSES = list(codes.LOSS_CODES)
ACTIVATIONS = list(codes.ACTIVATION_CODES)


def _problem(rng, sizes, n, zero_share, loss):
    X = rng.random((n, sizes[0]))
    X[rng.random(X.shape) < zero_share] = 0.0
    if loss in ("cross_entropy",):
        Y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], n)]
    else:
        Y = rng.random((n, sizes[-1]))
    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    params = rng.standard_normal(n_params) * 0.5
    return X, Y, params


def _run_both(params, sizes, acts, loss, X, Y, order, batch_size, lr):
    p32 = params.astype(np.float32)
    args = (np.array(sizes), np.array(acts, np.int64), codes.LOSS_CODES[loss])
    if batch_size == 1:
        got = cpu.sgd_epoch_per_sample(p32, *args, X.astype(np.float32), Y.astype(np.float32),
                                       order, np.float32(lr))
    else:
        got = cpu.sgd_epoch_minibatch(p32, *args, X.astype(np.float32), Y.astype(np.float32),
                                      order, batch_size, np.float32(lr))
    p64 = params.copy()
    want = reference.sgd_epoch_minibatch(p64, *args, X, Y, order, batch_size, lr)
    return p32, got, p64, want


# log losses only with outputs in (0, 1): elsewhere their clamped gradients (1e12) make any
# two summation orders part ways, which says nothing about either
PAIRS = [(loss, output) for loss in LOSSES for output in ACTIVATIONS
         if "cross_entropy" not in loss or output in ("sigmoid", "softmax")]


@pytest.mark.parametrize("loss,output", PAIRS)
def test_every_loss_and_output_activation(rng, loss, output):
    sizes = [23, 5, 7]
    X, Y, params = _problem(rng, sizes, 13, 0.8, loss)
    if loss in ("binary_cross_entropy", "cross_entropy") and output != "softmax":
        Y = (Y > 0.5).astype(float)
    order = rng.permutation(13)
    hidden = codes.ACTIVATION_CODES["tanh"]
    p32, got, p64, want = _run_both(params, sizes, [hidden, codes.ACTIVATION_CODES[output]],
                                    loss, X, Y, order, 4, 0.05)
    assert_close(got, want, rtol=1e-4, atol=1e-5)
    assert_close(p32, p64, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("hidden", ACTIVATIONS)
@pytest.mark.parametrize("zero_share", [0.0, 0.85])  # dense path, sparse path
@pytest.mark.parametrize("batch_size", [1, 3, 300])  # per sample, remainder, rebuilt lists
def test_hidden_activations_sparse_and_dense(rng, hidden, zero_share, batch_size):
    sizes = [37, 17, 33, 3]  # widths off the 16-lane grid on every layer
    n = 301 if batch_size == 300 else 11
    X, Y, params = _problem(rng, sizes, n, zero_share, "mse")
    order = rng.permutation(n)
    code = codes.ACTIVATION_CODES[hidden]
    p32, got, p64, want = _run_both(params, sizes, [code, code, codes.SIGMOID], "mse", X, Y,
                                    order, batch_size, 0.1)
    assert_close(got, want, rtol=1e-4, atol=1e-5)
    assert_close(p32, p64, rtol=1e-4, atol=2e-5)


@pytest.mark.parametrize("zero_share", [0.0, 0.85])
@pytest.mark.parametrize("n", [9, _fused.PARALLEL_MIN_ROWS + 3])  # serial, and across threads
def test_network_forward(rng, zero_share, n):
    sizes = [29, 18, 4]
    X, _, params = _problem(rng, sizes, n, zero_share, "mse")
    acts = np.array([codes.RELU, codes.SOFTMAX])
    out = np.full((n, 4), np.nan, np.float32)
    cpu.network_forward(out, params.astype(np.float32), np.array(sizes), acts,
                        X.astype(np.float32))
    expected = np.empty((n, 4))
    reference.network_forward(expected, params, np.array(sizes), acts, X)
    assert_close(out, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("lengths", [[9], [1250] * 8, [3, 2000, 1, 700]])
def test_network_forward_blocks_is_network_forward_of_each_block(rng, lengths):
    # one call shares all the blocks' rows among the threads (fit's training accuracy);
    # each block's outputs are network_forward's on it, bit for bit, and the reference's
    sizes, acts = np.array([29, 18, 4]), np.array([codes.RELU, codes.SOFTMAX])
    X, _, params = _problem(rng, list(sizes), sum(lengths), 0.85, "mse")
    X, p32 = X.astype(np.float32), params.astype(np.float32)
    cuts = np.cumsum([0] + lengths)
    blocks = [X[a:b] for a, b in zip(cuts[:-1], cuts[1:])]
    outs = [np.full((len(block), 4), np.nan, np.float32) for block in blocks]
    cpu.network_forward_blocks(outs, p32, sizes, acts, blocks)
    for out, block in zip(outs, blocks):
        alone = np.empty_like(out)
        cpu.network_forward(alone, p32, sizes, acts, block)
        np.testing.assert_array_equal(out, alone)
        expected = np.empty(out.shape)
        reference.network_forward(expected, params, sizes, acts, block.astype(np.float64))
        assert_close(out, expected, rtol=1e-5, atol=1e-6)


def test_one_layer_network_and_single_sample(rng):
    X, Y, params = _problem(rng, [6, 2], 1, 0.5, "mse")
    p32, got, p64, want = _run_both(params, [6, 2], [codes.SIGMOID], "mse", X, Y,
                                    np.arange(1), 1, 0.3)
    assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert_close(p32, p64, rtol=1e-5, atol=1e-6)


def test_nan_input_reaches_the_loss(rng):
    X, Y, params = _problem(rng, [20, 3, 2], 4, 0.9, "mse")
    X[2, 5] = np.nan  # in a sparse row: a NaN must count as nonzero, not be skipped
    value = cpu.sgd_epoch_minibatch(params.astype(np.float32), np.array([20, 3, 2]),
                                    np.array([codes.SIGMOID, codes.SIGMOID]), codes.MSE,
                                    X.astype(np.float32), Y.astype(np.float32), np.arange(4),
                                    2, np.float32(0.1))
    assert np.isnan(value)


def test_compact_nonzero_matches_flatnonzero(rng):
    for length in (1, 7, 8, 9, 784, 785):
        x = rng.random(length).astype(np.float32)
        x[rng.random(length) < 0.7] = 0
        idx = np.full(length + 8, -1, np.int32)
        n = _fused_compact(idx, x)
        assert n == np.count_nonzero(x)
        assert (idx[:n] == np.flatnonzero(x)).all()


def _fused_compact(idx, x):
    from steepest.kernels.cpu._jit import jit

    @jit
    def run(idx, x):
        return _inputs.compact_nonzero(idx, x)

    return run(idx, x)


def test_vector_exp_accuracy():
    from steepest.kernels.cpu._jit import jit

    @jit
    def run(out, x):
        for k in range(0, x.shape[0], 16):
            _simd.vstore(out, k, _simd.vexp(_simd.vload(x, k)))

    x = np.linspace(-87, 88.3, 16 * 997).astype(np.float32)
    out = np.empty_like(x)
    run(out, x)
    assert_close(out, np.exp(x.astype(np.float64)), rtol=3e-7, atol=0)
    edges = np.array([89.0, 1000.0, np.inf, -105.0, -1000.0, -np.inf, np.nan, 0.0] * 2,
                     np.float32)
    run(out[:16], edges)
    assert out[0] == out[1] == out[2] == np.inf and out[3] == out[4] == out[5] == 0
    assert np.isnan(out[6]) and out[7] == 1


@pytest.mark.parametrize("zero_share", [0.0, 0.85])
def test_network_gradient_over_several_chunks(rng, zero_share):
    sizes = [31, 9, 5]  # 300 rows: more than one chunk of _fused.GRADIENT_CHUNK
    X, Y, params = _problem(rng, sizes, 300, zero_share, "cross_entropy")
    acts = np.array([codes.RELU, codes.SOFTMAX])
    grads = np.full(params.shape, np.nan, np.float32)
    value = cpu.network_gradient(grads, params.astype(np.float32), np.array(sizes), acts,
                                 codes.CROSS_ENTROPY, X.astype(np.float32), Y.astype(np.float32))
    expected = np.empty(params.shape)
    want = reference.network_gradient(expected, params, np.array(sizes), acts,
                                      codes.CROSS_ENTROPY, X, Y)
    assert_close(value, want, rtol=1e-5)
    assert_close(grads, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("B,IN,OUT", [(9, 130, 13), (4, 64, 4), (6, 67, 70)])
def test_dense_kernels_register_tiles(rng, B, IN, OUT):
    """Shapes that fill dense.py's 4 × 4 and 4-row × 64-lane tiles and leave remainders."""
    inp, W = rng.random((B, IN)), rng.standard_normal((OUT, IN))
    b, dout = rng.standard_normal(OUT), rng.standard_normal((B, OUT))
    f32 = np.float32
    z, dinp = np.empty((B, OUT), f32), np.empty((B, IN), f32)
    dW, db = np.full((OUT, IN), 9.0, f32), np.full(OUT, 9.0, f32)
    cpu.dense_forward(z, inp.astype(f32), W.astype(f32), b.astype(f32))
    cpu.dense_backward_input(dinp, dout.astype(f32), W.astype(f32))
    cpu.dense_backward_params(dW, db, dout.astype(f32), inp.astype(f32))
    assert_close(z, inp @ W.T + b, rtol=1e-5, atol=1e-5)
    assert_close(dinp, dout @ W, rtol=1e-5, atol=1e-5)
    assert_close(dW, dout.T @ inp, rtol=1e-5, atol=1e-5)
    assert_close(db, dout.sum(axis=0), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["dense", "dense read sparsely", "sparse rows"])
def test_inference_in_chunks_and_tiles_matches_the_reference_and_each_row_alone(rng, kind):
    # 77 rows: two chunks of INFERENCE_CHUNK and a part; 300 hidden units: three tiles of
    # Wᵀ⁰ (128, 128 and the last 48 columns), so every chunk and tile boundary is crossed
    from test_sparse_inputs import rows_of, sparse_X

    sizes = np.array([50, 300, 7, 4])
    n = 2 * _fused.INFERENCE_CHUNK + 13
    X = sparse_X(rng, n, 50, 1.0 if kind == "dense" else 0.2)
    X_in = rows_of(X) if kind == "sparse rows" else X
    Y = np.eye(4, dtype=np.float32)[rng.integers(0, 4, n)]
    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    params = (rng.standard_normal(n_params) * 0.2).astype(np.float32)
    acts = np.array([codes.TANH, codes.RELU, codes.SOFTMAX])
    out = np.full((n, 4), np.nan, np.float32)
    cpu.network_forward(out, params, sizes, acts, X_in)
    expected = np.empty((n, 4))
    reference.network_forward(expected, params.astype(np.float64), sizes, acts,
                              X.astype(np.float64))
    assert_close(out, expected, rtol=1e-5, atol=1e-6)
    one = np.empty((1, 4), np.float32)
    for row in (0, _fused.INFERENCE_CHUNK - 1, _fused.INFERENCE_CHUNK, n - 1):
        cpu.network_forward(one, params, sizes, acts, X[row:row + 1])
        assert np.array_equal(one[0], out[row]), row  # the chunk does not change the bits
    loss = cpu.network_evaluate(out, params, sizes, acts, codes.CROSS_ENTROPY, X_in, Y)
    expected_loss = reference.network_evaluate(expected, params.astype(np.float64), sizes,
                                               acts, codes.CROSS_ENTROPY, X.astype(np.float64),
                                               Y.astype(np.float64))
    assert_close(loss, expected_loss, rtol=1e-5)
    assert_close(out, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n", [1, 2, 3, 4])
@pytest.mark.parametrize("hidden", ["relu", "tanh", "softmax"])
def test_four_sample_layers_give_each_sample_the_bits_of_the_one_sample_functions(rng, n,
                                                                                  hidden):
    # the tiled passes and inference take the later layers four samples at a time; n < 4
    # lets the last sample stand in for the missing ones, which must not disturb the others.
    # 23 -> 37 -> 17 -> 5: odd widths (a 16-lane tail, an odd count of outputs)
    sizes = np.array([23, 37, 17, 5])
    acts = np.array([codes.ACTIVATION_CODES[hidden]] * 2 + [codes.SOFTMAX], np.int64)
    net = _fused.fused_layout(sizes, acts)
    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    theta = np.empty(net.w_total + net.b_total, np.float32)
    w, bias = theta[:net.w_total], theta[net.w_total:]
    _fused.pack_params(w, bias, (rng.standard_normal(n_params) * 0.5).astype(np.float32), net)
    Y = np.eye(5, dtype=np.float32)[rng.integers(0, 5, 4)]
    order = np.arange(4)
    z1 = np.zeros(4 * net.row_width, np.float32)
    for s in range(4):
        at = s * net.row_width + net.a_off[1]
        z1[at:at + sizes[1]] = rng.standard_normal(sizes[1])
    one_acts, one_deltas = z1.copy(), np.zeros_like(z1)
    one_losses = np.zeros(8, np.float32)
    for s in range(n):
        _fused.forward_later_layers(one_acts, s * net.row_width, w, bias, net)
        one_losses[2 * s + 1] = _fused.backward_sample(
            one_deltas, one_acts, s * net.row_width, w, Y, s, net, codes.CROSS_ENTROPY,
            np.float32(0.25))
    four_acts, four_deltas = z1.copy(), np.zeros_like(z1)
    four_losses = np.zeros(8, np.float32)
    _fused.forward_later_layers_four(four_acts, 0, net.row_width, n, w, bias, net)
    _fused.backward_samples_four(four_deltas, four_acts, 0, net.row_width, n, w, Y, order, 0,
                                 0, net, codes.CROSS_ENTROPY, np.float32(0.25), four_losses)
    used = n * net.row_width  # the slots of samples beyond n stay as they were
    assert np.array_equal(four_acts, one_acts) and np.array_equal(four_deltas, one_deltas)
    assert np.array_equal(four_losses, one_losses)
    assert np.any(four_deltas[:used] != 0) and not np.any(four_deltas[used:])
