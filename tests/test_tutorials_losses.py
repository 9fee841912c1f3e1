"""The tutorial losses (MAE, binary cross-entropy) and the perceptron's step: CPU kernels
against the reference, backprop against finite differences, and their rows in Network."""

import numpy as np
import pytest
from helpers import assert_close, batch_loss, finite_difference_gradient, make_problem

import steepest
from steepest.kernels import codes, cpu, reference

SHAPES = [(1, 1), (5, 23), (7, 10), (64, 3)]


def f32(a):
    return np.ascontiguousarray(a, dtype=np.float32)


def probabilities(rng, shape):
    return rng.uniform(0.02, 0.98, shape)


@pytest.mark.parametrize("shape", SHAPES)
def test_step_forward(rng, shape):
    z = rng.standard_normal(shape) * 3
    z.flat[0] = 0.0  # the step is 1 at exactly zero
    ref, got = np.empty(shape), np.full(shape, np.nan, np.float32)
    reference.step_forward(ref, z)
    cpu.step_forward(got, f32(z))
    assert ref.flat[0] == 1.0
    assert set(np.unique(ref)) <= {0.0, 1.0}
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(ref, (z >= 0).astype(float))


@pytest.mark.parametrize("shape", SHAPES)
def test_mae_loss_and_backward(rng, shape):
    a, y = rng.standard_normal(shape), rng.standard_normal(shape)
    assert reference.mae_loss(a, y) == pytest.approx(np.abs(a - y).sum() / shape[0], rel=1e-12)
    assert cpu.mae_loss(f32(a), f32(y)) == pytest.approx(reference.mae_loss(a, y), rel=1e-5)
    ref, got = np.empty(shape), np.full(shape, np.nan, np.float32)
    reference.mae_loss_backward(ref, a, y)
    cpu.mae_loss_backward(got, f32(a), f32(y))
    assert_close(got, ref, rtol=1e-6, atol=1e-7)
    assert_close(ref, np.sign(a - y) / shape[0], rtol=1e-12, atol=0)


def test_mae_backward_is_zero_where_prediction_is_exact():
    a = np.array([[1.0, 2.0, 3.0]], np.float32)
    da = np.full_like(a, np.nan)
    cpu.mae_loss_backward(da, a, np.array([[0.0, 2.0, 4.0]], np.float32))
    np.testing.assert_array_equal(da, [[1.0, 0.0, -1.0]])


@pytest.mark.parametrize("shape", SHAPES)
def test_binary_cross_entropy_loss_and_backward(rng, shape):
    a = probabilities(rng, shape)
    y = rng.integers(0, 2, shape).astype(float)
    y[0, 0] = 0.3  # soft targets are allowed
    expected = -(y * np.log(a) + (1 - y) * np.log(1 - a)).sum() / shape[0]
    assert reference.binary_cross_entropy_loss(a, y) == pytest.approx(expected, rel=1e-12)
    assert cpu.binary_cross_entropy_loss(f32(a), f32(y)) == pytest.approx(expected, rel=1e-5)
    ref, got = np.empty(shape), np.full(shape, np.nan, np.float32)
    reference.binary_cross_entropy_loss_backward(ref, a, y)
    cpu.binary_cross_entropy_loss_backward(got, f32(a), f32(y))
    assert_close(got, ref, rtol=1e-5, atol=1e-6)
    assert_close(ref, (a - y) / (a * (1 - a)) / shape[0], rtol=1e-10, atol=0)


def test_binary_cross_entropy_stays_finite_when_saturated():
    a = np.array([[0.0, 1.0, 1e-30, 1.0]], np.float32)
    y = np.array([[1.0, 0.0, 1.0, 1.0]], np.float32)
    value = cpu.binary_cross_entropy_loss(a, y)
    assert np.isfinite(value) and value == pytest.approx(
        reference.binary_cross_entropy_loss(a.astype(float), y.astype(float)), rel=1e-5)
    da = np.empty_like(a)
    cpu.binary_cross_entropy_loss_backward(da, a, y)
    assert np.isfinite(da).all() and da[0, 3] == pytest.approx(-1.0)


@pytest.mark.parametrize("shape", SHAPES)
def test_fused_sigmoid_binary_cross_entropy_delta(rng, shape):
    # the fused delta equals the chain rule ∂L/∂a ⊙ σ′ = (a − y)/B
    z = rng.standard_normal(shape) * 2
    a = 1 / (1 + np.exp(-z))
    y = rng.random(shape)
    fused, chained = np.empty(shape), np.empty(shape)
    reference.sigmoid_binary_cross_entropy_backward(fused, a, y)
    da = np.empty(shape)
    reference.binary_cross_entropy_loss_backward(da, a, y)
    reference.sigmoid_backward(chained, da, a)
    assert_close(fused, chained, rtol=1e-9, atol=1e-12)
    got = np.full(shape, np.nan, np.float32)
    cpu.sigmoid_binary_cross_entropy_backward(got, f32(a), f32(y))
    assert_close(got, fused, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("loss,activation", [("mae", "identity"), ("mae", "sigmoid"),
                                             ("mae", "softmax"),
                                             ("binary_cross_entropy", "sigmoid"),
                                             ("binary_cross_entropy", "softmax")])
def test_loss_value_and_output_delta_dispatch(rng, loss, activation):
    shape = (6, 4)
    a = probabilities(rng, shape)
    if activation == "softmax":
        a /= a.sum(axis=1, keepdims=True)
    y = rng.random(shape)
    code, act = codes.LOSS_CODES[loss], codes.ACTIVATION_CODES[activation]
    direct = getattr(reference, f"{loss}_loss")(a, y)
    assert reference.loss_value(a, y, code) == direct
    assert cpu.loss_value(f32(a), f32(y), code) == pytest.approx(direct, rel=1e-5)
    ref, got = np.empty(shape), np.full(shape, np.nan, np.float32)
    reference.output_delta(ref, a, y, code, act)
    cpu.output_delta(got, f32(a), f32(y), code, act)
    da, chained = np.empty(shape), np.empty(shape)
    getattr(reference, f"{loss}_loss_backward")(da, a, y)
    reference.activation_backward(chained, da, a, act)
    assert_close(ref, chained, rtol=1e-9, atol=1e-12)
    assert_close(got, ref, rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------- backprop
@pytest.mark.parametrize("hidden,output,loss", [
    ("sigmoid", "identity", "mae"), ("tanh", "sigmoid", "mae"), ("relu", "tanh", "mae"),
    ("sigmoid", "sigmoid", "binary_cross_entropy"), ("tanh", "sigmoid", "binary_cross_entropy"),
    ("relu", "sigmoid", "binary_cross_entropy"),
    ("tanh", "softmax", "binary_cross_entropy"),  # the unfused path through the chain rule
])
def test_gradient_of_new_losses_matches_finite_differences(rng, hidden, output, loss):
    params, sizes, acts, loss_code, X, Y = make_problem(rng, [4, 5, 3, 3], hidden, output, loss)
    if hidden == "relu":
        X = X + np.sign(X) * 0.1
    grads = np.empty_like(params)
    value = reference.network_gradient(grads, params, sizes, acts, loss_code, X, Y)
    assert value == pytest.approx(batch_loss(params, sizes, acts, loss_code, X, Y), rel=1e-12)
    numeric = finite_difference_gradient(
        lambda p: batch_loss(p, sizes, acts, loss_code, X, Y), params)
    assert_close(grads, numeric, rtol=1e-5, atol=1e-7)

    got = np.full(params.size, np.nan, np.float32)
    got_value = cpu.network_gradient(got, f32(params), sizes, acts, loss_code, f32(X), f32(Y))
    assert got_value == pytest.approx(value, rel=1e-5)
    assert_close(got, grads, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- Network rows
def test_network_with_mae_and_binary_cross_entropy():
    assert steepest.Network([3, 1], loss="mae").output == "identity"
    assert steepest.Network([3, 2], loss="binary_cross_entropy").output == "sigmoid"
    assert steepest.Network([3, 2], loss="mae", output="sigmoid").output == "sigmoid"
    for bad in ("softmax", "identity", "tanh"):
        with pytest.raises(ValueError, match="does not fit"):
            steepest.Network([3, 2], loss="binary_cross_entropy", output=bad)


def test_binary_cross_entropy_network_learns_a_binary_task(rng):
    X = rng.standard_normal((300, 2)).astype(np.float32)
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)  # quadrants: not linearly separable
    net = steepest.Network([2, 8, 1], activation="tanh", loss="binary_cross_entropy", seed=1)
    before = net.evaluate(X, y)
    net.fit(X, y, epochs=60, batch_size=10, learning_rate=0.5)
    after = net.evaluate(X, y)
    assert after["loss"] < 0.5 * before["loss"] and after["accuracy"] > 0.9, (before, after)


def test_mae_network_fits_a_line_with_outliers(rng):
    X = rng.uniform(-1, 1, (200, 1)).astype(np.float32)
    y = 2 * X[:, 0] + 1
    y[::20] += 30  # outliers: MAE's gradient ignores how far off they are
    net = steepest.Network([1, 1], loss="mae", seed=0)
    net.fit(X, y.reshape(-1, 1), epochs=400, batch_size=None, learning_rate=0.05)
    assert net.weights[0][0, 0] == pytest.approx(2.0, abs=0.15)
    assert net.biases[0][0] == pytest.approx(1.0, abs=0.15)
