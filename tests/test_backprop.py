"""Backpropagation: the reference against central finite differences in float64, and the
compiled network kernels and training loops against the reference."""

import numpy as np
import pytest
from helpers import assert_close, batch_loss, finite_difference_gradient, make_problem

from steepest.kernels import cpu, reference
from steepest.kernels.cpu import _fused

# every hidden activation with every valid (output, loss) pairing
PAIRS = [(hidden, output, loss)
         for hidden in ("sigmoid", "tanh", "relu", "identity")
         for output, loss in (("sigmoid", "mse"), ("identity", "mse"), ("tanh", "mse"),
                              ("relu", "mse"), ("softmax", "mse"), ("softmax", "cross_entropy"))]


@pytest.mark.parametrize("hidden,output,loss", PAIRS)
def test_reference_gradient_matches_finite_differences(rng, hidden, output, loss):
    params, sizes, acts, loss_code, X, Y = make_problem(rng, [4, 5, 3, 3], hidden, output, loss)
    if hidden == "relu":
        X = X + np.sign(X) * 0.1  # keep pre-activations away from the kink where FD is wrong
    grads = np.empty_like(params)
    value = reference.network_gradient(grads, params, sizes, acts, loss_code, X, Y)
    assert value == pytest.approx(batch_loss(params, sizes, acts, loss_code, X, Y), rel=1e-12)
    numeric = finite_difference_gradient(
        lambda p: batch_loss(p, sizes, acts, loss_code, X, Y), params)
    assert_close(grads, numeric, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("hidden,output,loss", PAIRS)
def test_cpu_gradient_matches_reference(rng, hidden, output, loss):
    params, sizes, acts, loss_code, X, Y = make_problem(rng, [9, 7, 5, 4], hidden, output, loss)
    ref = np.empty_like(params)
    ref_value = reference.network_gradient(ref, params, sizes, acts, loss_code, X, Y)
    got = np.full(params.size, np.nan, np.float32)
    value = cpu.network_gradient(got, params.astype(np.float32), sizes, acts, loss_code,
                                 X.astype(np.float32), Y.astype(np.float32))
    assert value == pytest.approx(ref_value, rel=1e-5)
    assert_close(got, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("n,batch", [(13, 1), (13, 4), (13, 13), (8, 3)])
@pytest.mark.parametrize("hidden,output,loss", [("sigmoid", "sigmoid", "mse"),
                                                ("relu", "softmax", "cross_entropy"),
                                                ("tanh", "identity", "mse")])
def test_cpu_training_loops_match_reference(rng, n, batch, hidden, output, loss):
    params, sizes, acts, loss_code, X, Y = make_problem(rng, [6, 5, 3], hidden, output, loss, n=n)
    order = rng.permutation(n)
    lr = 0.3
    ref = params.copy()
    got = params.astype(np.float32)
    X32, Y32 = X.astype(np.float32), Y.astype(np.float32)
    if batch == 1:
        ref_loss = reference.sgd_epoch_per_sample(ref, sizes, acts, loss_code, X, Y, order, lr)
        got_loss = cpu.sgd_epoch_per_sample(got, sizes, acts, loss_code, X32, Y32, order,
                                            np.float32(lr))
    else:
        ref_loss = reference.sgd_epoch_minibatch(ref, sizes, acts, loss_code, X, Y, order,
                                                 batch, lr)
        got_loss = cpu.sgd_epoch_minibatch(got, sizes, acts, loss_code, X32, Y32, order, batch,
                                           np.float32(lr))
    assert got_loss == pytest.approx(ref_loss, rel=1e-4)
    assert_close(got, ref, rtol=1e-4, atol=1e-5)


def test_full_batch_step_matches_reference_across_chunks(rng):
    # 2,500 rows: the CPU kernel accumulates the gradient in chunks of _fused.GRADIENT_CHUNK
    assert 2500 > 2 * _fused.GRADIENT_CHUNK
    params, sizes, acts, loss_code, X, Y = make_problem(rng, [5, 4, 3], "sigmoid", "softmax",
                                                        "cross_entropy", n=2500)
    ref = params.copy()
    ref_loss = reference.gd_step_full_batch(ref, sizes, acts, loss_code, X, Y, 0.5)
    got = params.astype(np.float32)
    got_loss = cpu.gd_step_full_batch(got, sizes, acts, loss_code, X.astype(np.float32),
                                      Y.astype(np.float32), np.float32(0.5))
    assert got_loss == pytest.approx(ref_loss, rel=1e-4)
    assert_close(got, ref, rtol=1e-4, atol=1e-5)


def test_network_forward_matches_reference_across_chunks(rng):
    params, sizes, acts, _, X, _ = make_problem(rng, [11, 8, 3], "relu", "softmax",
                                                "cross_entropy", n=600)
    ref = np.empty((600, 3))
    reference.network_forward(ref, params, sizes, acts, X)
    got = np.full((600, 3), np.nan, np.float32)
    cpu.network_forward(got, params.astype(np.float32), sizes, acts, X.astype(np.float32))
    assert_close(got, ref, rtol=1e-5, atol=1e-6)
