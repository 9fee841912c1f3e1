"""Kernel benchmarks: dense forward/backward at several shapes, and the activations.

Each steepest kernel is checked against the float64 reference on its inputs before it is
timed (max relative error in extra_info), and timed beside the NumPy expression that does
the same (a float32 BLAS call for the dense layers).
"""

import numpy as np
import pytest

from steepest.kernels import cpu, reference

# (batch, in, out): W1's and W3's layers, a per-sample layer, and an awkward odd shape
DENSE_SHAPES = [(10, 784, 30), (128, 784, 128), (128, 128, 64), (1, 16, 16), (37, 250, 23)]
ACTIVATIONS = ["sigmoid", "relu", "softmax"]
IMPLEMENTATIONS = ["steepest", "numpy"]


def _inputs(shape, seed=0):
    rng = np.random.default_rng(seed)
    B, IN, OUT = shape
    f32 = np.float32
    return (rng.random((B, IN), f32), rng.standard_normal((OUT, IN), f32) / f32(np.sqrt(IN)),
            rng.standard_normal(OUT, f32), rng.standard_normal((B, OUT), f32))


def _max_rel_error(actual, expected):
    """The largest error relative to the largest expected magnitude (float32 sums of
    hundreds of terms are not accurate to 1e-5 on their small elements)."""
    return float(np.max(np.abs(actual - expected)) / max(np.max(np.abs(expected)), 1e-30))


def _label(shape):
    return "x".join(map(str, shape))


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("shape", DENSE_SHAPES, ids=_label)
def test_bench_dense_forward(benchmark, shape, implementation):
    inp, W, b, _ = _inputs(shape)
    out = np.empty((shape[0], shape[2]), np.float32)
    benchmark.group = f"dense_forward {_label(shape)} (B x IN x OUT)"
    expected = np.empty(out.shape)
    reference.dense_forward(expected, inp.astype(np.float64), W.astype(np.float64), b)
    if implementation == "steepest":
        cpu.dense_forward(out, inp, W, b)
        benchmark.extra_info["max_rel_error"] = _max_rel_error(out, expected)
        assert benchmark.extra_info["max_rel_error"] < 1e-4
        benchmark(cpu.dense_forward, out, inp, W, b)
    else:
        benchmark(lambda: np.add(np.matmul(inp, W.T, out=out), b, out=out))


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("shape", DENSE_SHAPES, ids=_label)
def test_bench_dense_backward(benchmark, shape, implementation):
    """Both halves of a layer's backward pass: ∂L/∂W, ∂L/∂b and ∂L/∂input."""
    inp, W, b, dout = _inputs(shape)
    dW, db, dinp = np.empty_like(W), np.empty_like(b), np.empty_like(inp)
    benchmark.group = f"dense_backward {_label(shape)} (B x IN x OUT)"
    if implementation == "steepest":
        def run():
            cpu.dense_backward_params(dW, db, dout, inp)
            cpu.dense_backward_input(dinp, dout, W)

        run()
        rW, rb, rinp = np.empty(W.shape), np.empty(b.shape), np.empty(inp.shape)
        reference.dense_backward_params(rW, rb, dout.astype(np.float64), inp.astype(np.float64))
        reference.dense_backward_input(rinp, dout.astype(np.float64), W.astype(np.float64))
        error = max(_max_rel_error(dW, rW), _max_rel_error(db, rb), _max_rel_error(dinp, rinp))
        benchmark.extra_info["max_rel_error"] = error
        assert error < 1e-4
        benchmark(run)
    else:
        def run():
            np.matmul(dout.T, inp, out=dW)
            np.sum(dout, axis=0, out=db)
            np.matmul(dout, W, out=dinp)

        benchmark(run)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("direction", ["forward", "backward"])
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_bench_activation(benchmark, name, direction, implementation):
    rng = np.random.default_rng(1)
    z = rng.standard_normal((128, 128), np.float32) * np.float32(3)
    reference_a = np.empty(z.shape)
    getattr(reference, f"{name}_forward")(reference_a, z.astype(np.float64))
    da = rng.standard_normal(z.shape, np.float32)
    out = np.empty_like(z)
    benchmark.group = f"{name}_{direction} 128x128"
    if implementation == "steepest":
        kernel = getattr(cpu, f"{name}_{direction}")
        args = (out, z) if direction == "forward" else (out, da, reference_a.astype(np.float32))
        kernel(*args)
        expected = np.empty(z.shape)
        if direction == "forward":
            expected[...] = reference_a
        else:
            getattr(reference, f"{name}_backward")(expected, da.astype(np.float64), reference_a)
        benchmark.extra_info["max_rel_error"] = _max_rel_error(out, expected)
        assert benchmark.extra_info["max_rel_error"] < 1e-4
        benchmark(kernel, *args)
    else:
        a32 = reference_a.astype(np.float32)
        numpy_ops = {
            ("sigmoid", "forward"): lambda: np.divide(1, 1 + np.exp(-z), out=out),
            ("relu", "forward"): lambda: np.maximum(z, 0, out=out),
            ("softmax", "forward"): lambda: np.divide(
                e := np.exp(z - z.max(axis=1, keepdims=True)), e.sum(axis=1, keepdims=True),
                out=out),
            ("sigmoid", "backward"): lambda: np.multiply(da, a32 * (1 - a32), out=out),
            ("relu", "backward"): lambda: np.multiply(da, a32 > 0, out=out),
            ("softmax", "backward"): lambda: np.multiply(
                a32, da - (da * a32).sum(axis=1, keepdims=True), out=out),
        }
        benchmark(numpy_ops[(name, direction)])
