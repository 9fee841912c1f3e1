"""fit's gradient probe, computed by the training loops themselves (their ``probe``
argument, ``kernels/cpu/loops.py``): every loop's probe gives ``network_gradient``'s bits on
its path, and the reference's gradient to float32 rounding, dense and sparse inputs alike.
"""

import numpy as np
import pytest
from helpers import assert_close
from test_sparse_inputs import sparse_X

from steepest.kernels import codes, cpu, reference
from steepest.kernels.cpu import network, paths
from steepest.models.validation import training_features

# (batch_size, plain SGD) of fit's epochs: per sample, mini-batch, full batch; Adam
EPOCHS = [(1, True), (10, True), (128, True), (None, True), (10, False), (128, False),
          (None, False)]


def _problem(rng, sizes, n):
    sizes = np.array(sizes, np.int64)
    X = sparse_X(rng, n, int(sizes[0]), 0.2)
    Y = np.eye(sizes[-1], dtype=np.float32)[rng.integers(0, sizes[-1], n)]
    acts = np.array([codes.RELU] * (len(sizes) - 2) + [codes.SOFTMAX], np.int64)
    n_params = sum(int(a * b + b) for a, b in zip(sizes[:-1], sizes[1:]))
    params = (rng.standard_normal(n_params) * 0.1).astype(np.float32)
    return sizes, acts, params, X, Y


def _assert_every_probe_is_network_gradient(probe, sizes, acts, params, X, Y, n_samples):
    """``probe`` (fit's or a sweep's) for each of EPOCHS gives ``network_gradient``'s bits
    and leaves ``params`` as they were."""
    want = np.empty_like(params)
    want_loss = cpu.network_gradient(want, params, sizes, acts, codes.CROSS_ENTROPY, X, Y)
    for batch_size, plain_sgd in EPOCHS:
        got = np.full_like(params, np.nan)
        before = params.copy()
        loss = probe(got, params, sizes, acts, codes.CROSS_ENTROPY, X, Y, batch_size,
                     n_samples, plain_sgd)
        assert np.array_equal(params, before)  # a probe, not an epoch
        assert np.array_equal(got, want), (batch_size, plain_sgd)
        assert loss == want_loss, (batch_size, plain_sgd)


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse rows"])
def test_every_loops_probe_is_network_gradient_on_the_fused_path(rng, sparse):
    sizes, acts, params, X, Y = _problem(rng, [50, 20, 7, 3], 300)
    assert all(paths.training_path(sizes, batch_size, 300).tiles is None
               for batch_size, _ in EPOCHS)
    X_in = training_features(X, 50, True) if sparse else X
    _assert_every_probe_is_network_gradient(network.network_gradient_for_epochs, sizes, acts,
                                            params, X_in, Y, 300)


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse rows"])
def test_a_sweeps_probe_is_network_gradient_whatever_path_fit_would_take(rng, sparse):
    # a sweep trains each network by the fused loops (one network a thread), tiled or not
    # for fit, and a batch of one as a mini-batch; its probe runs those loops
    sizes, acts, params, X, Y = _problem(rng, [784, 32, 10], 256)
    assert paths.training_path(sizes, 128, 600).tiles is not None  # fit's would be tiled
    X_in = training_features(X, 784, True) if sparse else X
    _assert_every_probe_is_network_gradient(network.network_gradient_for_sweeps, sizes, acts,
                                            params, X_in, Y, 600)


def test_every_loops_probe_on_the_tiled_path_is_the_reference_gradient(rng):
    sizes, acts, params, X, Y = _problem(rng, [784, 32, 10], 256)
    expected = np.empty(params.shape, np.float64)
    expected_loss = reference.network_gradient(expected, params.astype(np.float64), sizes,
                                               acts, codes.CROSS_ENTROPY,
                                               X.astype(np.float64), Y.astype(np.float64))
    grads = {}
    for batch_size, plain_sgd in [(128, True), (None, True), (128, False), (None, False)]:
        assert paths.training_path(sizes, batch_size, 600).tiles is not None
        got = np.full_like(params, np.nan)
        loss = network.network_gradient_for_epochs(got, params, sizes, acts,
                                                   codes.CROSS_ENTROPY, X, Y, batch_size,
                                                   600, plain_sgd)
        assert_close(got, expected, rtol=1e-4, atol=1e-6)
        assert loss == pytest.approx(expected_loss, rel=1e-5)
        grads[batch_size, plain_sgd] = got
    first = next(iter(grads.values()))
    assert all(np.array_equal(first, g) for g in grads.values())  # one tiled gradient
