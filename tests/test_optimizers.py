"""Optimisers: step kernels against the reference and hand-computed values, the one training
loop for every optimiser against the reference loop, and the table of optimisers by name."""

import numpy as np
import pytest
from helpers import assert_close, assert_compiled_without_float64, make_problem

import steepest
from steepest.kernels import codes, cpu, reference
from steepest.models.optimizers import (
    OPTIMIZERS,
    SGD,
    Adagrad,
    Adam,
    Momentum,
    RMSProp,
    get_optimizer,
)

NAMES = ["sgd", "momentum", "adagrad", "rmsprop", "adam"]


def f32(a):
    return np.ascontiguousarray(a, dtype=np.float32)


# ---------------------------------------------------------------- single steps vs reference
STEP_CASES = {
    # name: (number of state rows, scalar hyper-parameters after the arrays)
    "momentum_step": (1, (0.05, 0.9, 0.01)),
    "adagrad_step": (1, (0.05, 1e-8, 0.01)),
    "rmsprop_step": (1, (0.01, 0.9, 1e-8, 0.01)),
    "adam_step": (2, (0.01, 0.9, 0.999, 1e-8, 0.01)),
}


@pytest.mark.parametrize("name", sorted(STEP_CASES))
@pytest.mark.parametrize("P", [1, 37, 1000])
def test_step_kernels_match_reference_over_several_steps(rng, name, P):
    n_state, hyper = STEP_CASES[name]
    params = rng.standard_normal(P)
    # a non-zero state (squares kept positive) so the first step is not a special case
    state = [np.abs(rng.standard_normal(P)) * 0.1 for _ in range(n_state)]
    if name == "momentum_step" or name == "adam_step":
        state[0] = rng.standard_normal(P) * 0.1
    ref_p, ref_s = params.copy(), [s.copy() for s in state]
    got_p, got_s = f32(params), [f32(s) for s in state]
    for t in range(1, 5):
        grads = rng.standard_normal(P)
        extra = (t,) if name == "adam_step" else ()
        getattr(reference, name)(ref_p, *ref_s, grads, *hyper, *extra)
        getattr(cpu, name)(got_p, *got_s, f32(grads), *hyper, *extra)
    assert_close(got_p, ref_p, rtol=1e-5, atol=1e-6)
    for got, ref in zip(got_s, ref_s):
        assert_close(got, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kernels", [reference, cpu], ids=["reference", "cpu"])
def test_steps_against_hand_computed_values(kernels):
    def arr(*values):
        return np.array(values, np.float32 if kernels is cpu else np.float64)

    # momentum: g = 2 + 0.01·1 = 2.01; v = 0.9·0.5 − 0.1·2.01 = 0.249; θ = 1.249
    p, v = arr(1.0), arr(0.5)
    kernels.momentum_step(p, v, arr(2.0), 0.1, 0.9, 0.01)
    assert v[0] == pytest.approx(0.249, rel=1e-6) and p[0] == pytest.approx(1.249, rel=1e-6)

    # Adagrad: G = 1 + 3² = 10; θ = 2 − 0.5·3/√10
    p, G = arr(2.0), arr(1.0)
    kernels.adagrad_step(p, G, arr(3.0), 0.5, 0.0, 0.0)
    assert G[0] == pytest.approx(10.0) and p[0] == pytest.approx(2 - 1.5 / np.sqrt(10), rel=1e-6)

    # RMSProp: E = 0.9·4 + 0.1·(−2)² = 4; θ = 1 + 0.1·2/2 = 1.1
    p, E = arr(1.0), arr(4.0)
    kernels.rmsprop_step(p, E, arr(-2.0), 0.1, 0.9, 0.0, 0.0)
    assert E[0] == pytest.approx(4.0) and p[0] == pytest.approx(1.1, rel=1e-6)

    # Adam's first step moves each parameter by η·sign(g) whatever |g| is (bias correction)
    p, m, v2 = arr(1.0, -1.0, 0.5), arr(0, 0, 0), arr(0, 0, 0)
    kernels.adam_step(p, m, v2, arr(4.0, -0.001, 250.0), 0.01, 0.9, 0.999, 1e-12, 0.0, 1)
    assert_close(p, [0.99, -0.99, 0.49], rtol=1e-5, atol=1e-6)
    assert_close(m, [0.4, -0.0001, 25.0], rtol=1e-5, atol=1e-9)
    # second step, g = 1: m = 0.9·m + 0.1, v = 0.999·v + 0.001; corrections 1/0.19, 1/0.001999
    kernels.adam_step(p, m, v2, arr(1.0, 1.0, 1.0), 0.01, 0.9, 0.999, 1e-12, 0.0, 2)
    m_hat = (0.9 * np.array([0.4, -0.0001, 25.0]) + 0.1) / (1 - 0.9 ** 2)
    v_hat = (0.999 * 0.001 * np.array([16.0, 1e-6, 62500.0]) + 0.001) / (1 - 0.999 ** 2)
    assert_close(p, np.array([0.99, -0.99, 0.49]) - 0.01 * m_hat / np.sqrt(v_hat), rtol=1e-5,
                 atol=1e-6)


@pytest.mark.parametrize("kernels", [reference, cpu], ids=["reference", "cpu"])
def test_weight_decay_pulls_parameters_towards_zero_with_zero_gradient(kernels):
    dtype = np.float32 if kernels is cpu else np.float64
    for name in NAMES:
        opt = get_optimizer(name, 0.1)
        hyper = opt.hyper()
        hyper[codes.HYPER_WEIGHT_DECAY] = 0.5
        params = np.array([2.0, -3.0], dtype)
        state = opt.new_state(2).astype(dtype)
        step = np.zeros(1, np.int64)
        for _ in range(3):
            kernels.optimizer_step(params, state, step, np.zeros(2, dtype), opt.code, hyper)
        assert step[0] == 3
        assert np.all(np.abs(params) < [2.0, 3.0]) and np.all(np.sign(params) == [1, -1]), name


@pytest.mark.parametrize("name", NAMES)
def test_optimizer_step_dispatches_to_the_named_kernel(rng, name):
    P = 29
    opt = get_optimizer(name, 0.03)
    hyper = opt.hyper()
    hyper[codes.HYPER_WEIGHT_DECAY] = 0.02
    params, grads = rng.standard_normal(P), rng.standard_normal(P)
    state = np.abs(rng.standard_normal((opt.n_state_slots, P)))
    step = np.array([4], np.int64)
    got_p, got_s = f32(params), f32(state)
    cpu.optimizer_step(got_p, got_s, step, f32(grads), opt.code, hyper)
    assert step[0] == 5
    want_p, want_s = params.copy(), state.copy()
    lr, wd = 0.03, 0.02
    if name == "sgd":
        want_p -= lr * (grads + wd * params)
    elif name == "momentum":
        reference.momentum_step(want_p, want_s[0], grads, lr, opt.momentum, wd)
    elif name == "adagrad":
        reference.adagrad_step(want_p, want_s[0], grads, lr, opt.eps, wd)
    elif name == "rmsprop":
        reference.rmsprop_step(want_p, want_s[0], grads, lr, opt.rho, opt.eps, wd)
    else:
        reference.adam_step(want_p, want_s[0], want_s[1], grads, lr, opt.beta1, opt.beta2,
                            opt.eps, wd, 5)
    assert_close(got_p, want_p, rtol=1e-5, atol=1e-6)
    assert_close(got_s, want_s, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- the training loop
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n,batch", [(13, 1), (13, 4), (13, 13), (8, 50)])
@pytest.mark.parametrize("hidden,output,loss", [("sigmoid", "sigmoid", "mse"),
                                                ("relu", "softmax", "cross_entropy"),
                                                ("tanh", "sigmoid", "binary_cross_entropy")])
def test_optimizer_loop_matches_reference(rng, name, n, batch, hidden, output, loss):
    params, sizes, acts, loss_code, X, Y = make_problem(rng, [6, 5, 3], hidden, output, loss, n)
    # momentum's effective step is η/(1 − μ) = 10η, so it gets a tenth of SGD's η
    opt = get_optimizer(name, {"sgd": 0.3, "momentum": 0.03}.get(name, 0.02))
    hyper = opt.hyper()
    hyper[codes.HYPER_WEIGHT_DECAY] = 0.01
    ref_p, ref_t = params.copy(), np.zeros(1, np.int64)
    ref_s = opt.new_state(params.size).astype(np.float64)
    got_p, got_s, got_t = f32(params), opt.new_state(params.size), np.zeros(1, np.int64)
    for _ in range(2):  # the second epoch starts from a non-zero state
        order = rng.permutation(n)
        ref_loss = reference.optimizer_epoch_minibatch(ref_p, ref_s, ref_t, sizes, acts,
                                                       loss_code, opt.code, hyper, X, Y,
                                                       order, batch)
        got_loss = cpu.optimizer_epoch_minibatch(got_p, got_s, got_t, sizes, acts, loss_code,
                                                 opt.code, hyper, f32(X), f32(Y), order, batch)
        assert got_loss == pytest.approx(ref_loss, rel=1e-4)
    assert got_t[0] == ref_t[0] == 2 * -(-n // min(batch, n))
    assert_close(got_p, ref_p, rtol=1e-4, atol=2e-5)
    assert_close(got_s, ref_s, rtol=1e-4, atol=2e-5)


def one_epoch_each(opt, problem_, order, batch, cpu_batch=None):
    """One epoch of the reference loop (float64) and the CPU loop (float32) from the same
    start; returns ((params, state, step, loss) of the reference, the same of the CPU)."""
    params, sizes, acts, loss_code, X, Y = problem_
    ref = [params.copy(), opt.new_state(params.size).astype(np.float64), np.zeros(1, np.int64)]
    got = [f32(params), opt.new_state(params.size), np.zeros(1, np.int64)]
    ref.append(reference.optimizer_epoch_minibatch(*ref, sizes, acts, loss_code, opt.code,
                                                   opt.hyper(), X, Y, order, batch))
    got.append(cpu.optimizer_epoch_minibatch(*got, sizes, acts, loss_code, opt.code,
                                             opt.hyper(), f32(X), f32(Y), order,
                                             batch if cpu_batch is None else cpu_batch))
    return ref, got


@pytest.mark.parametrize("name", ["sgd", "adam"])
@pytest.mark.parametrize("batch", [2500, 1500])
def test_optimizer_loop_large_batches_accumulate_across_chunks(rng, name, batch):
    # batches over GRADIENT_CHUNK (256) rows: the CPU loop sums the mean gradient chunk by
    # chunk (2,500 = one full batch; 1,500 = two batches, the second of 1,000 rows)
    problem_ = make_problem(rng, [5, 4, 3], "sigmoid", "softmax", "cross_entropy", 2500)
    opt = get_optimizer(name, 0.5 if name == "sgd" else 0.01)
    (ref_p, _, ref_t, ref_loss), (got_p, _, got_t, got_loss) = one_epoch_each(
        opt, problem_, rng.permutation(2500), batch, 10 ** 9 if batch == 2500 else batch)
    assert got_t[0] == ref_t[0] == (1 if batch == 2500 else 2)
    assert got_loss == pytest.approx(ref_loss, rel=1e-4)
    assert_close(got_p, ref_p, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["momentum", "adam"])
def test_optimizer_loop_on_sparse_inputs_matches_reference(rng, name):
    # 81% zeros, as in MNIST: the fused loop skips zero inputs (exactly); batches of 300 are
    # accumulated over chunks of 256 and 44 rows, and the last batch of 100 is short
    params, sizes, acts, loss_code, X, Y = make_problem(rng, [40, 12, 5], "sigmoid", "softmax",
                                                        "cross_entropy", 700)
    X = np.where(rng.random(X.shape) < 0.81, 0.0, np.abs(X))
    opt = get_optimizer(name, 0.05 if name == "momentum" else 0.01)
    (ref_p, ref_s, ref_t, ref_loss), (got_p, got_s, got_t, got_loss) = one_epoch_each(
        opt, (params, sizes, acts, loss_code, X, Y), rng.permutation(700), 300)
    assert got_t[0] == ref_t[0] == 3
    assert got_loss == pytest.approx(ref_loss, rel=1e-4)
    assert_close(got_p, ref_p, rtol=1e-4, atol=1e-5)
    assert_close(got_s, ref_s, rtol=1e-4, atol=1e-6)


def test_loop_with_plain_sgd_is_the_sgd_loop(rng):
    params, sizes, acts, loss_code, X, Y = make_problem(rng, [7, 6, 4], "tanh", "sigmoid",
                                                        "mse", 21)
    order = rng.permutation(21)
    opt = SGD(learning_rate=0.4)
    a, b = f32(params), f32(params)
    loss_a = cpu.optimizer_epoch_minibatch(a, opt.new_state(a.size), np.zeros(1, np.int64), sizes,
                                           acts, loss_code, opt.code, opt.hyper(), f32(X), f32(Y),
                                           order, 5)
    loss_b = cpu.sgd_epoch_minibatch(b, sizes, acts, loss_code, f32(X), f32(Y), order, 5,
                                     np.float32(0.4))
    assert loss_a == pytest.approx(loss_b, rel=1e-6)
    assert_close(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", NAMES)
def test_every_optimizer_trains_a_small_classifier(rng, name):
    X = rng.standard_normal((200, 4))
    labels = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 0.5)
    Y = np.eye(3)[labels]
    sizes, acts = np.array([4, 8, 3]), np.array([codes.TANH, codes.SOFTMAX])
    params = f32(rng.standard_normal(4 * 8 + 8 + 8 * 3 + 3) * 0.5)
    opt = get_optimizer(name, {"sgd": 0.3, "momentum": 0.05, "adagrad": 0.1}.get(name, 0.01))
    state, step, hyper = opt.new_state(params.size), np.zeros(1, np.int64), opt.hyper()
    losses = [cpu.optimizer_epoch_minibatch(params, state, step, sizes, acts,
                                            codes.CROSS_ENTROPY, opt.code, hyper, f32(X), f32(Y),
                                            rng.permutation(200), 10) for _ in range(15)]
    assert losses[-1] < 0.6 * losses[0], losses


def test_optimizer_kernels_compile_without_float64_arithmetic():
    assert_compiled_without_float64("""
from steepest.kernels import cpu
sizes, acts = np.array([4, 3, 2]), np.array([1, 1])
X, Y = np.ones((5, 4), np.float32), np.eye(2, dtype=np.float32)[[0, 1, 0, 1, 0]]
params = np.ones(23, np.float32)
for code in range(5):
    cpu.optimizer_epoch_minibatch(params, np.zeros((2, 23), np.float32), np.zeros(1, np.int64),
                                  sizes, acts, 3, code, np.full(5, 0.1, np.float32), X, Y,
                                  np.arange(5), 2)
p, s, g = np.ones(7, np.float32), np.ones(7, np.float32), np.ones(7, np.float32)
cpu.momentum_step(p, s, g, 0.1, 0.9, 0.0)
cpu.adagrad_step(p, s, g, 0.1, 1e-8, 0.0)
cpu.rmsprop_step(p, s, g, 0.1, 0.9, 1e-8, 0.0)
cpu.adam_step(p, s, s.copy(), g, 0.1, 0.9, 0.999, 1e-8, 0.0, 3)
a = np.empty((2, 3), np.float32)
cpu.step_forward(a, np.ones((2, 3), np.float32))
from steepest.kernels.cpu import optimizer_loops  # the entry the small batches take
KERNELS = [optimizer_loops.optimizer_epoch_minibatch_fused, cpu.momentum_step, cpu.adagrad_step,
           cpu.rmsprop_step, cpu.adam_step, cpu.step_forward]
""")


# ---------------------------------------------------------------- the table of optimisers
def test_table_names_codes_and_state_rows():
    assert list(OPTIMIZERS) == NAMES
    assert {n: OPTIMIZERS[n]().n_state_slots for n in NAMES} == {
        "sgd": 0, "momentum": 1, "adagrad": 1, "rmsprop": 1, "adam": 2}
    assert {n: OPTIMIZERS[n].code for n in NAMES} == codes.OPTIMIZER_CODES
    for name in NAMES:
        assert codes.STATE_SLOTS[OPTIMIZERS[name].code] == OPTIMIZERS[name].n_state_slots
        state = OPTIMIZERS[name]().new_state(11)
        assert state.shape == (OPTIMIZERS[name].n_state_slots, 11) and state.dtype == np.float32
        assert not state.any()


def test_hyper_vector_layout():
    hyper = Adam(learning_rate=0.002, beta1=0.8, beta2=0.99, eps=1e-7, weight_decay=0.03).hyper()
    assert hyper.dtype == np.float32 and hyper.shape == (codes.N_HYPER,)
    # (η, λ, β₁/μ/ρ, β₂, ε, α, Nesterov)
    assert_close(hyper, [0.002, 0.03, 0.8, 0.99, 1e-7, 0, 0], rtol=1e-7, atol=0)
    assert_close(Momentum(0.1, momentum=0.5).hyper(), [0.1, 0, 0.5, 0, 0, 0, 0], rtol=1e-7,
                 atol=0)
    assert_close(Momentum(0.1, momentum=0.5, alpha=0.2, nesterov=True).hyper(),
                 [0.1, 0, 0.5, 0, 0, 0.2, 1], rtol=1e-7, atol=0)
    assert_close(RMSProp(0.01, rho=0.95, eps=1e-6).hyper(), [0.01, 0, 0.95, 0, 1e-6, 0, 0],
                 rtol=1e-7, atol=0)
    assert_close(Adagrad(0.5, eps=1e-4).hyper(), [0.5, 0, 0, 0, 1e-4, 0, 0], rtol=1e-7, atol=0)
    assert_close(SGD(0.3, weight_decay=1e-4, alpha=1e-3).hyper(), [0.3, 1e-4, 0, 0, 0, 1e-3, 0],
                 rtol=1e-7, atol=0)


def test_get_optimizer_by_name_class_object_or_none():
    assert get_optimizer("adam", learning_rate=0.01) == Adam(learning_rate=0.01)
    assert get_optimizer("rmsprop") == RMSProp()
    assert get_optimizer(Momentum, 0.2) == Momentum(learning_rate=0.2)
    assert get_optimizer(None, 3.0) == SGD(3.0)
    adam = Adam(learning_rate=0.005)
    assert get_optimizer(adam) is adam and get_optimizer(adam, 0.005) is adam
    with pytest.raises(ValueError, match="conflicts"):
        get_optimizer(adam, 0.1)


def test_unknown_optimizer_lists_the_valid_names():
    with pytest.raises(ValueError, match="unknown optimizer 'nesterov'; expected one of 'sgd', "
                                         "'momentum', 'adagrad', 'rmsprop', 'adam'"):
        get_optimizer("nesterov")
    with pytest.raises(TypeError, match="optimizer must be a name"):
        get_optimizer(3)


@pytest.mark.parametrize("make,match", [
    (lambda: Adam(learning_rate=0), "learning_rate"),
    (lambda: Adam(beta1=1.0), "beta1"),
    (lambda: Adam(beta2=-0.1), "beta2"),
    (lambda: Momentum(momentum=1.5), "momentum"),
    (lambda: RMSProp(rho=float("nan")), "rho"),
    (lambda: Adagrad(eps=0), "eps"),
    (lambda: SGD(weight_decay=-1), "weight_decay"),
])
def test_bad_hyper_parameters_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_public_names():
    assert steepest.optimizers.Adam(learning_rate=0.01, beta1=0.8).beta1 == 0.8
    assert steepest.optimizers.get_optimizer("sgd") == SGD()
