"""Every CUDA kernel against the float64 reference, on the simulator when there is no GPU.

Fresh seeded inputs, shapes that are not multiples of the 16 × 16 tiles or of the blocks;
tiny, because the simulator runs every GPU thread as a Python thread.
"""

import numpy as np
import pytest
from helpers import assert_close, needs_cuda

from steepest.kernels import codes, cpu, reference

pytestmark = needs_cuda

SHAPES = [(1, 1, 1), (5, 23, 7), (17, 33, 18)]  # (B, IN, OUT): 17 and 18 straddle a tile edge
ACTIVATIONS = ["identity", "sigmoid", "tanh", "relu", "softmax"]


@pytest.fixture(scope="module")
def cuda_set():
    """(the CUDA kernel set, numba.cuda); imported here so collection never loads numba.cuda."""
    from steepest.kernels import _cuda
    from steepest.kernels import cuda as kernels

    return kernels, _cuda.load()


def both(cuda_set, name, output_shapes, *inputs):
    """Run kernel ``name`` on CUDA and in the reference; return (cuda outs, ref outs, results)."""
    kernels, cuda = cuda_set
    dev_out = [cuda.to_device(np.full(s, np.nan, np.float32)) for s in output_shapes]
    ref_out = [np.full(s, np.nan) for s in output_shapes]
    real = [isinstance(x, np.ndarray) and x.dtype.kind == "f" for x in inputs]
    # float arrays go to the device as float32; ints (sizes, activation codes) stay on the host
    dev_in = [cuda.to_device(np.ascontiguousarray(x, np.float32)) if is_real else x
              for x, is_real in zip(inputs, real)]
    r1 = getattr(kernels, name)(*dev_out, *dev_in)
    r2 = getattr(reference, name)(*ref_out, *[np.asarray(x, np.float64) if is_real else x
                                             for x, is_real in zip(inputs, real)])
    return [d.copy_to_host() for d in dev_out], ref_out, r1, r2


def test_cuda_cpu_and_reference_export_the_same_kernels(cuda_set):
    kernels, _ = cuda_set
    assert set(kernels.__all__) == set(cpu.__all__) == set(reference.__all__)
    for name in reference.__all__:
        assert callable(getattr(kernels, name)), name


@pytest.mark.parametrize("B,IN,OUT", SHAPES)
def test_dense_forward(cuda_set, rng, B, IN, OUT):
    inp, W, b = rng.random((B, IN)), rng.standard_normal((OUT, IN)), rng.standard_normal(OUT)
    (c,), (r,), _, _ = both(cuda_set, "dense_forward", [(B, OUT)], inp, W, b)
    assert_close(c, r, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("B,IN,OUT", SHAPES)
def test_dense_backward_input(cuda_set, rng, B, IN, OUT):
    dout, W = rng.standard_normal((B, OUT)), rng.standard_normal((OUT, IN))
    (c,), (r,), _, _ = both(cuda_set, "dense_backward_input", [(B, IN)], dout, W)
    assert_close(c, r, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("B,IN,OUT", SHAPES)
def test_dense_backward_params_overwrites(cuda_set, rng, B, IN, OUT):
    # outputs start as NaN (see ``both``): a kernel that accumulated would leave NaN behind
    dout, inp = rng.standard_normal((B, OUT)), rng.random((B, IN))
    (dW, db), (rW, rb), _, _ = both(cuda_set, "dense_backward_params", [(OUT, IN), (OUT,)],
                                    dout, inp)
    assert_close(dW, rW, rtol=1e-5, atol=1e-5)
    assert_close(db, rb, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_forward(cuda_set, rng, name):
    z = rng.standard_normal((5, 23)) * 4
    (c,), (r,), _, _ = both(cuda_set, f"{name}_forward", [z.shape], z)
    assert_close(c, r, rtol=1e-5, atol=1e-6)
    (c2,), _, _, _ = both(cuda_set, "activation_forward", [z.shape], z,
                          codes.ACTIVATION_CODES[name])
    assert_close(c2, r, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_backward(cuda_set, rng, name):
    z, da = rng.standard_normal((7, 10)) * 2, rng.standard_normal((7, 10))
    a = np.empty(z.shape)
    getattr(reference, f"{name}_forward")(a, z)
    (c,), (r,), _, _ = both(cuda_set, f"{name}_backward", [z.shape], da, a)
    assert_close(c, r, rtol=1e-5, atol=1e-6)
    (c2,), _, _, _ = both(cuda_set, "activation_backward", [z.shape], da, a,
                          codes.ACTIVATION_CODES[name])
    assert_close(c2, r, rtol=1e-5, atol=1e-6)


@pytest.mark.filterwarnings("ignore:overflow encountered in exp")  # the reference, not CUDA
def test_sigmoid_saturates_and_softmax_stays_finite(cuda_set):
    z = np.array([[-1000.0, -89.0, 0.0, 89.0, 1000.0]])
    (a,), _, _, _ = both(cuda_set, "sigmoid_forward", [z.shape], z)
    assert np.isfinite(a).all() and a[0, 0] == 0.0 and a[0, 2] == 0.5 and a[0, -1] == 1.0
    (s,), _, _, _ = both(cuda_set, "softmax_forward", [(1, 3)], np.array([[1000.0, 0.0, -1000.0]]))
    assert_close(s, [[1.0, 0.0, 0.0]])


@pytest.mark.parametrize("loss", ["mse", "cross_entropy", "mae", "binary_cross_entropy"])
def test_loss_values_and_gradients(cuda_set, rng, loss):
    kernels, cuda = cuda_set
    shape = (9, 13)
    a = np.empty(shape)
    reference.softmax_forward(a, rng.standard_normal(shape))
    y = np.eye(shape[1])[rng.integers(0, shape[1], shape[0])]
    a_dev = cuda.to_device(a.astype(np.float32))
    y_dev = cuda.to_device(y.astype(np.float32))
    expected = getattr(reference, f"{loss}_loss")(a, y)
    value = getattr(kernels, f"{loss}_loss")(a_dev, y_dev)
    assert isinstance(value, float)
    assert_close(value, expected, rtol=1e-5)
    assert_close(kernels.loss_value(a_dev, y_dev, codes.LOSS_CODES[loss]), expected, rtol=1e-5)
    (c,), (r,), _, _ = both(cuda_set, f"{loss}_loss_backward", [shape], a, y)
    assert_close(c, r, rtol=1e-5, atol=1e-6)


def test_cross_entropy_clamps_zero_probabilities(cuda_set):
    kernels, cuda = cuda_set
    value = kernels.cross_entropy_loss(cuda.to_device(np.array([[0.0, 1.0]], np.float32)),
                                       cuda.to_device(np.array([[1.0, 0.0]], np.float32)))
    assert np.isfinite(value) and value == pytest.approx(-np.log(1e-12), rel=1e-5)


@pytest.mark.parametrize("loss", ["mse", "cross_entropy", "mae", "binary_cross_entropy"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_output_delta(cuda_set, rng, loss, activation):
    shape = (6, 11)
    a = np.empty(shape)
    getattr(reference, f"{activation}_forward")(a, rng.standard_normal(shape))
    if loss in ("cross_entropy", "binary_cross_entropy"):  # keep 1/a and 1/(1 − a) well scaled
        a = np.clip(a, 0.05, 0.95)
    y = (np.eye(shape[1])[rng.integers(0, shape[1], shape[0])] if loss == "cross_entropy"
         else rng.random(shape))
    args = (a, y, codes.LOSS_CODES[loss], codes.ACTIVATION_CODES[activation])
    (c,), (r,), _, _ = both(cuda_set, "output_delta", [shape], *args)
    assert_close(c, r, rtol=1e-4, atol=1e-6)


def test_step_forward(cuda_set, rng):
    z = rng.standard_normal((5, 23))
    z[0, :3] = 0.0  # the step is 1 at exactly 0
    (c,), (r,), _, _ = both(cuda_set, "step_forward", [z.shape], z)
    assert np.array_equal(c, r)


def test_sigmoid_binary_cross_entropy_backward(cuda_set, rng):
    a = np.empty((5, 7))
    reference.sigmoid_forward(a, rng.standard_normal((5, 7)))
    y = rng.random((5, 7))
    (c,), (r,), _, _ = both(cuda_set, "sigmoid_binary_cross_entropy_backward", [(5, 7)], a, y)
    assert_close(c, r, rtol=1e-5, atol=1e-7)


def test_softmax_cross_entropy_backward(cuda_set, rng):
    a = np.empty((5, 7))
    reference.softmax_forward(a, rng.standard_normal((5, 7)))
    y = np.eye(7)[rng.integers(0, 7, 5)]
    (c,), (r,), _, _ = both(cuda_set, "softmax_cross_entropy_backward", [(5, 7)], a, y)
    assert_close(c, r, rtol=1e-5, atol=1e-7)


def test_sgd_step(cuda_set, rng):
    kernels, cuda = cuda_set
    params, grads = rng.standard_normal(301), rng.standard_normal(301)  # not a block multiple
    dev = cuda.to_device(params.astype(np.float32))
    kernels.sgd_step(dev, cuda.to_device(grads.astype(np.float32)), np.float32(0.3))
    expected = params.copy()
    reference.sgd_step(expected, grads, 0.3)
    assert_close(dev.copy_to_host(), expected, rtol=1e-5, atol=1e-6)


OPTIMIZER_STEPS = {  # name: (state vectors, hyper-parameters after the learning rate)
    "momentum_step": (1, (0.9, 1e-3)),           # μ, λ
    "adagrad_step": (1, (1e-7, 1e-3)),           # ε, λ
    "rmsprop_step": (1, (0.9, 1e-7, 1e-3)),      # ρ, ε, λ
    "adam_step": (2, (0.9, 0.999, 1e-7, 1e-3, 3)),  # β₁, β₂, ε, λ, t
}


@pytest.mark.parametrize("name", list(OPTIMIZER_STEPS))
def test_optimizer_steps(cuda_set, rng, name):
    kernels, cuda = cuda_set
    n_state, hyper = OPTIMIZER_STEPS[name]
    params, grads = rng.standard_normal(203), rng.standard_normal(203)
    state = [rng.random(203) for _ in range(n_state)]  # sums of squares stay ≥ 0
    dev = [cuda.to_device(x.astype(np.float32)) for x in [params, *state, grads]]
    getattr(kernels, name)(*dev, 0.05, *hyper)
    expected = [x.copy() for x in [params, *state, grads]]
    getattr(reference, name)(*expected, 0.05, *hyper)
    for got, want in zip(dev, expected):
        assert_close(got.copy_to_host(), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("optimizer", list(codes.OPTIMIZER_CODES))
def test_optimizer_step_counts_and_updates(cuda_set, rng, optimizer):
    kernels, cuda = cuda_set
    code = codes.OPTIMIZER_CODES[optimizer]
    slots = codes.STATE_SLOTS[code]
    hyper = np.array([0.05, 1e-3, 0.9, 0.999, 1e-7], np.float32)
    params, grads = rng.standard_normal(77), rng.standard_normal(77)
    state = rng.random((slots, 77))
    step = np.array([4], np.int64)
    dev = [cuda.to_device(x) for x in (params.astype(np.float32), state.astype(np.float32),
                                        step)]
    kernels.optimizer_step(dev[0], dev[1], dev[2], cuda.to_device(grads.astype(np.float32)),
                           code, cuda.to_device(hyper))
    reference.optimizer_step(params, state, step, grads, code, hyper.astype(np.float64))
    assert dev[2].copy_to_host()[0] == step[0] == 5
    assert_close(dev[0].copy_to_host(), params, rtol=1e-5, atol=1e-6)
    assert_close(dev[1].copy_to_host(), state, rtol=1e-5, atol=1e-6)


NETWORKS = [  # (sizes, activation codes, loss code)
    ([6, 5, 3], [codes.TANH, codes.SOFTMAX], codes.CROSS_ENTROPY),
    ([7, 17, 4, 2], [codes.RELU, codes.SIGMOID, codes.SIGMOID], codes.MSE),
]


def _network_inputs(rng, sizes, n):
    n_params = sum(o * i + o for i, o in zip(sizes[:-1], sizes[1:]))
    params = rng.standard_normal(n_params) * 0.5
    X = rng.standard_normal((n, sizes[0]))
    Y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], n)]
    return params, X, Y


@pytest.mark.parametrize("sizes,acts,loss", NETWORKS)
def test_network_forward_and_gradient(cuda_set, rng, sizes, acts, loss):
    params, X, Y = _network_inputs(rng, sizes, 19)
    sizes, acts = np.array(sizes), np.array(acts)
    (out,), (ref_out,), _, _ = both(cuda_set, "network_forward", [(19, sizes[-1])], params, sizes,
                                    acts, X)
    assert_close(out, ref_out, rtol=1e-5, atol=1e-6)
    (g,), (ref_g,), value, ref_value = both(cuda_set, "network_gradient", [params.shape], params,
                                            sizes, acts, loss, X, Y)
    assert_close(g, ref_g, rtol=1e-4, atol=1e-6)
    assert_close(value, ref_value, rtol=1e-5)


def test_network_forward_blocks_matches_the_reference(cuda_set, rng):
    # fit's training accuracy: several runs of rows, each into its own out, in one call
    kernels, cuda = cuda_set
    sizes, acts = np.array([6, 5, 3]), np.array([codes.TANH, codes.SOFTMAX])
    params, X, _ = _network_inputs(rng, list(sizes), 30)
    spans = [(0, 7), (7, 8), (12, 30)]
    outs = [cuda.to_device(np.full((b - a, 3), np.nan, np.float32)) for a, b in spans]
    kernels.network_forward_blocks(outs, cuda.to_device(params.astype(np.float32)), sizes, acts,
                                   [cuda.to_device(X[a:b].astype(np.float32)) for a, b in spans])
    ref_outs = [np.full((b - a, 3), np.nan) for a, b in spans]
    reference.network_forward_blocks(ref_outs, params, sizes, acts, [X[a:b] for a, b in spans])
    for out, ref_out in zip(outs, ref_outs):
        assert_close(out.copy_to_host(), ref_out, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("optimizer,batch_size", [("adam", 4), ("momentum", 19)])
def test_optimizer_epoch_minibatch(cuda_set, rng, optimizer, batch_size):
    kernels, cuda = cuda_set
    sizes, acts, loss = NETWORKS[0]
    params, X, Y = _network_inputs(rng, sizes, 13)
    code = codes.OPTIMIZER_CODES[optimizer]
    state = np.zeros((codes.STATE_SLOTS[code], params.size))
    step = np.array([2], np.int64)
    hyper = np.array([0.05, 1e-3, 0.9, 0.999, 1e-7])
    order = rng.permutation(13)
    dev = {"params": cuda.to_device(params.astype(np.float32)),
           "state": cuda.to_device(state.astype(np.float32)), "step": cuda.to_device(step)}
    value = kernels.optimizer_epoch_minibatch(
        dev["params"], dev["state"], dev["step"], np.array(sizes), np.array(acts), loss, code,
        cuda.to_device(hyper.astype(np.float32)), cuda.to_device(X.astype(np.float32)),
        cuda.to_device(Y.astype(np.float32)), cuda.to_device(order), batch_size)
    expected = reference.optimizer_epoch_minibatch(params, state, step, np.array(sizes),
                                                   np.array(acts), loss, code, hyper, X, Y,
                                                   order, batch_size)
    assert_close(value, expected, rtol=1e-5)
    assert dev["step"].copy_to_host()[0] == step[0] == 2 + -(-13 // batch_size)
    assert_close(dev["params"].copy_to_host(), params, rtol=1e-4, atol=1e-5)
    assert_close(dev["state"].copy_to_host(), state, rtol=1e-4, atol=1e-6)
