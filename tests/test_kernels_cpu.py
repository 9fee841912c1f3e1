"""Every CPU kernel against the float64 reference on fresh random inputs and awkward shapes."""

import numpy as np
import pytest
from helpers import assert_close

from steepest.kernels import codes, cpu, reference

SHAPES = [(1, 1, 1), (1, 784, 30), (5, 23, 7), (10, 33, 17), (3, 64, 2)]  # (B, IN, OUT)
ACTIVATIONS = ["identity", "sigmoid", "tanh", "relu", "softmax"]


def f32(a):
    return np.ascontiguousarray(a, dtype=np.float32)


def both(name, outputs_shapes, *inputs, **kwargs):
    """Run kernel ``name`` from both sets on the same inputs; return (cpu outs, ref outs)."""
    cpu_out = [np.full(s, np.nan, np.float32) for s in outputs_shapes]
    ref_out = [np.full(s, np.nan) for s in outputs_shapes]
    r1 = getattr(cpu, name)(*cpu_out, *[f32(x) if isinstance(x, np.ndarray) else x for x in inputs])
    r2 = getattr(reference, name)(*ref_out, *[np.asarray(x, np.float64) if isinstance(x, np.ndarray)
                                             else x for x in inputs])
    return cpu_out, ref_out, r1, r2


@pytest.mark.parametrize("B,IN,OUT", SHAPES)
def test_dense_forward(rng, B, IN, OUT):
    inp, W, b = rng.random((B, IN)), rng.standard_normal((OUT, IN)), rng.standard_normal(OUT)
    (c,), (r,), _, _ = both("dense_forward", [(B, OUT)], inp, W, b)
    assert_close(c, r, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("B,IN,OUT", SHAPES)
def test_dense_backward_input(rng, B, IN, OUT):
    dout, W = rng.standard_normal((B, OUT)), rng.standard_normal((OUT, IN))
    (c,), (r,), _, _ = both("dense_backward_input", [(B, IN)], dout, W)
    assert_close(c, r, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("B,IN,OUT", SHAPES)
def test_dense_backward_params_overwrites(rng, B, IN, OUT):
    dout, inp = rng.standard_normal((B, OUT)), rng.random((B, IN))
    dout[0, 0] = 0.0  # the zero-skipping branch must still write that row
    dW = np.full((OUT, IN), 123.0, np.float32)  # garbage: backward overwrites, never accumulates
    db = np.full(OUT, -7.0, np.float32)
    cpu.dense_backward_params(dW, db, f32(dout), f32(inp))
    rW, rb = np.empty((OUT, IN)), np.empty(OUT)
    reference.dense_backward_params(rW, rb, dout, inp)
    assert_close(dW, rW, rtol=1e-5, atol=1e-5)
    assert_close(db, rb, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize("shape", [(1, 1), (5, 23), (7, 10)])
def test_activation_forward(rng, name, shape):
    z = rng.standard_normal(shape) * 4
    (c,), (r,), _, _ = both(f"{name}_forward", [shape], z)
    assert_close(c, r, rtol=1e-5, atol=1e-6)
    (c2,), _, _, _ = both("activation_forward", [shape], z, codes.ACTIVATION_CODES[name])
    assert_close(c2, r, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize("shape", [(1, 3), (5, 23)])
def test_activation_backward(rng, name, shape):
    z, da = rng.standard_normal(shape) * 2, rng.standard_normal(shape)
    a = np.empty(shape)
    getattr(reference, f"{name}_forward")(a, z)
    (c,), (r,), _, _ = both(f"{name}_backward", [shape], da, a)
    assert_close(c, r, rtol=1e-5, atol=1e-6)
    (c2,), _, _, _ = both("activation_backward", [shape], da, a, codes.ACTIVATION_CODES[name])
    assert_close(c2, r, rtol=1e-5, atol=1e-6)


def test_sigmoid_saturates_without_nan():
    # e^{-z} overflows float32 for z < -88: the result must be 0, not NaN
    z = np.array([[-1000.0, -89.0, 0.0, 89.0, 1000.0]], np.float32)
    a = np.empty_like(z)
    cpu.sigmoid_forward(a, z)
    assert np.isfinite(a).all()
    assert a[0, 0] == 0.0 and a[0, -1] == 1.0 and a[0, 2] == 0.5


def test_softmax_large_inputs_stay_finite():
    z = np.array([[1000.0, 0.0, -1000.0]], np.float32)
    a = np.empty_like(z)
    cpu.softmax_forward(a, z)
    assert_close(a, [[1.0, 0.0, 0.0]])


def _targets(rng, shape, kind):
    if kind == "onehot":
        return np.eye(shape[1])[rng.integers(0, shape[1], shape[0])]
    return rng.random(shape)


@pytest.mark.parametrize("shape", [(1, 10), (5, 23), (9, 3)])
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_loss_values_and_gradients(rng, shape, loss):
    z = rng.standard_normal(shape)
    a = np.empty(shape)
    reference.softmax_forward(a, z)
    y = _targets(rng, shape, "onehot")
    value_cpu = getattr(cpu, f"{loss}_loss")(f32(a), f32(y))
    value_ref = getattr(reference, f"{loss}_loss")(a, y)
    assert_close(value_cpu, value_ref, rtol=1e-5)
    assert_close(cpu.loss_value(f32(a), f32(y), codes.LOSS_CODES[loss]), value_ref, rtol=1e-5)
    (c,), (r,), _, _ = both(f"{loss}_loss_backward", [shape], a, y)
    assert_close(c, r, rtol=1e-5, atol=1e-6)


def test_cross_entropy_clamps_zero_probabilities():
    a = np.array([[0.0, 1.0]], np.float32)
    y = np.array([[1.0, 0.0]], np.float32)
    value = cpu.cross_entropy_loss(a, y)
    assert np.isfinite(value) and value == pytest.approx(-np.log(1e-12), rel=1e-5)


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_output_delta(rng, loss, activation):
    shape = (6, 4)
    z = rng.standard_normal(shape)
    a = np.empty(shape)
    getattr(reference, f"{activation}_forward")(a, z)
    a = np.clip(a, 0.05, None) if loss == "cross_entropy" else a  # keep −y/a well scaled
    y = _targets(rng, shape, "onehot" if loss == "cross_entropy" else "float")
    args = (a, y, codes.LOSS_CODES[loss], codes.ACTIVATION_CODES[activation])
    (c,), (r,), _, _ = both("output_delta", [shape], *args)
    assert_close(c, r, rtol=1e-4, atol=1e-6)


def test_softmax_cross_entropy_delta_is_the_chain_rule(rng):
    # the fused delta (a − y)/B equals ∂L/∂a pushed through the softmax Jacobian
    z = rng.standard_normal((5, 7))
    a = np.empty_like(z)
    reference.softmax_forward(a, z)
    y = _targets(rng, (5, 7), "onehot")
    da, chain, fused = np.empty_like(a), np.empty_like(a), np.empty_like(a)
    reference.cross_entropy_loss_backward(da, a, y)
    reference.softmax_backward(chain, da, a)
    reference.softmax_cross_entropy_backward(fused, a, y)
    assert_close(fused, chain, rtol=1e-9, atol=1e-12)
    (c,), _, _, _ = both("softmax_cross_entropy_backward", [(5, 7)], a, y)
    assert_close(c, fused, rtol=1e-5, atol=1e-7)


def test_sgd_step(rng):
    params, grads = rng.standard_normal(101), rng.standard_normal(101)
    p_cpu = f32(params)
    cpu.sgd_step(p_cpu, f32(grads), 0.37)
    p_ref = params.copy()
    reference.sgd_step(p_ref, grads, 0.37)
    assert_close(p_cpu, p_ref, rtol=1e-5, atol=1e-6)
