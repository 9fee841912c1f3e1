"""Sparse inputs (issue 14): ``SparseRows`` through every CPU kernel, scipy.sparse through the
public API and the scikit-learn wrappers, with the results of the same rows given dense;
the compaction of mostly-zero dense X in ``fit``; finiteness checked in compiled code."""

import sys
import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp
from helpers import assert_close, needs_cuda

import steepest
from steepest.kernels import codes, cpu, reference
from steepest.kernels.cpu import _inputs
from steepest.kernels.rows import (
    SparseRows,
    from_scipy,
    n_rows,
    row_slice,
    take_rows,
    to_dense,
)
from steepest.models.validation import check_features, training_features


def sparse_X(rng, n, n_in, density):
    X = rng.random((n, n_in)).astype(np.float32)
    X[rng.random((n, n_in)) >= density] = 0
    X[0] = 0  # a row with no stored entry at all
    return X


def rows_of(X, position_type=np.int16):
    """``SparseRows`` of a dense X built with NumPy alone (positions in order)."""
    rows, positions = np.nonzero(X)
    indptr = np.zeros(len(X) + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=len(X)), out=indptr[1:])
    return SparseRows(indptr, positions.astype(position_type), X[rows, positions], X.shape[1])


def network_arrays(rng, sizes, activation=codes.SIGMOID, output=codes.SOFTMAX):
    params = steepest.Network(sizes, seed=int(rng.integers(1 << 30)))._params.copy()
    return (params, np.array(sizes, np.int64),
            np.array([activation] * (len(sizes) - 2) + [output], np.int64))


def targets(rng, n, k):
    return np.eye(k, dtype=np.float32)[rng.integers(0, k, n)]


# ---------------------------------------------------------------- the row helpers
def test_row_helpers_keep_every_row(rng):
    X = sparse_X(rng, 40, 13, 0.3)
    rows = rows_of(X)
    assert n_rows(rows) == 40 and n_rows(X) == 40
    np.testing.assert_array_equal(to_dense(rows), X)
    np.testing.assert_array_equal(to_dense(row_slice(rows, 5, 17)), X[5:17])
    np.testing.assert_array_equal(to_dense(row_slice(rows, 30, 99)), X[30:])
    index = np.array([39, 0, 7, 7, 20])
    np.testing.assert_array_equal(to_dense(take_rows(rows, index)), X[index])
    np.testing.assert_array_equal(take_rows(X, index), X[index])
    assert take_rows(X, index).flags.c_contiguous


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
def test_from_scipy_reads_any_format_without_touching_it(rng, fmt):
    X = sparse_X(rng, 30, 11, 0.4)
    matrix = sp.csr_matrix(X).asformat(fmt)
    before = matrix.copy()
    rows = from_scipy(matrix, 11)
    np.testing.assert_array_equal(to_dense(rows), X)
    assert rows.data.dtype == np.float32 and rows.indptr.dtype == np.int64
    assert (matrix != before).nnz == 0


def test_repeated_and_unsorted_positions_add_up(rng):
    """A CSR row may list a position twice and in any order (scipy allows both before
    sum_duplicates): its terms add up, as in scipy's own toarray()."""
    data = np.array([1.0, 2.0, 0.5, 3.0], np.float32)
    positions = np.array([4, 1, 4, 0], np.int32)
    matrix = sp.csr_matrix((data, positions, [0, 3, 4]), shape=(2, 6))
    rows = from_scipy(matrix, 6)
    np.testing.assert_array_equal(to_dense(rows), matrix.toarray())
    params, sizes, activations = network_arrays(rng, [6, 5, 3])
    out_sparse = np.empty((2, 3), np.float32)
    out_dense = np.empty((2, 3), np.float32)
    cpu.network_forward(out_sparse, params, sizes, activations, rows)
    cpu.network_forward(out_dense, params, sizes, activations, matrix.toarray())
    assert_close(out_sparse, out_dense)


# ---------------------------------------------------------------- every kernel
DENSITIES = [0.01, 0.2, 0.7]


def _epoch_kernels(params, state, step, sizes, activations, X, Y, order, batch):
    """Every CPU training kernel's result on X: the losses and the parameters after it."""
    rate = np.float32(0.5)
    results = {}
    for name, run in {
        "per_sample": lambda p: cpu.sgd_epoch_per_sample(p, sizes, activations, codes.MSE,
                                                         X, Y, order, rate),
        "minibatch": lambda p: cpu.sgd_epoch_minibatch(p, sizes, activations,
                                                       codes.CROSS_ENTROPY, X, Y, order,
                                                       batch, rate),
        "full_batch": lambda p: cpu.gd_step_full_batch(p, sizes, activations,
                                                       codes.CROSS_ENTROPY, X, Y, rate),
        "adam": lambda p: cpu.optimizer_epoch_minibatch(
            p, state.copy(), step.copy(), sizes, activations, codes.CROSS_ENTROPY, codes.ADAM,
            np.array([1e-2, 0, 0.9, 0.999, 1e-8, 1e-3, 0], np.float32), X, Y, order, batch),
    }.items():
        p = params.copy()
        results[name] = (float(run(p)), p)
    return results


@pytest.mark.parametrize("density", DENSITIES)
@pytest.mark.parametrize("position_type", [np.int16, np.int32])
def test_training_kernels_on_sparse_rows_match_dense_rows(rng, density, position_type):
    """Under half the inputs nonzero, dense rows are read through their nonzero list in the
    same order as sparse rows store them: the same bits.  Denser rows are read whole, so
    the sums run in another order: float32 rounding apart."""
    X = sparse_X(rng, 300, 37, density)
    Y = targets(rng, 300, 4)
    params, sizes, activations = network_arrays(rng, [37, 19, 4])
    state, step = np.zeros((2, len(params)), np.float32), np.zeros(1, np.int64)
    order = rng.permutation(300)
    dense = _epoch_kernels(params, state, step, sizes, activations, X, Y, order, 7)
    sparse = _epoch_kernels(params, state, step, sizes, activations, rows_of(X, position_type),
                            Y, order, 7)
    for name in dense:
        if density < 0.5:
            assert sparse[name][0] == dense[name][0], name
            np.testing.assert_array_equal(sparse[name][1], dense[name][1], err_msg=name)
        else:
            assert_close(sparse[name][0], dense[name][0], rtol=1e-5)
            assert_close(sparse[name][1], dense[name][1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("density", DENSITIES)
@pytest.mark.parametrize("n", [9, _inputs.DENSITY_ROWS + 5000])  # serial, and across threads
def test_inference_kernels_on_sparse_rows_match_the_reference(rng, density, n):
    X = sparse_X(rng, n, 37, density)
    Y = targets(rng, n, 4)
    rows = rows_of(X)
    params, sizes, activations = network_arrays(rng, [37, 19, 4])
    out = np.empty((n, 4), np.float32)
    expected = np.empty((n, 4))
    cpu.network_forward(out, params, sizes, activations, rows)
    reference.network_forward(expected, params.astype(np.float64), sizes, activations,
                              X.astype(np.float64))
    assert_close(out, expected, rtol=1e-5, atol=1e-6)
    loss = cpu.network_evaluate(out, params, sizes, activations, codes.CROSS_ENTROPY, rows, Y)
    expected_loss = reference.network_evaluate(expected, params.astype(np.float64), sizes,
                                               activations, codes.CROSS_ENTROPY,
                                               X.astype(np.float64), Y.astype(np.float64))
    assert_close(loss, expected_loss, rtol=1e-5)
    grads = np.empty_like(params)
    expected_grads = np.empty(len(params))
    cpu.network_gradient(grads, params, sizes, activations, codes.CROSS_ENTROPY, rows, Y)
    reference.network_gradient(expected_grads, params.astype(np.float64), sizes, activations,
                               codes.CROSS_ENTROPY, X.astype(np.float64), Y.astype(np.float64))
    assert_close(grads, expected_grads, rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------- finiteness, compiled
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [0, 1, 7, 8, 783, 12 * 784 + 400])
def test_all_finite_finds_one_bad_value_anywhere(rng, bad, where):
    X = rng.random((13, 784)).astype(np.float32)
    assert _inputs.all_finite(X)
    X.reshape(-1)[where] = bad
    assert not _inputs.all_finite(X)
    counts = np.empty(13, np.int64)
    assert not _inputs.count_nonzero_rows(counts, X)


def test_the_largest_finite_float32_is_finite():
    X = np.full((2, 3), np.finfo(np.float32).max, np.float32)
    X[1] = -X[1]
    assert _inputs.all_finite(X)


@pytest.mark.parametrize("epochs", [1, 2])  # checked alone, and in the compacting pass
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_fit_refuses_non_finite_X_before_training(rng, epochs, bad):
    X = sparse_X(rng, 200, 20, 0.1)
    X[150, 3] = bad
    y = rng.integers(0, 3, 200)
    net = steepest.Network([20, 8, 3], seed=0)
    before = net._params.copy()
    for given in (X, sp.csr_matrix(X)):
        with pytest.raises(ValueError, match="X contains NaN or inf"):
            net.fit(given, y, epochs=epochs)
        with pytest.raises(ValueError, match=r"validation_data\[0\] contains NaN or inf"):
            net.fit(np.nan_to_num(X, posinf=0), y, epochs=epochs, validation_data=(given, y))
        with pytest.raises(ValueError, match="X contains NaN or inf"):
            net.predict(given)
        with pytest.raises(ValueError, match="X contains NaN or inf"):
            net.evaluate(given, y)
        with pytest.raises(ValueError, match="X contains NaN or inf"):
            net.fit(given, y, epochs=epochs, validation_split=0.3)  # in the held-out rows
        with pytest.raises(ValueError, match="X contains NaN or inf"):
            net.fit(given, y, epochs=0)
    np.testing.assert_array_equal(net._params, before)
    assert net.epochs_trained == 0 and not net.history


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("batch_size", [1, 16, None])
def test_a_non_finite_input_is_found_by_the_epoch_and_nothing_is_lost(rng, optimizer,
                                                                      batch_size):
    """fit(epochs=1) does not pass over a dense X just to check it: the epoch's first-layer
    update (x·δ) makes the weights non-finite, and fit then names X, with the network as it
    was before the call (weights, optimiser state, epoch count, history)."""
    X = rng.random((64, 9)).astype(np.float32)
    y = rng.integers(0, 2, 64)
    net = steepest.Network([9, 5, 2], activation="relu", seed=0)
    net.fit(X, y, epochs=1, batch_size=batch_size, optimizer=optimizer)
    state = (net._params.copy(), net._opt_state.copy(), net.epochs_trained, len(net.history))
    for bad in (np.nan, np.inf, -np.inf):
        X_bad = X.copy()
        X_bad[40, 2] = bad
        with pytest.raises(ValueError, match="X contains NaN or inf"):
            net.fit(X_bad, y, epochs=1, batch_size=batch_size, optimizer=optimizer)
        np.testing.assert_array_equal(net._params, state[0])
        np.testing.assert_array_equal(net._opt_state, state[1])
        assert (net.epochs_trained, len(net.history)) == state[2:]


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("n", [30, 5000])  # serial, and across threads
def test_inference_finds_a_bad_input_whatever_the_activations_drop(rng, activation, bad, n):
    """predict/evaluate do not pass over X to check it: a bad input makes its row's first
    pre-activation NaN or ±inf, which the kernels add (·0) to the row's output and loss,
    though ReLU (max(0, NaN) = 0, −inf -> 0) or σ/tanh (finite at ±inf) would lose it."""
    net = steepest.Network([20, 16, 3], activation=activation, seed=0)
    X = rng.random((n, 20)).astype(np.float32)
    y = rng.integers(0, 3, n)
    net.fit(X[:100], y[:100], epochs=1)
    X[n // 2, 7] = bad
    for call in (net.predict, net.forward, lambda X: net.evaluate(X, y)):
        for given in (X, sp.csr_matrix(X)):
            with pytest.raises(ValueError, match="X contains NaN or inf"):
                call(given)


def test_values_too_large_for_float32_are_refused(rng):
    X = np.zeros((10, 4))
    X[3, 1] = 1e39  # finite in float64, inf in float32
    with pytest.raises(ValueError, match="too large for float32"):
        steepest.Network([4, 3, 2]).fit(X, np.arange(10) % 2)


# ---------------------------------------------------------------- the public API
def _trained(X, y, **options):
    net = steepest.Network([X.shape[1], 16, 4], activation="relu", loss="cross_entropy", seed=3)
    history = net.fit(X, y, **options)
    return net, history


@pytest.mark.parametrize("options", [
    {"epochs": 2, "batch_size": 1, "learning_rate": 0.05},
    {"epochs": 3, "batch_size": 16, "optimizer": "adam", "learning_rate": 1e-2},
    {"epochs": 2, "batch_size": None, "learning_rate": 0.5},
    {"epochs": 2, "batch_size": 8, "validation_split": 0.25},
])
def test_fit_on_scipy_sparse_equals_fit_on_dense(rng, options):
    X = sparse_X(rng, 240, 30, 0.12)
    y = rng.integers(0, 4, 240)
    X_val, y_val = sparse_X(rng, 50, 30, 0.12), rng.integers(0, 4, 50)
    if "validation_split" not in options:
        options = {**options, "validation_data": (X_val, y_val)}
    dense_net, dense_history = _trained(X, y, **options)
    if "validation_data" in options:
        options = {**options, "validation_data": (sp.csr_matrix(X_val), y_val)}
    sparse_net, sparse_history = _trained(sp.csr_matrix(X), y, **options)
    np.testing.assert_array_equal(sparse_net._params, dense_net._params)
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert sparse_history[key] == dense_history[key], key
    for method in ("forward", "predict", "predict_proba"):
        np.testing.assert_array_equal(getattr(sparse_net, method)(sp.csr_matrix(X_val)),
                                      getattr(dense_net, method)(X_val), err_msg=method)
    assert sparse_net.evaluate(sp.coo_matrix(X_val), y_val) == dense_net.evaluate(X_val, y_val)


def test_fit_compacts_mostly_zero_X_once_with_the_same_weights(rng, monkeypatch):
    """fit(epochs=2) reads a mostly-zero X as SparseRows (compacted once), and ends with the
    bits of two fit(epochs=1) calls, which read it dense; a dense X stays dense."""
    X = sparse_X(rng, 300, 40, 0.15)
    y = rng.integers(0, 4, 300)
    seen = []
    epoch_kernel = cpu.sgd_epoch_minibatch

    def spy(params, sizes, activations, loss, X, *rest):
        seen.append(type(X).__name__)
        return epoch_kernel(params, sizes, activations, loss, X, *rest)

    monkeypatch.setattr(cpu, "sgd_epoch_minibatch", spy)
    once = steepest.Network([40, 16, 4], seed=1)
    once.fit(X, y, epochs=2, batch_size=10, learning_rate=0.5)
    assert seen[-2:] == ["SparseRows", "SparseRows"]
    twice = steepest.Network([40, 16, 4], seed=1)
    for _ in range(2):
        twice.fit(X, y, epochs=1, batch_size=10, learning_rate=0.5)
    assert seen[-1] == "ndarray"
    np.testing.assert_array_equal(once._params, twice._params)
    seen.clear()
    steepest.Network([40, 16, 4], seed=1).fit(X + 0.5, y, epochs=2, batch_size=10)
    assert seen[-1] == "ndarray"


def test_training_accuracy_reads_the_callers_dense_rows_not_the_compacted_copy(rng,
                                                                              monkeypatch):
    """The accuracy after each epoch read the compacted rows, so a multi-epoch fit compiled
    the inference kernel for them besides the dense rows of predict, evaluate and the
    validation set (9-10 s of the main job's cold start); it reads the caller's own array
    now (same bits: test_fit_on_scipy_sparse_equals_fit_on_dense), and a converted copy of
    X is not kept for it."""
    X = sparse_X(rng, 300, 40, 0.15)
    y = rng.integers(0, 4, 300)
    seen = []
    forward_blocks = cpu.network_forward_blocks  # the training accuracy's kernel

    def spy(outs, params, sizes, activations, blocks):
        seen.extend(type(X).__name__ for X in blocks)
        return forward_blocks(outs, params, sizes, activations, blocks)

    monkeypatch.setattr(cpu, "network_forward_blocks", spy)
    net = steepest.Network([40, 16, 4], seed=1)
    history = net.fit(X, y, epochs=2, batch_size=10, learning_rate=0.5,
                      validation_data=(X[:50], y[:50]))
    assert len(history["accuracy"]) == 2 and seen and set(seen) == {"ndarray"}
    seen.clear()  # float64 X: its float32 copy is compacted and dropped
    steepest.Network([40, 16, 4], seed=1).fit(X.astype(np.float64), y, epochs=2,
                                              batch_size=10, learning_rate=0.5)
    assert seen and set(seen) == {"SparseRows"}


def test_training_features_compacts_only_mostly_zero_dense_inputs(rng):
    sparse = sparse_X(rng, 500, 50, 0.1)
    rows = training_features(sparse, 50, compact=True)
    assert isinstance(rows, SparseRows) and rows.indices.dtype == np.int16
    np.testing.assert_array_equal(to_dense(rows), sparse)
    assert training_features(sparse, 50, compact=False) is sparse
    dense = sparse_X(rng, 500, 50, 0.6)
    assert training_features(dense, 50, compact=True) is dense


@pytest.mark.parametrize("threads", [1, 2])
def test_compaction_split_over_threads_gives_numpys_rows(rng, monkeypatch, threads):
    """The compaction runs in spans of rows on threads of their own (issue 15): every span
    lands at its own place, a row with no nonzero included, whatever the split; and a NaN
    or inf in any span, the last one's last row too, is refused."""
    import numba

    from steepest.kernels.cpu.spans import spans
    from steepest.models import validation
    from steepest.models.threads import numba_threads

    monkeypatch.setattr(validation, "MIN_SPAN_ROWS", 7)
    X = sparse_X(rng, 101, 30, 0.15)
    X[60] = 0
    with numba_threads(min(threads, numba.config.NUMBA_NUM_THREADS)):
        row_spans = spans(len(X), validation.MIN_SPAN_ROWS)
        assert len(row_spans) == numba.get_num_threads() and row_spans[-1][1] == len(X)
        rows = training_features(X, 30, compact=True)
        expected = rows_of(X)
        for field in ("indptr", "indices", "data"):
            np.testing.assert_array_equal(getattr(rows, field), getattr(expected, field))
        for bad_row in (row_spans[-1][0], len(X) - 1):
            bad = X.copy()
            bad[bad_row, 4] = np.inf
            with pytest.raises(ValueError, match="X contains NaN or inf"):
                training_features(bad, 30, compact=True)


def _compact_in_spans(X):
    from steepest.kernels.cpu.spans import in_threads

    assert in_threads(lambda a, b: np.count_nonzero(X[a:b]), [(0, 50), (50, len(X))]) == [
        np.count_nonzero(X[:50]), np.count_nonzero(X[50:])]


@pytest.mark.skipif(sys.platform != "linux", reason="fork: Linux only")
def test_spans_run_in_a_forked_child_after_the_parent_used_them(rng):
    # the span threads are started once per process; a fork's child has none of them and
    # starts its own (a pool carried over from the parent would wait forever)
    import multiprocessing

    X = sparse_X(rng, 100, 30, 0.2)
    _compact_in_spans(X)
    child = multiprocessing.get_context("fork").Process(target=_compact_in_spans, args=(X,))
    child.start()
    child.join(timeout=60)
    alive = child.is_alive()
    if alive:
        child.kill()
    assert not alive and child.exitcode == 0


def test_check_features_names_the_argument_for_sparse_input():
    with pytest.raises(ValueError, match="X has 5 features per sample but the network expects 4"):
        check_features(sp.csr_matrix((3, 5), dtype=np.float32), 4)
    with pytest.raises(ValueError, match="X is empty"):
        check_features(sp.csr_matrix((0, 4), dtype=np.float32), 4)


def test_sklearn_estimators_take_scipy_sparse(rng):
    from steepest.sklearn import MLPClassifier, MLPRegressor

    X = sparse_X(rng, 120, 15, 0.2)
    y = rng.integers(0, 3, 120)
    for estimator, target in ((MLPClassifier, y), (MLPRegressor, X[:, :2] + y[:, None])):
        dense = estimator(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(X, target)
        sparse = estimator(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(
            sp.csr_matrix(X), target)
        for a, b in zip(sparse.coefs_, dense.coefs_):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(sparse.predict(sp.csr_matrix(X)), dense.predict(X))


# ---------------------------------------------------------------- memory
def _peak_bytes(fit):
    tracemalloc.start()
    try:
        fit()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_fit_allocates_little_beside_its_input(rng):
    """Issue 14's memory targets, measured as tracemalloc sees NumPy's allocations: a
    mostly-zero dense X (MNIST-like: 19% nonzero, 784 inputs) costs at most 35% of its size
    more (its compacted copy: 1.5 × 19%), a scipy CSR input at most 10% of its own."""
    n = 12_000
    X = sparse_X(rng, n, 784, 0.19)
    y = rng.integers(0, 10, n)
    csr = sp.csr_matrix(X)
    csr_bytes = csr.data.nbytes + csr.indices.nbytes + csr.indptr.nbytes

    def fit(inputs):
        net = steepest.Network([784, 30, 10], seed=0)
        net.fit(inputs[:100], y[:100], epochs=2, batch_size=10)  # compiled, outside the peak
        return lambda: net.fit(inputs, y, epochs=2, batch_size=10, learning_rate=1.0)

    dense_fit, csr_fit = fit(X), fit(csr)
    dense_peak, csr_peak = _peak_bytes(dense_fit), _peak_bytes(csr_fit)
    assert dense_peak <= 0.35 * X.nbytes, dense_peak / X.nbytes
    assert csr_peak <= 0.10 * csr_bytes, csr_peak / csr_bytes


# ---------------------------------------------------------------- CUDA
@needs_cuda
def test_cuda_takes_scipy_sparse_as_its_dense_rows(rng):
    """The CUDA kernels read dense rows: the backend expands sparse ones on the way to the
    device (on the simulator here, small shapes), with the results of the dense rows."""
    X = sparse_X(rng, 48, 12, 0.2)
    y = rng.integers(0, 3, 48)
    nets = []
    for given in (X, sp.csr_matrix(X)):
        net = steepest.Network([12, 6, 3], seed=0, device="cuda")
        net.fit(given, y, epochs=2, batch_size=8, learning_rate=0.5)
        nets.append(net)
    np.testing.assert_array_equal(nets[1]._params, nets[0]._params)
    np.testing.assert_array_equal(nets[1].forward(sp.csr_matrix(X)), nets[0].forward(X))
