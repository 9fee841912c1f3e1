"""The tiled CPU passes (kernels/cpu/_tiled.py) and the choice between them and the fused path
(kernels/cpu/paths.py), issue 19.

The tiled passes are held to the float64 reference for every kind of input, on tiles small
enough that every phase has several jobs; to themselves bit for bit across tiles and thread
counts; to the fused path to float32 rounding.  ``fit`` shows the path it took, takes a
``threads`` limit, and gives the same weights on any number of threads.
"""

import numba
import numpy as np
import pytest
from helpers import assert_close
from test_sparse_inputs import rows_of, sparse_X

import steepest
from steepest.kernels import codes, cpu, reference
from steepest.kernels.cpu import _fused, _layout, loops, optimizer_loops, paths
from steepest.kernels.cpu._tiled import Tiles
from steepest.kernels.cpu.loops import NO_PROBE

TWO_THREADS = numba.config.NUMBA_NUM_THREADS >= 2
# forward tiles of one 32-lane pass, 5-sample blocks, update tiles of 32 columns: with the
# widths below every phase has several jobs
SMALL_TILES = Tiles(32, 32, 5)
NETWORKS = [  # sizes, hidden activation, output, loss
    ([40, 70, 9, 4], "tanh", "softmax", "cross_entropy"),
    ([33, 150, 3], "relu", "sigmoid", "mse"),
    ([20, 48, 6], "sigmoid", "identity", "mae"),
]


def _problem(rng, sizes, loss, n, kind):
    X = sparse_X(rng, n, sizes[0], 0.3 if kind != "dense" else 1.0)
    if kind == "dense":
        X = rng.random((n, sizes[0])).astype(np.float32) + 0.1
    if loss == "cross_entropy":
        Y = np.eye(sizes[-1], dtype=np.float32)[rng.integers(0, sizes[-1], n)]
    else:
        Y = rng.random((n, sizes[-1])).astype(np.float32)
    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    params = (rng.standard_normal(n_params) * 0.3).astype(np.float32)
    return (rows_of(X) if kind == "sparse rows" else X), X, Y, params


def _codes(hidden, output, loss, sizes):
    acts = [codes.ACTIVATION_CODES[hidden]] * (len(sizes) - 2) + [codes.ACTIVATION_CODES[output]]
    return np.array(sizes, np.int64), np.array(acts, np.int64), codes.LOSS_CODES[loss]


@pytest.mark.parametrize("kind", ["dense read sparsely", "dense", "sparse rows"])
@pytest.mark.parametrize("network", NETWORKS, ids=lambda net: "-".join(map(str, net[0])))
def test_tiled_epochs_match_the_float64_reference(rng, network, kind):
    sizes, hidden, output, loss = network
    X_in, X, Y, params = _problem(rng, sizes, loss, 37, kind)
    args = _codes(hidden, output, loss, sizes)
    order = rng.permutation(37)

    got = params.copy()
    value = loops.sgd_epoch_minibatch_tiled(got, *args, X_in, Y, order, 16, np.float32(0.05),
                                            SMALL_TILES, NO_PROBE)
    want = params.astype(np.float64)
    expected = reference.sgd_epoch_minibatch(want, *args, X.astype(np.float64),
                                             Y.astype(np.float64), order, 16, 0.05)
    assert_close(got, want, rtol=1e-4, atol=1e-5)
    assert_close(value, expected, rtol=1e-4, atol=1e-6)

    got = params.copy()
    value = loops.gd_step_full_batch_tiled(got, *args, X_in, Y, np.float32(0.05), SMALL_TILES,
                                           NO_PROBE)
    want = params.astype(np.float64)
    expected = reference.gd_step_full_batch(want, *args, X.astype(np.float64),
                                            Y.astype(np.float64), 0.05)
    assert_close(got, want, rtol=1e-4, atol=1e-5)
    assert_close(value, expected, rtol=1e-4, atol=1e-6)


def test_tiled_optimizer_epoch_matches_the_reference_with_adam_and_alpha(rng):
    sizes, hidden, output, loss = NETWORKS[0]
    X_in, X, Y, params = _problem(rng, sizes, loss, 41, "dense read sparsely")
    args = _codes(hidden, output, loss, sizes)
    order = rng.permutation(41)
    hyper = np.zeros(codes.N_HYPER, np.float32)
    hyper[[codes.HYPER_LEARNING_RATE, codes.HYPER_BETA1, codes.HYPER_BETA2, codes.HYPER_EPS,
           codes.HYPER_L2]] = [0.01, 0.9, 0.999, 1e-8, 0.3]
    slots = codes.STATE_SLOTS[codes.ADAM]
    got, state, step = params.copy(), np.zeros((slots, len(params)), np.float32), \
        np.zeros(1, np.int64)
    value = optimizer_loops.optimizer_epoch_minibatch_tiled(
        got, state, step, *args, codes.ADAM, hyper, X_in, Y, order, 12, SMALL_TILES, NO_PROBE)
    want, state64, step64 = params.astype(np.float64), np.zeros((slots, len(params))), \
        np.zeros(1, np.int64)
    expected = reference.optimizer_epoch_minibatch(
        want, state64, step64, *args, codes.ADAM, hyper.astype(np.float64),
        X.astype(np.float64), Y.astype(np.float64), order, 12)
    assert step[0] == step64[0] == 4
    assert_close(got, want, rtol=1e-4, atol=1e-5)
    assert_close(state, state64, rtol=1e-3, atol=1e-7)
    assert_close(value, expected, rtol=1e-4, atol=1e-6)


def _tiled_epoch(params, sizes, activations, loss, X, Y, order, tiles, threads):
    previous = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        p = params.copy()
        value = loops.sgd_epoch_minibatch_tiled(p, sizes, activations, loss, X, Y, order, 24,
                                                np.float32(0.1), tiles, NO_PROBE)
        full = loops.gd_step_full_batch_tiled(p, sizes, activations, loss, X, Y,
                                              np.float32(0.1), tiles, NO_PROBE)
        return p, np.float32(value), np.float32(full)
    finally:
        numba.set_num_threads(previous)


@pytest.mark.skipif(not TWO_THREADS, reason="needs two Numba threads (NUMBA_NUM_THREADS)")
def test_tiled_results_are_the_same_bits_for_any_tiles_and_threads(rng):
    sizes, hidden, output, loss = NETWORKS[0]
    X_in, _, Y, params = _problem(rng, sizes, loss, 100, "dense read sparsely")
    args = _codes(hidden, output, loss, sizes)
    order = rng.permutation(100)
    runs = [_tiled_epoch(params, *args, X_in, Y, order, tiles, threads)
            for tiles, threads in [(SMALL_TILES, 1), (SMALL_TILES, 2), (Tiles(64, 64, 24), 2),
                                   (Tiles(96, 96, 1), 2), (paths.tiles_for(args[0], 24, 2), 2)]]
    for p, value, full in runs[1:]:
        assert np.array_equal(p, runs[0][0])
        assert value == runs[0][1] and full == runs[0][2]


@pytest.mark.parametrize("kind", ["dense read sparsely", "sparse rows"])
def test_tiled_and_fused_paths_agree_to_float32_rounding(rng, kind):
    sizes, hidden, output, loss = NETWORKS[1]
    X_in, _, Y, params = _problem(rng, sizes, loss, 90, kind)
    args = _codes(hidden, output, loss, sizes)
    order = rng.permutation(90)
    tiled, fused = params.copy(), params.copy()
    a = loops.sgd_epoch_minibatch_tiled(tiled, *args, X_in, Y, order, 30, np.float32(0.2),
                                        SMALL_TILES, NO_PROBE)
    b = loops.sgd_epoch_minibatch_fused(fused, *args, X_in, Y, order, 30, np.float32(0.2),
                                        NO_PROBE)
    assert not np.array_equal(tiled, params)  # it trained
    assert_close(tiled, fused, rtol=1e-5, atol=1e-6)
    assert_close(a, b, rtol=1e-6, atol=0)


def test_the_path_comes_from_the_widths_and_the_batch_never_the_threads():
    w1, w3, wide = [784, 30, 10], [784, 128, 64, 10], [784, 2048, 10]
    assert paths.training_path(w1, 1, 50_000).path == "fused"      # per-sample
    assert paths.training_path(w1, 10, 50_000).path == "fused"     # the tutorials' batch
    assert paths.training_path([784, 16, 16, 10], 1, 50_000).path == "fused"
    assert paths.training_path(w3, 128, 50_000).path == "tiled"
    assert paths.training_path(wide, 10, 50_000).path == "tiled"
    assert paths.training_path(wide, None, 50_000).path == "tiled"  # full batch
    assert paths.training_path(w1, None, 5).path == "fused"        # a handful of rows
    for sizes in (w1, w3, wide, [5, 3, 2]):
        for batch in (1, 10, 128, None):
            one, many = (paths.training_path(sizes, batch, 50_000, threads) for threads in (1, 8))
            assert one.path == many.path, (sizes, batch)
    # the choice follows the work: a batch past the threshold never goes back to fused
    chosen = [paths.training_path(w3, batch, 50_000).path for batch in range(1, 300)]
    assert chosen == sorted(chosen)  # "fused" < "tiled": one switch, never back


@pytest.mark.parametrize("width,threads", [(30, 2), (128, 2), (150, 3), (2048, 2), (512, 1)])
def test_tiles_keep_the_tiled_passes_bit_exact_and_the_threads_apart(width, threads):
    padded = -(-width // 16) * 16
    tiles = paths.tiles_for([784, width, 10], 128, threads)
    # whole 32-lane passes of first_layer_forward; whole 128-byte pairs of cache lines
    assert tiles.forward % 32 == 0 and tiles.update % 32 == 0
    assert 32 <= tiles.forward <= paths.FORWARD_TILE_MAX
    n_forward = -(-padded // tiles.forward)
    n_blocks = -(-128 // tiles.block)
    assert n_forward * n_blocks >= min(2 * threads, 128)  # work for every thread


@pytest.mark.parametrize("width", [30, 100, 128, 130, 512, 2048])
def test_wide_first_layers_get_an_odd_stride_and_pack_exactly(rng, width):
    sizes = np.array([50, width, 7], np.int64)
    net = _layout.fused_layout(sizes, np.array([codes.RELU, codes.SOFTMAX], np.int64))
    padded = -(-width // 16) * 16
    if padded >= _layout.STRIDE_FROM:
        assert net.w0_stride >= padded and net.w0_stride % 32 == 0
        assert (net.w0_stride // 32) % 2 == 1  # an odd number of 128-byte pairs
    else:
        assert net.w0_stride == padded
    params = rng.standard_normal(50 * width + width + width * 7 + 7).astype(np.float32)
    w, bias = np.empty(net.w_total, np.float32), np.empty(net.b_total, np.float32)
    _layout.pack_params(w, bias, params, net)
    back = np.empty_like(params)
    _layout.unpack_params(back, w, bias, net)
    assert np.array_equal(back, params)
    assert np.count_nonzero(w) == np.count_nonzero(params[:50 * width]) + \
        np.count_nonzero(params[50 * width + width:-7])  # the padding holds zeros


def test_public_loops_run_the_planned_path(rng, monkeypatch):
    calls = []
    for name in ("sgd_epoch_minibatch_tiled", "sgd_epoch_minibatch_fused",
                 "gd_step_full_batch_tiled", "gd_step_full_batch_fused"):
        kernel = getattr(loops, name)
        monkeypatch.setattr(loops, name, lambda *a, _k=kernel, _n=name: (calls.append(_n),
                                                                          _k(*a))[1])
    sizes, hidden, output, loss = [30, 400, 5], "relu", "softmax", "cross_entropy"
    X_in, _, Y, params = _problem(rng, sizes, loss, 60, "dense read sparsely")
    args = _codes(hidden, output, loss, sizes)
    order = np.arange(60)
    for batch in (2, 60):  # 3·B·weights = 84k and 2.5M multiply-adds: below the threshold
        cpu.sgd_epoch_minibatch(params.copy(), *args, X_in, Y, order, batch, np.float32(0.1))
    assert calls == ["sgd_epoch_minibatch_fused"] * 2
    calls.clear()
    big = [300, 2000, 5]  # 3·20·610k = 36M multiply-adds per batch: tiled
    X_in, _, Y, params = _problem(rng, big, loss, 40, "dense read sparsely")
    args = _codes(hidden, output, loss, big)
    cpu.sgd_epoch_minibatch(params.copy(), *args, X_in, Y, np.arange(40), 20, np.float32(0.1))
    cpu.gd_step_full_batch(params.copy(), *args, X_in, Y, np.float32(0.1))
    cpu.sgd_epoch_minibatch(params.copy(), *args, X_in, Y, np.arange(40), 1, np.float32(0.1))
    assert calls == ["sgd_epoch_minibatch_tiled", "gd_step_full_batch_tiled",
                     "sgd_epoch_minibatch_fused"]


def _mnist_like(rng, n):
    X = sparse_X(rng, n, 784, 0.2)
    return X, rng.integers(0, 10, n)


@pytest.mark.skipif(not TWO_THREADS, reason="needs two Numba threads (NUMBA_NUM_THREADS)")
def test_fit_shows_its_path_and_gives_the_same_bits_on_any_number_of_threads(rng):
    X, y = _mnist_like(rng, 600)
    runs = []
    for threads in (1, 2, None):
        net = steepest.Network([784, 128, 64, 10], activation="relu", output="softmax",
                               loss="cross_entropy", seed=3)
        history = net.fit(X, y, epochs=2, batch_size=128, learning_rate=0.1, threads=threads)
        assert history.training_path.startswith("tiled: ")
        assert net.training_path == history.training_path
        assert history.to_dict()["training_path"] == history.training_path
        runs.append(np.concatenate([w.ravel() for w in net.weights]))
    assert all(np.array_equal(run, runs[0]) for run in runs[1:])
    assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS  # restored

    small = steepest.Network([784, 30, 10], seed=0)
    assert small.training_path is None
    assert small.fit(X, y, epochs=1, batch_size=10, learning_rate=3.0).training_path \
        .startswith("fused: ")


@pytest.mark.parametrize("threads,error", [(0, ValueError), (10_000, ValueError),
                                           (1.5, TypeError), (True, TypeError)])
def test_fit_refuses_a_bad_thread_count_before_any_work(rng, threads, error):
    X, y = _mnist_like(rng, 50)
    net = steepest.Network([784, 30, 10], seed=0)
    before = net._params.copy()
    with pytest.raises(error, match="threads"):
        net.fit(X, y, epochs=1, threads=threads)
    assert np.array_equal(net._params, before) and net.epochs_trained == 0


TILED_THEN_FUSED = r"""
import hashlib, sys
import numpy as np
from steepest.kernels import codes
from steepest.kernels.cpu import loops
from steepest.kernels.cpu._tiled import Tiles
from steepest.kernels.cpu.loops import NO_PROBE
rng = np.random.default_rng(0)
sizes = np.array([64, 32, 10], np.int64)
acts = np.array([codes.RELU, codes.SOFTMAX], np.int64)
X = (rng.random((200, 64)) * (rng.random((200, 64)) < 0.25)).astype(np.float32)
Y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 200)]
p0 = (rng.standard_normal(64 * 32 + 32 + 32 * 10 + 10) * 0.3).astype(np.float32)
order = rng.permutation(200)
if sys.argv[1] == "tiled first":
    loops.sgd_epoch_minibatch_tiled(p0.copy(), sizes, acts, codes.CROSS_ENTROPY, X, Y, order,
                                    50, np.float32(0.1), Tiles(32, 32, 7), NO_PROBE)
digests = set()
for _ in range(3):
    p = p0.copy()
    loops.sgd_epoch_minibatch_fused(p, sizes, acts, codes.CROSS_ENTROPY, X, Y, order, 50,
                                    np.float32(0.1), NO_PROBE)
    digests.add(hashlib.sha256(p.tobytes()).hexdigest())
print(*digests)
"""


def test_the_tiled_path_compiled_first_leaves_the_fused_path_whole(tmp_path):
    # The dense-row helpers return views of X.  Numba compiles a callee once, with the
    # reference counting of its first caller: compiled first for the tiled jobs (which count
    # none), they handed uncounted views to the fused loop, which released them and freed
    # memory it did not own (a crash at exit, or garbage weights).
    import os
    import subprocess
    import sys

    runs = []
    # each child compiles afresh into an empty cache of its own (the corruption showed with
    # numba's caching on, not with STEEPEST_NO_CACHE=1)
    for order in ("fused alone", "tiled first"):
        env = {key: value for key, value in os.environ.items()
               if key not in ("STEEPEST_NO_CACHE", "NUMBA_DISABLE_JIT")}
        env["NUMBA_CACHE_DIR"] = str(tmp_path / order.replace(" ", "-"))
        runs.append(subprocess.run([sys.executable, "-c", TILED_THEN_FUSED, order], env=env,
                                   capture_output=True, text=True, timeout=600))
    for run in runs:
        assert run.returncode == 0, run.stderr[-2000:]
    assert runs[1].stdout.split() == runs[0].stdout.split()
    assert len(runs[0].stdout.split()) == 1  # the same weights on every call


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("batch_size", [None, 600, 500, 128])
def test_fits_warm_up_runs_the_epochs_kernel_and_path_on_a_few_rows(rng, monkeypatch,
                                                                  batch_size, optimizer):
    # fit's warm-up compiles (or loads) the epoch's kernel on a few rows so that epoch 1
    # measures training.  It took the fused path for a full batch that trains tiled (64 rows
    # are too little work to share), so the tiled kernel compiled inside epoch 1 (15.8 s
    # cold, 784-32-10 on 10,000 rows); and for batches of n rows, or of more than n / 2, it
    # trained a whole epoch.
    calls = []

    def recording(module):
        real = module.training_path

        def training_path(sizes, batch, n_samples, threads=None):
            plan = real(sizes, batch, n_samples, threads)
            caller = __import__("sys")._getframe(1).f_code.co_name
            calls.append((caller, plan.path, plan.tiles, n_samples))
            return plan
        monkeypatch.setattr(module, "training_path", training_path)

    recording(loops)
    recording(optimizer_loops)
    X, y = _mnist_like(rng, 600)
    net = steepest.Network([784, 32, 10], activation="relu", output="softmax",
                           loss="cross_entropy", seed=0)
    net.fit(X, y, epochs=2, batch_size=batch_size, optimizer=optimizer)
    warm_up, *epochs = calls
    assert len(epochs) == 2 and epochs[0] == epochs[1] and epochs[0][3] == 600
    assert warm_up[:3] == epochs[0][:3], (warm_up, epochs[0])  # kernel, path, tiles
    assert warm_up[3] <= 2 * min(batch_size or 600, _fused.GRADIENT_CHUNK) < 600


@pytest.mark.parametrize("batch_size, path", [(1, "fused"), (10, "fused"), (128, "tiled"),
                                              (None, "tiled")])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_fits_gradient_probe_runs_in_the_epochs_compiled_loop(rng, monkeypatch, batch_size,
                                                              path, optimizer):
    # fit's gradient probe (the per-layer gradient norms after each epoch, and the saturation
    # check) ran on the fused path whatever path the epochs took, so a fit that trains tiled
    # compiled the fused passes for the probe alone: 8.2 s of a cold W3 fit's 38.9 s.  Then
    # it ran network_gradient(_tiled) on the epochs' path, a compiled function of its own
    # that linked the passes once more (2.6 s of the CLI's cold 27 s); now the epochs' own
    # compiled loop computes it (its probe argument, loops.py), and nothing else runs
    from steepest.kernels.cpu import network as cpu_network

    taken = []

    def recorded(module, name):
        real = getattr(module, name)

        def recording(*args):
            probe = args[-1]
            taken.append((name, "probe" if probe.shape[0] else "epoch", probe.shape[0]))
            return real(*args)
        monkeypatch.setattr(module, name, recording)

    for name in ("sgd_epoch_minibatch_fused", "sgd_epoch_minibatch_tiled",
                 "sgd_epoch_per_sample_fused", "gd_step_full_batch_fused",
                 "gd_step_full_batch_tiled"):
        recorded(loops, name)
    for name in ("optimizer_epoch_minibatch_fused", "optimizer_epoch_minibatch_tiled"):
        recorded(optimizer_loops, name)
    for name in ("network_gradient", "network_gradient_tiled"):
        monkeypatch.setattr(cpu_network, name, lambda *a, name=name: taken.append(name),
                            raising=False)
    X, y = _mnist_like(rng, 600)
    net = steepest.Network([784, 32, 10], activation="relu", output="softmax",
                           loss="cross_entropy", seed=0)
    history = net.fit(X, y, epochs=2, batch_size=batch_size, optimizer=optimizer)
    assert history.training_path.startswith(path)
    kernels = {name for name, *_ in taken}
    assert len(kernels) == 1, taken  # one compiled loop for the warm-up, epochs and probes
    assert kernels.pop().endswith("_fused" if path == "fused" else "_tiled")
    modes = [mode for _, mode, _ in taken]
    # the warm-up's epoch, the probe before the first epoch, then each epoch and its probe
    assert modes == ["epoch", "probe", "epoch", "probe", "epoch", "probe"], taken
    assert {size for _, mode, size in taken if mode == "probe"} == {net.n_parameters}
    for norm in history.history["grad_norms"]:  # the probe's norms reach the history
        assert len(norm) == 2 and all(np.isfinite(norm)) and max(norm) > 0
