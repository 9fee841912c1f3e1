"""Exact losses (issue 11): a network's reported loss comes from its output pre-activations z.

Softmax + cross-entropy is Σₖ yₖ (logsumexp(z) − zₖ) and sigmoid + binary cross-entropy
Σᵢ softplus(zᵢ) − yᵢzᵢ, so a confidently wrong answer costs its full loss instead of the
~27.6 of −log(1e-12) that clamped probabilities cap it at.  Checked here: ``network_evaluate``
(new in every kernel set), ``network_gradient`` and every training loop's epoch loss, against
float64 values computed in this file; and that the training updates are those of the
reference (δ = a − y, untouched by how the loss is reported).
"""

import numpy as np
import pytest
from helpers import assert_close, assert_compiled_without_float64, needs_cuda

from steepest.kernels import codes, cpu, reference

CLAMPED_CAP = -np.log(1e-12)  # ≈ 27.63: the most a clamped sample loss can report
EXACT_PAIRS = [("cross_entropy", "softmax"), ("binary_cross_entropy", "sigmoid")]
SIZES = np.array([6, 5, 4])


def _n_params(sizes):
    return sum(int(i * o + o) for i, o in zip(sizes[:-1], sizes[1:]))


def _logits(params, sizes, acts, X):
    """float64 output pre-activations z of the network (hidden layers by the reference)."""
    hidden = np.empty((X.shape[0], sizes[-2]))
    reference.network_forward(hidden, params[:-(sizes[-2] * sizes[-1] + sizes[-1])],
                              sizes[:-1], acts[:-1], X)
    W = params[-(sizes[-2] * sizes[-1] + sizes[-1]):-sizes[-1]].reshape(sizes[-1], sizes[-2])
    return hidden @ W.T + params[-sizes[-1]:]


def _exact_loss(z, Y, loss):
    """The batch-mean loss from z in float64, by formulas independent of the kernels."""
    if loss == "cross_entropy":
        top = z.max(axis=1, keepdims=True)
        lse = top + np.log(np.exp(z - top).sum(axis=1, keepdims=True))
        return float((Y * (lse - z)).sum(axis=1).mean())
    return float((np.logaddexp(0.0, z) - Y * z).sum(axis=1).mean())  # softplus(z) − y·z


def _confidently_wrong(rng, loss, output, n=7):
    """A network whose output logits are ~±200 and whose targets are the wrong answers, so
    (in float32) most targets' probabilities underflow to 0 and the exact loss is far above
    the cap.

    Returns float64 (params, acts, X, Y) with params exactly representable in float32.
    """
    acts = np.array([codes.TANH, codes.ACTIVATION_CODES[output]], np.int64)
    params = rng.standard_normal(_n_params(SIZES)) * 0.5
    last = SIZES[-2] * SIZES[-1] + SIZES[-1]
    params[-last:] *= 200.0  # |z| in the hundreds through tanh's ±1 hidden outputs
    params = params.astype(np.float32).astype(np.float64)
    X = rng.standard_normal((n, SIZES[0])).astype(np.float32).astype(np.float64)
    z = _logits(params, SIZES, acts, X)
    if loss == "cross_entropy":
        Y = np.eye(SIZES[-1])[z.argmin(axis=1)]  # the least likely class
    else:
        Y = (z < 0).astype(np.float64)  # every unit on the wrong side
    return params, acts, X, Y


def f32(a):
    return np.ascontiguousarray(a, np.float32)


# ---------------------------------------------------------------- (a) exact values, CPU
@pytest.mark.parametrize("loss,output", EXACT_PAIRS)
def test_network_gradient_and_evaluate_report_the_exact_loss(rng, loss, output):
    params, acts, X, Y = _confidently_wrong(rng, loss, output)
    want = _exact_loss(_logits(params, SIZES, acts, X), Y, loss)
    code = codes.LOSS_CODES[loss]
    # in float32 most targets' probabilities (σ or 1 − σ for some unit) are 0, and
    # loss_value, which sees only them, is capped by the clamp far below the exact loss
    a = np.empty((X.shape[0], SIZES[-1]), np.float32)
    cpu.network_forward(a, f32(params), SIZES, acts, f32(X))
    target = (a * Y).sum(axis=1) if output == "softmax" else np.where(Y == 1, a, 1 - a).min(1)
    assert np.mean(target == 0.0) >= 0.5
    clamped = cpu.loss_value(a, f32(Y), code)
    assert clamped < (1 if output == "softmax" else SIZES[-1]) * CLAMPED_CAP + 1e-3
    assert want > 3 * CLAMPED_CAP and want > 1.5 * clamped
    grads = np.empty(params.size, np.float32)
    assert_close(cpu.network_gradient(grads, f32(params), SIZES, acts, code, f32(X), f32(Y)),
                 want, rtol=1e-5)
    ref_grads = np.empty_like(params)
    assert_close(reference.network_gradient(ref_grads, params, SIZES, acts, code, X, Y), want,
                 rtol=1e-12)
    assert_close(grads, ref_grads, rtol=1e-4, atol=1e-5)  # δ = a − y, unchanged
    for kernels, cast in ((cpu, f32), (reference, np.asarray)):
        out = np.full((X.shape[0], SIZES[-1]), np.nan, np.float32 if kernels is cpu else None)
        value = kernels.network_evaluate(out, cast(params), SIZES, acts, code, cast(X), cast(Y))
        assert_close(value, want, rtol=1e-5)
        forward = np.empty_like(out)
        kernels.network_forward(forward, cast(params), SIZES, acts, cast(X))
        assert np.array_equal(out, forward)


def _cpu_epochs(params, acts, loss, X, Y, learning_rate):
    """{loop name: (epoch loss, params after)} for one epoch of every CPU training loop."""
    code, lr = codes.LOSS_CODES[loss], np.float32(learning_rate)
    order = np.arange(X.shape[0])[::-1].copy()
    X, Y = f32(X), f32(Y)
    runs = {}
    p = f32(params)
    runs["sgd_epoch_per_sample"] = (cpu.sgd_epoch_per_sample(p, SIZES, acts, code, X, Y, order,
                                                             lr), p)
    p = f32(params)
    runs["sgd_epoch_minibatch"] = (cpu.sgd_epoch_minibatch(p, SIZES, acts, code, X, Y, order, 3,
                                                           lr), p)
    p = f32(params)
    runs["gd_step_full_batch"] = (cpu.gd_step_full_batch(p, SIZES, acts, code, X, Y, lr), p)
    p = f32(params)
    hyper = np.array([learning_rate, 0.0, 0.0, 0.0, 0.0], np.float32)  # plain SGD
    runs["optimizer_epoch_minibatch"] = (cpu.optimizer_epoch_minibatch(
        p, np.zeros((0, p.size), np.float32), np.zeros(1, np.int64), SIZES, acts, code,
        codes.SGD, hyper, X, Y, order, 2), p)
    return runs


@pytest.mark.parametrize("loss,output", EXACT_PAIRS)
def test_every_cpu_training_loop_reports_the_exact_epoch_loss(rng, loss, output):
    params, acts, X, Y = _confidently_wrong(rng, loss, output)
    want = _exact_loss(_logits(params, SIZES, acts, X), Y, loss)
    # η = 0: every batch sees the same weights, so the epoch loss is the loss of the data
    for name, (value, after) in _cpu_epochs(params, acts, loss, X, Y, 0.0).items():
        assert value == pytest.approx(want, rel=1e-5), name
        assert value > 3 * CLAMPED_CAP, name
        assert np.array_equal(after, f32(params)), name


# ---------------------------------------------------------------- (d) updates unchanged
# after a step the reference's float64 σ may overflow e^{−z} to inf (σ = 0, as it should)
@pytest.mark.filterwarnings("ignore:overflow encountered in exp:RuntimeWarning")
@pytest.mark.parametrize("loss,output", EXACT_PAIRS)
def test_training_updates_are_the_references(rng, loss, output):
    """The loss change touches no update: each loop's parameters after an epoch on the
    confidently wrong network are the reference's (δ = a − y), and so is its loss."""
    params, acts, X, Y = _confidently_wrong(rng, loss, output)
    code = codes.LOSS_CODES[loss]
    order = np.arange(X.shape[0])[::-1].copy()
    lr = 0.01
    expected = {}
    p = params.copy()
    expected["sgd_epoch_per_sample"] = (reference.sgd_epoch_per_sample(
        p, SIZES, acts, code, X, Y, order, lr), p)
    p = params.copy()
    expected["sgd_epoch_minibatch"] = (reference.sgd_epoch_minibatch(
        p, SIZES, acts, code, X, Y, order, 3, lr), p)
    p = params.copy()
    expected["gd_step_full_batch"] = (reference.gd_step_full_batch(p, SIZES, acts, code, X, Y,
                                                                   lr), p)
    p = params.copy()
    expected["optimizer_epoch_minibatch"] = (reference.optimizer_epoch_minibatch(
        p, np.zeros((0, p.size)), np.zeros(1, np.int64), SIZES, acts, code, codes.SGD,
        np.array([lr, 0.0, 0.0, 0.0, 0.0]), X, Y, order, 2), p)
    for name, (value, after) in _cpu_epochs(params, acts, loss, X, Y, lr).items():
        want_value, want_params = expected[name]
        assert not np.allclose(want_params, params), name  # the epoch moved the weights
        assert_close(after, want_params, rtol=1e-4, atol=1e-4)
        assert value == pytest.approx(want_value, rel=1e-4), name
        assert value > 3 * CLAMPED_CAP, name


# ---------------------------------------------------------------- (b) CPU vs reference
ALL_PAIRS = [(loss, output) for loss in codes.LOSS_CODES for output in codes.ACTIVATION_CODES]


@pytest.mark.parametrize("loss,output", ALL_PAIRS)
def test_cpu_network_evaluate_matches_the_reference(rng, loss, output):
    # every loss with every output, the clamped fallbacks (cross-entropy on a sigmoid, say)
    # included; outputs kept in (0, 1)-friendly ranges by modest weights
    sizes = np.array([23, 17, 5])  # widths off the 16-lane grid
    acts = np.array([codes.RELU, codes.ACTIVATION_CODES[output]], np.int64)
    params = rng.standard_normal(_n_params(sizes)) * 0.4
    X = rng.random((37, sizes[0]))
    X[rng.random(X.shape) < 0.8] = 0.0  # the sparse first-layer path
    Y = (np.eye(sizes[-1])[rng.integers(0, sizes[-1], 37)] if loss == "cross_entropy"
         else rng.random((37, sizes[-1])))
    code = codes.LOSS_CODES[loss]
    out = np.full((37, sizes[-1]), np.nan, np.float32)
    value = cpu.network_evaluate(out, f32(params), sizes, acts, code, f32(X), f32(Y))
    ref_out = np.empty((37, sizes[-1]))
    ref_value = reference.network_evaluate(ref_out, params, sizes, acts, code, X, Y)
    assert_close(out, ref_out, rtol=1e-4, atol=1e-6)
    assert_close(value, ref_value, rtol=1e-4, atol=1e-6)
    forward = np.empty_like(out)
    cpu.network_forward(forward, f32(params), sizes, acts, f32(X))
    assert np.array_equal(out, forward)


@pytest.mark.parametrize("loss,output", EXACT_PAIRS + [("mse", "sigmoid")])
def test_cpu_network_evaluate_on_many_rows_runs_in_parallel_blocks(rng, loss, output):
    sizes = np.array([9, 7, 3])
    acts = np.array([codes.TANH, codes.ACTIVATION_CODES[output]], np.int64)
    params = rng.standard_normal(_n_params(sizes))
    n = 5000  # ≥ _fused.PARALLEL_MIN_ROWS: rows split across threads
    X = rng.standard_normal((n, sizes[0]))
    Y = np.eye(3)[rng.integers(0, 3, n)]
    code = codes.LOSS_CODES[loss]
    out = np.empty((n, 3), np.float32)
    value = cpu.network_evaluate(out, f32(params), sizes, acts, code, f32(X), f32(Y))
    ref_out = np.empty((n, 3))
    assert_close(value, reference.network_evaluate(ref_out, params, sizes, acts, code, X, Y),
                 rtol=1e-4)
    assert_close(out, ref_out, rtol=1e-4, atol=1e-6)
    again = np.empty_like(out)
    assert cpu.network_evaluate(again, f32(params), sizes, acts, code, f32(X), f32(Y)) == value


def test_cpu_inference_gives_the_same_bits_on_any_number_of_threads(rng):
    # the rows' blocks go to Python threads (kernels/cpu/spans.py); the loss adds the
    # blocks' sums in block order, so neither it nor any output depends on the split
    import numba

    from steepest.models.threads import numba_threads

    sizes = np.array([9, 7, 3])
    acts = np.array([codes.TANH, codes.SOFTMAX], np.int64)
    params = f32(rng.standard_normal(_n_params(sizes)))
    n = 3001  # a short last block
    X, Y = f32(rng.standard_normal((n, 9))), f32(np.eye(3)[rng.integers(0, 3, n)])
    results = []
    for threads in range(1, numba.config.NUMBA_NUM_THREADS + 1):
        out = np.empty((n, 3), np.float32)
        with numba_threads(threads):
            loss = cpu.network_evaluate(out, params, sizes, acts, codes.CROSS_ENTROPY, X, Y)
        results.append((loss, out))
    for loss, out in results[1:]:
        assert loss == results[0][0]
        np.testing.assert_array_equal(out, results[0][1])


def test_reference_states_the_exact_formulas():
    # one-hot cross-entropy: logsumexp(z) − z_true; binary: softplus(z) − y·z, per unit
    z = np.array([[1000.0, 0.0, -1000.0]])
    y = np.array([[0.0, 0.0, 1.0]])
    assert reference._output_loss(z, None, y, codes.CROSS_ENTROPY, codes.SOFTMAX) == 2000.0
    assert reference._output_loss(z, None, y, codes.BINARY_CROSS_ENTROPY,
                                  codes.SIGMOID) == pytest.approx(2000.0 + np.log(2.0))
    # loss_value still sees only a, clamped
    a = np.array([[1.0, 0.0, 0.0]])
    assert reference.loss_value(a, y, codes.CROSS_ENTROPY) == pytest.approx(CLAMPED_CAP)


def test_network_evaluate_compiles_without_float64_arithmetic():
    assert_compiled_without_float64("""
from steepest.kernels import cpu
X, Y = np.ones((5, 4), np.float32), np.eye(2, dtype=np.float32)[[0, 1, 0, 1, 0]]
params, out = np.ones(23, np.float32), np.empty((5, 2), np.float32)
for loss, output in ((1, 4), (3, 1), (0, 1)):
    sizes, acts = np.array([4, 3, 2]), np.array([1, output])
    cpu.network_evaluate(out, params, sizes, acts, loss, X, Y)
    cpu.sgd_epoch_minibatch(params, sizes, acts, loss, X, Y, np.arange(5), 2, np.float32(0.1))
from steepest.kernels.cpu import _fused, loops, losses  # the compiled entries these take
KERNELS = [_fused.fused_inference, losses.mse_loss, loops.sgd_epoch_minibatch_fused]
""")


# ---------------------------------------------------------------- (c) CUDA (simulator)
@pytest.fixture(scope="module")
def cuda_set():
    """(the CUDA kernel set, numba.cuda); imported here so collection never loads numba.cuda."""
    from steepest.kernels import _cuda
    from steepest.kernels import cuda as kernels

    return kernels, _cuda.load()


@needs_cuda
def test_cuda_exports_network_evaluate(cuda_set):
    kernels, _ = cuda_set
    assert "network_evaluate" in kernels.__all__ and "network_evaluate" in cpu.__all__
    assert "network_evaluate" in reference.__all__


@needs_cuda
@pytest.mark.parametrize("loss,output", EXACT_PAIRS + [("mse", "sigmoid"), ("mae", "softmax")])
def test_cuda_network_evaluate_and_gradient(cuda_set, rng, loss, output):
    kernels, cuda = cuda_set
    if (loss, output) in EXACT_PAIRS:
        params, acts, X, Y = _confidently_wrong(rng, loss, output)
    else:
        acts = np.array([codes.TANH, codes.ACTIVATION_CODES[output]], np.int64)
        params = rng.standard_normal(_n_params(SIZES)) * 0.7
        X, Y = rng.standard_normal((7, SIZES[0])), rng.random((7, SIZES[-1]))
    code = codes.LOSS_CODES[loss]
    out = cuda.to_device(np.full((7, SIZES[-1]), np.nan, np.float32))
    value = kernels.network_evaluate(out, cuda.to_device(f32(params)), SIZES, acts, code,
                                     cuda.to_device(f32(X)), cuda.to_device(f32(Y)))
    ref_out = np.empty((7, SIZES[-1]))
    want = reference.network_evaluate(ref_out, params, SIZES, acts, code, X, Y)
    assert_close(value, want, rtol=1e-5)
    assert_close(out.copy_to_host(), ref_out, rtol=1e-5, atol=1e-6)
    grads = cuda.device_array(params.size, np.float32)
    value = kernels.network_gradient(grads, cuda.to_device(f32(params)), SIZES, acts, code,
                                     cuda.to_device(f32(X)), cuda.to_device(f32(Y)))
    ref_grads = np.empty_like(params)
    assert_close(value, reference.network_gradient(ref_grads, params, SIZES, acts, code, X, Y),
                 rtol=1e-5)
    assert_close(grads.copy_to_host(), ref_grads, rtol=1e-4, atol=1e-4)
    if (loss, output) in EXACT_PAIRS:
        assert value > 3 * CLAMPED_CAP


@needs_cuda
@pytest.mark.parametrize("loss,output", EXACT_PAIRS)
@pytest.mark.parametrize("loop", ["one_block", "tiled", "optimizer"])
def test_cuda_training_epoch_reports_the_exact_loss(cuda_set, rng, monkeypatch, loss, output,
                                                    loop):
    kernels, cuda = cuda_set
    params, acts, X, Y = _confidently_wrong(rng, loss, output, n=6)
    code = codes.LOSS_CODES[loss]
    order = rng.permutation(6)
    lr = 0.01
    dev = cuda.to_device(f32(params))
    args = (cuda.to_device(f32(X)), cuda.to_device(f32(Y)), cuda.to_device(order))
    p = params.copy()
    if loop == "optimizer":
        hyper = np.array([lr, 0.0, 0.0, 0.0, 0.0])
        value = kernels.optimizer_epoch_minibatch(
            dev, cuda.to_device(np.zeros((0, p.size), np.float32)),
            cuda.to_device(np.zeros(1, np.int64)), SIZES, acts, code, codes.SGD,
            cuda.to_device(f32(hyper)), *args, 4)
        want = reference.optimizer_epoch_minibatch(p, np.zeros((0, p.size)),
                                                   np.zeros(1, np.int64), SIZES, acts, code,
                                                   codes.SGD, hyper, X, Y, order, 4)
    else:
        if loop == "tiled":  # batches above ONE_BLOCK_MAX_BATCH take the tiled launches
            from steepest.kernels.cuda import loops
            monkeypatch.setattr(loops, "ONE_BLOCK_MAX_BATCH", 2)
        value = kernels.sgd_epoch_minibatch(dev, SIZES, acts, code, *args, 4, np.float32(lr))
        want = reference.sgd_epoch_minibatch(p, SIZES, acts, code, X, Y, order, 4, lr)
    assert value > 3 * CLAMPED_CAP
    assert_close(value, want, rtol=1e-5)
    assert_close(dev.copy_to_host(), p, rtol=1e-4, atol=1e-4)


def test_network_evaluate_chooses_its_branch_as_the_kernels_do():
    # network_evaluate picks the exact-loss branch in Python (so that a call compiles only
    # the branch it takes); the compiled kernels decide the same question in _maths
    from steepest.kernels.cpu import _maths
    from steepest.kernels.cpu import network as cpu_network

    chosen = {(loss, code): cpu_network._loss_from_logits(loss, code)
              for loss in codes.LOSS_CODES.values()
              for code in codes.ACTIVATION_CODES.values()}
    assert chosen == {pair: _maths.loss_from_logits(*pair) for pair in chosen}
    assert sorted(pair for pair, exact in chosen.items() if exact) == sorted(
        (codes.LOSS_CODES[loss], codes.ACTIVATION_CODES[output]) for loss, output in EXACT_PAIRS)
