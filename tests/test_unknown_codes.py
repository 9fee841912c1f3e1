"""An activation, loss or optimiser code that names nothing is an error in every kernel of the
reference and the CPU set, raised before a parameter changes (never a silent identity or MSE).

The CUDA set's launchers check the same on the host: tests/test_cuda_codes.py.
"""

import numpy as np
import pytest

from steepest.kernels import codes, cpu, reference

BAD = 99
SIZES = np.array([6, 5, 3], np.int64)
GOOD_ACTS = np.array([codes.SIGMOID, codes.SOFTMAX], np.int64)
BAD_HIDDEN = np.array([BAD, codes.SOFTMAX], np.int64)
BAD_OUTPUT = np.array([codes.SIGMOID, BAD], np.int64)
N_PARAMS = 6 * 5 + 5 + 5 * 3 + 3


@pytest.fixture
def data(rng):
    X = rng.random((8, 6)).astype(np.float32)
    Y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 8)]
    params = (0.3 * rng.standard_normal(N_PARAMS)).astype(np.float32)
    return X, Y, params


KERNEL_SETS = [pytest.param(reference, id="reference"), pytest.param(cpu, id="cpu")]


@pytest.mark.parametrize("kernels", KERNEL_SETS)
def test_layer_kernels_refuse_unknown_codes(kernels, rng):
    z = rng.standard_normal((4, 3)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[[0, 1, 2, 0]]
    out = np.empty_like(z)
    with pytest.raises(ValueError, match="activation"):
        kernels.activation_forward(out, z, BAD)
    with pytest.raises(ValueError, match="activation"):
        kernels.activation_backward(out, z, z, BAD)
    with pytest.raises(ValueError, match="loss"):
        kernels.loss_value(z, y, BAD)
    with pytest.raises(ValueError, match="loss"):
        kernels.output_delta(out, z, y, BAD, codes.IDENTITY)
    with pytest.raises(ValueError, match="activation"):
        kernels.output_delta(out, z, y, codes.MSE, BAD)


@pytest.mark.parametrize("kernels", KERNEL_SETS)
@pytest.mark.parametrize("activations", [BAD_HIDDEN, BAD_OUTPUT], ids=["hidden", "output"])
def test_network_kernels_refuse_unknown_activation(kernels, activations, data):
    X, Y, params = data
    before = params.copy()
    out = np.empty((8, 3), np.float32)
    order = np.arange(8)
    calls = [
        lambda: kernels.network_forward(out, params, SIZES, activations, X),
        lambda: kernels.network_evaluate(out, params, SIZES, activations, codes.MSE, X, Y),
        lambda: kernels.network_gradient(np.empty_like(params), params, SIZES, activations,
                                         codes.MSE, X, Y),
        lambda: kernels.sgd_epoch_minibatch(params, SIZES, activations, codes.MSE, X, Y, order,
                                            4, 0.1),
        lambda: kernels.sgd_epoch_per_sample(params, SIZES, activations, codes.MSE, X, Y, order,
                                             0.1),
        lambda: kernels.gd_step_full_batch(params, SIZES, activations, codes.MSE, X, Y, 0.1),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="activation"):
            call()
    np.testing.assert_array_equal(params, before)


@pytest.mark.parametrize("kernels", KERNEL_SETS)
def test_network_kernels_refuse_unknown_loss(kernels, data):
    X, Y, params = data
    before = params.copy()
    order = np.arange(8)
    calls = [
        lambda: kernels.network_evaluate(np.empty((8, 3), np.float32), params, SIZES,
                                         GOOD_ACTS, BAD, X, Y),
        lambda: kernels.network_gradient(np.empty_like(params), params, SIZES, GOOD_ACTS, BAD,
                                         X, Y),
        lambda: kernels.sgd_epoch_minibatch(params, SIZES, GOOD_ACTS, BAD, X, Y, order, 4, 0.1),
        lambda: kernels.gd_step_full_batch(params, SIZES, GOOD_ACTS, BAD, X, Y, 0.1),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="loss"):
            call()
    np.testing.assert_array_equal(params, before)


@pytest.mark.parametrize("kernels", KERNEL_SETS)
def test_optimizer_kernels_refuse_unknown_optimizer(kernels, data):
    X, Y, params = data
    before = params.copy()
    state = np.zeros((2, N_PARAMS), np.float32)
    step = np.zeros(1, np.int64)
    hyper = np.array([0.1, 0.0, 0.9, 0.999, 1e-8], np.float32)
    with pytest.raises(ValueError, match="optimizer"):
        kernels.optimizer_step(params, state, step, np.ones_like(params), BAD, hyper)
    with pytest.raises(ValueError, match="optimizer"):
        kernels.optimizer_epoch_minibatch(params, state, step, SIZES, GOOD_ACTS, codes.MSE, BAD,
                                          hyper, X, Y, np.arange(8), 4)
    np.testing.assert_array_equal(params, before)
    assert step[0] == 0
