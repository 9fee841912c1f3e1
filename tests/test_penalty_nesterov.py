"""scikit-learn's L2 penalty ``alpha`` and its Nesterov momentum in every optimiser epoch loop
(issue 12): the reference against scikit-learn's formulas written out in NumPy (and against
scikit-learn itself), the CPU against the reference, CUDA against the CPU, and the models
layer's ``alpha``/``nesterov`` (configurations, the SGD fast path)."""

import json

import numpy as np
import pytest
from helpers import assert_close, finite_difference_gradient, make_problem, needs_cuda

import steepest
from steepest.kernels import codes, cpu, reference
from steepest.models.optimizers import (
    OPTIMIZERS,
    SGD,
    Adagrad,
    Adam,
    Momentum,
    RMSProp,
    optimizer_from_config,
)


def f32(a):
    return np.ascontiguousarray(a, dtype=np.float32)


def weight_mask(sizes):
    """True at the weights of the flat vector W⁰, b⁰, W¹, b¹, …, False at the biases."""
    mask = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        mask += [True] * (n_in * n_out) + [False] * n_out
    return np.array(mask)


def hyper_of(learning_rate, alpha, momentum=0.0, nesterov=False, weight_decay=0.0,
             beta2=0.999, eps=1e-8):
    hyper = np.zeros(codes.N_HYPER)
    hyper[codes.HYPER_LEARNING_RATE] = learning_rate
    hyper[codes.HYPER_WEIGHT_DECAY] = weight_decay
    hyper[codes.HYPER_BETA1] = momentum
    hyper[codes.HYPER_BETA2] = beta2
    hyper[codes.HYPER_EPS] = eps
    hyper[codes.HYPER_L2] = alpha
    hyper[codes.HYPER_NESTEROV] = float(nesterov)
    return hyper


# ---------------------------------------------------------------- scikit-learn's formulas
def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def sklearn_epochs(params, sizes, X, Y, orders, batch, learning_rate, alpha, momentum=0.0,
                   nesterov=False):
    """Epochs of scikit-learn's MLP (tanh hidden layers, softmax + log loss) with its SGD
    solver, written out from ``_backprop`` and ``SGDOptimizer._get_updates``: per batch of B
    rows, loss + ½α‖W‖²/B, coef grads (aᵀδ + αW)/B, intercept grads Σδ/B, then
    v ← μv − ηg and θ ← θ + v (θ ← θ + μv − ηg with Nesterov).  Weights as scikit-learn
    keeps them, (IN, OUT).  Returns (the flat parameters, the epochs' loss_curve_)."""
    coefs, intercepts, offset = [], [], 0
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        coefs.append(params[offset:offset + n_out * n_in].reshape(n_out, n_in).T.copy())
        offset += n_out * n_in
        intercepts.append(params[offset:offset + n_out].copy())
        offset += n_out
    variables = coefs + intercepts
    velocities = [np.zeros_like(v) for v in variables]
    n_layers, n = len(coefs), X.shape[0]
    curve = []
    for order in orders:
        accumulated = 0.0
        for start in range(0, n, batch):
            rows = order[start:start + batch]
            B = len(rows)
            acts = [X[rows]]
            for layer in range(n_layers):
                z = acts[-1] @ coefs[layer] + intercepts[layer]
                acts.append(np.tanh(z) if layer < n_layers - 1 else _softmax(z))
            loss = -np.sum(Y[rows] * np.log(acts[-1])) / B
            loss += 0.5 * alpha * sum(np.dot(c.ravel(), c.ravel()) for c in coefs) / B
            delta = acts[-1] - Y[rows]
            coef_grads, intercept_grads = [None] * n_layers, [None] * n_layers
            for layer in range(n_layers - 1, -1, -1):
                coef_grads[layer] = (acts[layer].T @ delta + alpha * coefs[layer]) / B
                intercept_grads[layer] = delta.sum(axis=0) / B
                if layer > 0:
                    delta = (delta @ coefs[layer].T) * (1.0 - acts[layer] ** 2)
            grads = coef_grads + intercept_grads
            updates = [momentum * v - learning_rate * g for v, g in zip(velocities, grads)]
            velocities = updates
            if nesterov:
                updates = [momentum * v - learning_rate * g for v, g in zip(velocities, grads)]
            for variable, update in zip(variables, updates):
                variable += update
            accumulated += loss * B
        curve.append(accumulated / n)
    flat = np.concatenate([p for c, b in zip(coefs, intercepts) for p in (c.T.ravel(), b)])
    return flat, curve


def reference_epochs(params, sizes, acts, loss, X, Y, orders, batch, optimizer, hyper):
    """The reference loop over ``orders``: (params, state, step, losses)."""
    params = params.copy()
    state = np.zeros((codes.STATE_SLOTS[optimizer], params.size))
    step = np.zeros(1, np.int64)
    losses = [reference.optimizer_epoch_minibatch(params, state, step, sizes, acts, loss,
                                                  optimizer, hyper, X, Y, order, batch)
              for order in orders]
    return params, state, step, losses


SKLEARN_CASES = {  # name: (optimizer code, η, μ, Nesterov)
    "sgd": (codes.SGD, 0.3, 0.0, False),
    "momentum": (codes.MOMENTUM, 0.05, 0.9, False),
    "nesterov": (codes.MOMENTUM, 0.05, 0.9, True),
}


@pytest.mark.parametrize("case", list(SKLEARN_CASES))
@pytest.mark.parametrize("n,batch", [(13, 4), (11, 11), (7, 1)])
def test_reference_penalty_matches_scikit_learns_formula(rng, case, n, batch):
    # several layers; 13 rows in batches of 4 end with a short batch of 1
    code, lr, mu, nesterov = SKLEARN_CASES[case]
    params, sizes, acts, loss, X, Y = make_problem(rng, [5, 6, 4, 3], "tanh", "softmax",
                                                   "cross_entropy", n)
    alpha = 0.7
    orders = [rng.permutation(n) for _ in range(3)]
    want, curve = sklearn_epochs(params, sizes, X, Y, orders, batch, lr, alpha, mu, nesterov)
    got, _, step, losses = reference_epochs(params, sizes, acts, loss, X, Y, orders, batch,
                                            code, hyper_of(lr, alpha, mu, nesterov))
    assert step[0] == 3 * -(-n // batch)
    assert_close(got, want, rtol=1e-10, atol=1e-12)
    assert_close(losses, curve, rtol=1e-10, atol=1e-12)
    # and α made a difference to both
    plain, _, _, plain_losses = reference_epochs(params, sizes, acts, loss, X, Y, orders, batch,
                                                 code, hyper_of(lr, 0.0, mu, nesterov))
    assert np.abs(plain - got).max() > 1e-3 and losses[0] > plain_losses[0] + 1e-3


def test_reference_epochs_reproduce_scikit_learns_mlp(rng):
    """The reference loop against scikit-learn's own MLPRegressor (solver "sgd", alpha,
    Nesterov momentum, no shuffling, a short last batch): same weights, same loss_curve_."""
    neural_network = pytest.importorskip("sklearn.neural_network")
    sizes = np.array([4, 6, 5, 1])
    X = rng.standard_normal((23, 4))
    y = rng.standard_normal(23)
    mlp = neural_network.MLPRegressor(
        hidden_layer_sizes=(6, 5), activation="tanh", solver="sgd", alpha=0.4, batch_size=5,
        learning_rate="constant", learning_rate_init=0.02, momentum=0.8,
        nesterovs_momentum=True, shuffle=False, max_iter=1, tol=0.0, n_iter_no_change=10 ** 6,
        random_state=0)
    with pytest.warns(Warning):  # one iteration: "maximum iterations reached"
        mlp.fit(X, y)  # to initialise it; the weights are then replaced by ours
    params = rng.standard_normal(4 * 6 + 6 + 6 * 5 + 5 + 5 + 1) * 0.5
    offset, coefs, intercepts = 0, [], []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        coefs.append(params[offset:offset + n_out * n_in].reshape(n_out, n_in).T.copy())
        offset += n_out * n_in
        intercepts.append(params[offset:offset + n_out].copy())
        offset += n_out
    mlp.coefs_, mlp.intercepts_ = coefs, intercepts
    mlp.set_params(warm_start=True, max_iter=3)
    with pytest.warns(Warning):
        mlp.fit(X, y)
    acts = np.array([codes.TANH, codes.TANH, codes.IDENTITY])
    got, _, _, losses = reference_epochs(params, sizes, acts, codes.MSE, X, y.reshape(-1, 1),
                                         [np.arange(23)] * 3, 5, codes.MOMENTUM,
                                         hyper_of(0.02, 0.4, 0.8, nesterov=True))
    want = np.concatenate([p for c, b in zip(mlp.coefs_, mlp.intercepts_)
                           for p in (c.T.ravel(), b)])
    assert_close(got, want, rtol=1e-9, atol=1e-12)
    assert_close(losses, mlp.loss_curve_[-3:], rtol=1e-9, atol=1e-12)


def test_the_penalty_gradient_is_that_of_half_alpha_w_squared_over_b(rng):
    sizes = [4, 5, 3]
    params = rng.standard_normal(4 * 5 + 5 + 5 * 3 + 3)
    alpha, B = 0.9, 6

    def penalty(theta):
        return reference.l2_penalty(np.zeros_like(theta), theta, sizes, alpha, B) / B

    grads = np.zeros_like(params)
    value = reference.l2_penalty(grads, params, sizes, alpha, B)
    mask = weight_mask(sizes)
    assert value == pytest.approx(0.5 * alpha * np.sum(params[mask] ** 2), rel=1e-12)
    assert_close(grads, finite_difference_gradient(penalty, params), rtol=1e-7, atol=1e-9)
    assert_close(grads[mask], alpha / B * params[mask], rtol=1e-12, atol=0)
    assert not grads[~mask].any()  # biases: no penalty


@pytest.mark.parametrize("kernels", [reference, cpu], ids=["reference", "cpu"])
def test_one_penalised_step_follows_the_gradient_of_the_penalised_batch_loss(rng, kernels):
    # one full-batch SGD step of η = 1: θ − θ′ is the gradient the loop used, which must be
    # that of (mean loss + ½α‖W‖²/B), checked by finite differences; the returned loss is
    # that objective at θ
    params, sizes, acts, loss, X, Y = make_problem(rng, [5, 4, 3], "sigmoid", "softmax",
                                                   "cross_entropy", 9)
    alpha, n = 0.6, 9
    mask = weight_mask(sizes)

    def objective(theta):
        penalty = 0.5 * alpha * np.sum(theta[mask] ** 2) / n
        out = np.empty((n, 3))
        return reference.network_evaluate(out, theta, sizes, acts, loss, X, Y) + penalty

    expected = finite_difference_gradient(objective, params)
    convert = f32 if kernels is cpu else np.array
    theta = convert(params)
    value = kernels.optimizer_epoch_minibatch(
        theta, np.zeros((0, params.size), theta.dtype), np.zeros(1, np.int64), sizes, acts,
        loss, codes.SGD, convert(hyper_of(1.0, alpha)), convert(X), convert(Y), np.arange(n), n)
    tol = dict(rtol=1e-7, atol=1e-8) if kernels is reference else dict(rtol=1e-4, atol=2e-6)
    assert_close(params - theta, expected, **tol)
    assert value == pytest.approx(objective(params), rel=tol["rtol"])


@pytest.mark.parametrize("kernels", [reference, cpu], ids=["reference", "cpu"])
def test_biases_get_no_penalty(rng, kernels):
    # one full-batch step from the same start with and without α: the biases move the same
    # (bit for bit), the weights by η(α/B)·W more
    params, sizes, acts, loss, X, Y = make_problem(rng, [6, 7, 4], "relu", "sigmoid",
                                                   "binary_cross_entropy", 10)
    convert = f32 if kernels is cpu else np.array
    lr, alpha = 0.5, 2.0
    results = []
    for a in (0.0, alpha):
        theta = convert(params)
        kernels.optimizer_epoch_minibatch(
            theta, np.zeros((0, params.size), theta.dtype), np.zeros(1, np.int64), sizes, acts,
            loss, codes.SGD, convert(hyper_of(lr, a)), convert(X), convert(Y), np.arange(10),
            10)
        results.append(theta)
    plain, penalised = results
    mask = weight_mask(sizes)
    assert np.array_equal(penalised[~mask], plain[~mask])
    assert_close(plain[mask] - penalised[mask], lr * alpha / 10 * convert(params)[mask],
                 rtol=1e-4 if kernels is cpu else 1e-10, atol=1e-6 if kernels is cpu else 0)


@pytest.mark.parametrize("kernels", [reference, cpu], ids=["reference", "cpu"])
def test_the_single_optimizer_step_ignores_alpha(rng, kernels):
    # documented: a single step has no batch and no weights/biases split; the loops apply α
    convert = f32 if kernels is cpu else np.array
    params, grads = rng.standard_normal(17), rng.standard_normal(17)
    results = []
    for alpha in (0.0, 5.0):
        theta, state = convert(params), convert(np.zeros((2, 17)))
        kernels.optimizer_step(theta, state, np.zeros(1, np.int64), convert(grads), codes.ADAM,
                               convert(hyper_of(0.01, alpha, 0.9)))
        results.append(theta)
    assert np.array_equal(results[0], results[1])


# ---------------------------------------------------------------- Nesterov
@pytest.mark.parametrize("kernels", [reference, cpu], ids=["reference", "cpu"])
def test_nesterov_steps_match_scikit_learns_formula(rng, kernels):
    convert = f32 if kernels is cpu else np.array
    P, lr, mu, wd = 41, 0.07, 0.85, 0.02
    theta0, v0 = rng.standard_normal(P), rng.standard_normal(P) * 0.1
    want_p, want_v = theta0.copy(), v0.copy()
    got_p, got_v = convert(theta0), convert(v0)
    # optimizer_step with the Nesterov slot set is the same update
    via_p, via_v = convert(theta0), convert(v0)[None, :].copy()
    step = np.zeros(1, np.int64)
    hyper = convert(hyper_of(lr, 0.0, mu, nesterov=True, weight_decay=wd))
    for _ in range(5):
        grads = rng.standard_normal(P)
        g = grads + wd * want_p
        want_v = mu * want_v - lr * g               # the new velocity
        want_p = want_p + (mu * want_v - lr * g)    # θ + μv − ηg
        kernels.momentum_step(got_p, got_v, convert(grads), lr, mu, wd, True)
        kernels.optimizer_step(via_p, via_v, step, convert(grads), codes.MOMENTUM, hyper)
    tol = dict(rtol=1e-5, atol=1e-6) if kernels is cpu else dict(rtol=1e-12, atol=1e-14)
    assert_close(got_p, want_p, **tol)
    assert_close(got_v, want_v, **tol)
    assert_close(via_p, want_p, **tol)
    assert_close(via_v[0], want_v, **tol)
    # without it, classical momentum: θ + v
    plain_p, plain_v = convert(theta0), convert(v0)
    kernels.momentum_step(plain_p, plain_v, convert(grads), lr, mu, wd)
    assert_close(plain_p, theta0 + (mu * v0 - lr * (grads + wd * theta0)), **tol)


def test_nesterov_steps_match_scikit_learns_sgd_optimizer(rng):
    optimizers = pytest.importorskip("sklearn.neural_network._stochastic_optimizers")
    theta = [rng.standard_normal((3, 4)), rng.standard_normal(4)]
    sk = optimizers.SGDOptimizer([p.copy() for p in theta], learning_rate_init=0.05,
                                 lr_schedule="constant", momentum=0.9, nesterov=True)
    sk_params = [p.copy() for p in theta]
    ours = np.concatenate([p.ravel() for p in theta])
    velocity = np.zeros_like(ours)
    for _ in range(4):
        grads = [rng.standard_normal(p.shape) for p in theta]
        sk.update_params(sk_params, grads)
        reference.momentum_step(ours, velocity, np.concatenate([g.ravel() for g in grads]),
                                0.05, 0.9, 0.0, nesterov=True)
    assert_close(ours, np.concatenate([p.ravel() for p in sk_params]), rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------- CPU against the reference
CPU_CASES = {  # name: (code, η, μ/β₁, Nesterov)
    "sgd": (codes.SGD, 0.3, 0.0, False),
    "momentum": (codes.MOMENTUM, 0.03, 0.9, False),
    "nesterov": (codes.MOMENTUM, 0.03, 0.9, True),
    "adam": (codes.ADAM, 0.02, 0.9, False),
}


@pytest.mark.parametrize("case", list(CPU_CASES))
@pytest.mark.parametrize("n,batch", [(13, 4), (13, 1), (13, 13), (300, 280)])
def test_cpu_penalised_epochs_match_reference(rng, case, n, batch):
    # 300 rows in batches of 280: the gradient is accumulated over chunks of 256 + 24 rows,
    # and the last batch is short (20); the padded layout has padding lanes in every layer
    code, lr, b1, nesterov = CPU_CASES[case]
    params, sizes, acts, loss, X, Y = make_problem(rng, [7, 9, 5, 3], "tanh", "softmax",
                                                   "cross_entropy", n)
    hyper = hyper_of(lr, 0.5, b1, nesterov, weight_decay=0.01)
    ref_p, ref_s, ref_t = params.copy(), np.zeros((codes.STATE_SLOTS[code], params.size)), \
        np.zeros(1, np.int64)
    got_p, got_s, got_t = f32(ref_p), f32(ref_s), np.zeros(1, np.int64)
    for _ in range(2):  # the second epoch from a non-zero state
        order = rng.permutation(n)
        ref_loss = reference.optimizer_epoch_minibatch(ref_p, ref_s, ref_t, sizes, acts, loss,
                                                       code, hyper, X, Y, order, batch)
        got_loss = cpu.optimizer_epoch_minibatch(got_p, got_s, got_t, sizes, acts, loss, code,
                                                 f32(hyper), f32(X), f32(Y), order, batch)
        assert got_loss == pytest.approx(ref_loss, rel=1e-4)
    assert got_t[0] == ref_t[0]
    assert_close(got_p, ref_p, rtol=1e-4, atol=2e-5)
    assert_close(got_s, ref_s, rtol=1e-4, atol=2e-5)


@pytest.mark.parametrize("kernels", [reference, cpu], ids=["reference", "cpu"])
def test_a_five_slot_hyper_vector_means_no_penalty_and_no_nesterov(rng, kernels):
    params, sizes, acts, loss, X, Y = make_problem(rng, [5, 4, 3], "tanh", "softmax",
                                                   "cross_entropy", 9)
    convert = f32 if kernels is cpu else np.array
    results = []
    for hyper in (hyper_of(0.05, 0.0, 0.9), hyper_of(0.05, 0.0, 0.9)[:5]):
        theta, state = convert(params), convert(np.zeros((1, params.size)))
        value = kernels.optimizer_epoch_minibatch(theta, state, np.zeros(1, np.int64), sizes,
                                                  acts, loss, codes.MOMENTUM, convert(hyper),
                                                  convert(X), convert(Y), np.arange(9), 4)
        results.append((theta, state, value))
    (p7, s7, v7), (p5, s5, v5) = results
    assert v5 == v7 and np.array_equal(p5, p7) and np.array_equal(s5, s7)


def test_cpu_penalty_and_nesterov_compile_without_float64_arithmetic():
    from helpers import assert_compiled_without_float64

    assert_compiled_without_float64("""
from steepest.kernels import cpu
from steepest.kernels.cpu import optimizers
sizes, acts = np.array([4, 3, 2]), np.array([1, 1])
X, Y = np.ones((5, 4), np.float32), np.eye(2, dtype=np.float32)[[0, 1, 0, 1, 0]]
params = np.ones(23, np.float32)
hyper = np.full(7, 0.1, np.float32)  # α = 0.1, Nesterov on
for code in (0, 1, 4):
    cpu.optimizer_epoch_minibatch(params, np.zeros((2, 23), np.float32), np.zeros(1, np.int64),
                                  sizes, acts, 3, code, hyper, X, Y, np.arange(5), 2)
p, s, g = np.ones(7, np.float32), np.ones(7, np.float32), np.ones(7, np.float32)
cpu.momentum_step(p, s, g, 0.1, 0.9, 0.0, True)
optimizers.l2_penalty(g, p, 5, np.float32(0.1), 3)
from steepest.kernels.cpu import optimizer_loops  # the entry the small batches take
KERNELS = [optimizer_loops.optimizer_epoch_minibatch_fused, cpu.momentum_step,
           optimizers.l2_penalty]
""")


# ---------------------------------------------------------------- CUDA against the CPU
@pytest.fixture(scope="module")
def cuda_set():
    """(the CUDA kernel set, numba.cuda); imported here so collection never loads numba.cuda."""
    from steepest.kernels import _cuda
    from steepest.kernels import cuda as kernels

    return kernels, _cuda.load()


@needs_cuda
@pytest.mark.parametrize("case", ["sgd", "nesterov", "adam"])
def test_cuda_penalised_epochs_match_cpu(cuda_set, rng, case):
    kernels, cuda = cuda_set
    code, lr, b1, nesterov = CPU_CASES[case]
    n, batch = 11, 4  # batches of 4, 4 and a short 3
    params, sizes, acts, loss, X, Y = make_problem(rng, [5, 6, 4, 3], "tanh", "softmax",
                                                   "cross_entropy", n)
    hyper = f32(hyper_of(lr, 0.5, b1, nesterov, weight_decay=0.01))
    got = [f32(params), np.zeros((codes.STATE_SLOTS[code], params.size), np.float32),
           np.zeros(1, np.int64)]
    dev = [cuda.to_device(a.copy()) for a in got]
    X32, Y32 = f32(X), f32(Y)
    for _ in range(2):
        order = rng.permutation(n)
        cpu_loss = cpu.optimizer_epoch_minibatch(*got, sizes, acts, loss, code, hyper, X32, Y32,
                                                 order, batch)
        dev_loss = kernels.optimizer_epoch_minibatch(
            *dev, sizes, acts, loss, code, cuda.to_device(hyper), cuda.to_device(X32),
            cuda.to_device(Y32), cuda.to_device(order), batch)
        assert dev_loss == pytest.approx(cpu_loss, rel=1e-5)
    assert dev[2].copy_to_host()[0] == got[2][0] == 6
    assert_close(dev[0].copy_to_host(), got[0], rtol=1e-4, atol=1e-5)
    assert_close(dev[1].copy_to_host(), got[1], rtol=1e-4, atol=1e-6)


@needs_cuda
def test_cuda_penalty_leaves_biases_alone_and_nesterov_steps(cuda_set, rng):
    kernels, cuda = cuda_set
    params, sizes, acts, loss, X, Y = make_problem(rng, [6, 7, 4], "relu", "sigmoid",
                                                   "binary_cross_entropy", 10)
    results = []
    for alpha in (0.0, 2.0):
        theta = cuda.to_device(f32(params))
        kernels.optimizer_epoch_minibatch(
            theta, cuda.to_device(np.zeros((0, params.size), np.float32)),
            cuda.to_device(np.zeros(1, np.int64)), sizes, acts, loss, codes.SGD,
            f32(hyper_of(0.5, alpha)), cuda.to_device(f32(X)), cuda.to_device(f32(Y)),
            cuda.to_device(np.arange(10)), 10)
        results.append(theta.copy_to_host())
    plain, penalised = results
    mask = weight_mask(sizes)
    assert np.array_equal(penalised[~mask], plain[~mask])
    assert_close(plain[mask] - penalised[mask], 0.5 * 2.0 / 10 * f32(params)[mask], rtol=1e-4,
                 atol=1e-6)
    # the single-step kernels: momentum_step(nesterov=True) and optimizer_step's slot
    P, lr, mu, wd = 203, 0.05, 0.9, 1e-3
    theta0, v0, grads = (rng.standard_normal(P) for _ in range(3))
    want_p, want_v = theta0.copy(), v0.copy()
    reference.momentum_step(want_p, want_v, grads, lr, mu, wd, nesterov=True)
    dev = [cuda.to_device(f32(a)) for a in (theta0, v0, grads)]
    kernels.momentum_step(*dev, lr, mu, wd, nesterov=True)
    via = [cuda.to_device(f32(theta0)), cuda.to_device(f32(v0[None, :])),
           cuda.to_device(np.zeros(1, np.int64))]
    kernels.optimizer_step(*via, dev[2], codes.MOMENTUM,
                           cuda.to_device(f32(hyper_of(lr, 0.0, mu, True, wd))))
    for got_p, got_v in ((dev[0], dev[1]), (via[0], via[1])):
        assert_close(got_p.copy_to_host(), want_p, rtol=1e-5, atol=1e-6)
        assert_close(got_v.copy_to_host().reshape(-1), want_v, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- the models layer
def test_alpha_and_nesterov_in_hyper_fields_and_configs():
    opt = Momentum(0.05, momentum=0.8, weight_decay=1e-3, alpha=1e-4, nesterov=True)
    hyper = opt.hyper()
    assert hyper.shape == (codes.N_HYPER,)
    assert hyper[codes.HYPER_L2] == np.float32(1e-4) and hyper[codes.HYPER_NESTEROV] == 1.0
    assert hyper[codes.HYPER_WEIGHT_DECAY] == np.float32(1e-3)
    assert Momentum(0.05).hyper()[codes.HYPER_NESTEROV] == 0.0
    config = json.loads(json.dumps(opt.to_config()))
    assert config["alpha"] == 1e-4 and config["nesterov"] is True
    assert optimizer_from_config(config) == opt
    assert opt.with_learning_rate(0.01) == Momentum(0.01, 0.8, 1e-3, alpha=1e-4, nesterov=True)
    assert opt != Momentum(0.05, momentum=0.8, weight_decay=1e-3, alpha=1e-4)
    assert "alpha=0.0001" in repr(opt) and "nesterov=True" in repr(opt)
    for cls in OPTIMIZERS.values():
        made = cls(alpha=0.25)
        assert made.alpha == 0.25 and made.hyper()[codes.HYPER_L2] == 0.25
        assert optimizer_from_config(made.to_config()) == made
        assert made.with_learning_rate(0.5).alpha == 0.25


@pytest.mark.parametrize("config,expected", [
    ({"name": "sgd", "learning_rate": 0.2, "weight_decay": 0.0}, SGD(0.2)),
    ({"name": "momentum", "learning_rate": 0.1, "momentum": 0.5, "weight_decay": 0.01},
     Momentum(0.1, 0.5, 0.01)),
    ({"name": "adagrad", "learning_rate": 0.1, "eps": 1e-6, "weight_decay": 0.0},
     Adagrad(0.1, 1e-6)),
    ({"name": "rmsprop", "learning_rate": 0.01, "rho": 0.8, "eps": 1e-7, "weight_decay": 0.0},
     RMSProp(0.01, 0.8, 1e-7)),
    ({"name": "adam", "learning_rate": 0.001, "beta1": 0.9, "beta2": 0.99, "eps": 1e-8,
      "weight_decay": 0.0}, Adam(0.001, 0.9, 0.99)),
])
def test_configs_saved_before_alpha_and_nesterov_still_load(config, expected):
    opt = optimizer_from_config(config)
    assert opt == expected and opt.alpha == 0.0
    assert getattr(opt, "nesterov", False) is False
    assert opt.hyper()[codes.HYPER_L2] == 0 and opt.hyper()[codes.HYPER_NESTEROV] == 0


@pytest.mark.parametrize("make,error,match", [
    (lambda: SGD(alpha=-0.1), ValueError, "alpha"),
    (lambda: Adam(alpha=float("inf")), ValueError, "alpha"),
    (lambda: Momentum(nesterov="yes"), TypeError, "nesterov must be True or False"),
    (lambda: Momentum(nesterov=1), TypeError, "nesterov must be True or False"),
])
def test_bad_alpha_or_nesterov_is_refused(make, error, match):
    assert Momentum(nesterov=np.bool_(True)).nesterov is True
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize("name", ["sgd", "nesterov"])
def test_fit_with_alpha_takes_the_optimizer_loop_and_matches_the_reference(rng, name):
    # SGD with alpha must leave the dedicated SGD loops (they know no penalty)
    optimizer = (SGD(learning_rate=0.2, alpha=0.3) if name == "sgd"
                 else Momentum(0.05, 0.9, alpha=0.3, nesterov=True))
    X = rng.standard_normal((21, 6))
    y = rng.integers(0, 3, 21)
    net = steepest.Network([6, 5, 3], activation="tanh", loss="cross_entropy", seed=3)
    params = net._params.astype(np.float64)
    history = net.fit(X, y, epochs=2, batch_size=4, shuffle=False, optimizer=optimizer)
    want, _, step, losses = reference_epochs(
        params, np.array([6, 5, 3]), np.array([codes.TANH, codes.SOFTMAX]), codes.CROSS_ENTROPY,
        X, np.eye(3)[y], [np.arange(21)] * 2, 4, optimizer.code,
        optimizer.hyper().astype(np.float64))
    assert step[0] == 12
    assert_close(net._params, want, rtol=1e-4, atol=1e-5)
    assert_close(history["loss"], losses, rtol=1e-5)
