"""steepest.sweep: every network of a sweep equals the same network trained alone on the same
order of samples; divergence stops one network, not the others; the result's table, best and
plot; bad arguments are refused before any work; the sweep kernels against the reference."""

import threading
import time

import numba
import numpy as np
import pytest
from helpers import assert_close, needs_cuda

import steepest
from steepest.kernels import codes, cpu, reference
from steepest.models.network import DivergenceError, TrainingWarning
from steepest.optimizers import Adam, Momentum, Optimizer

SIZES = [12, 8, 4]
NET = dict(activation="relu", output="softmax", loss="cross_entropy")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    X = rng.random((120, 12), dtype=np.float32)
    # 15% nonzero: fit compacts it into sparse rows from two epochs on, a sweep from 8
    # network-epochs on, and either way the same bits come out
    X[X < 0.85] = 0
    y = rng.integers(0, 4, 120)
    return X, y, X[:30], y[:30]


def _alone(seed, first_seed, **net_options):
    """Network(seed=seed) shuffling as the sweep does: with the generator of a new network
    seeded ``first_seed`` (the sweep's first network)."""
    net = steepest.Network(SIZES, seed=seed, **{**NET, **net_options})
    net._rng.bit_generator.state = steepest.Network(
        SIZES, seed=first_seed, **{**NET, **net_options})._rng.bit_generator.state
    return net


FIT_CASES = {
    "minibatch": dict(batch_size=10),
    "per_sample": dict(batch_size=1),
    "full_batch": dict(batch_size=None),
    "adam": dict(batch_size=16, optimizer=Adam),
    "momentum_alpha": dict(batch_size=7, optimizer=Momentum(0.1, alpha=1e-2, nesterov=True),
                           rates=[0.01, 0.05]),
    "no_shuffle_one_epoch": dict(batch_size=10, shuffle=False, epochs=1),
}


@pytest.mark.parametrize("case", FIT_CASES)
def test_every_network_equals_the_same_network_trained_alone(data, case):
    # bit for bit on the CPU: each network's epoch is the single network's compiled loop
    X, y, Xv, yv = data
    options = dict(FIT_CASES[case])
    epochs = options.pop("epochs", 3)
    rates, seeds = options.pop("rates", [0.05, 0.3]), [3, 11]
    result = steepest.sweep(SIZES, X, y, learning_rates=rates, seeds=seeds, epochs=epochs,
                            validation_data=(Xv, yv), **NET, **options)
    assert result.params == [{"learning_rate": r, "seed": s} for s in seeds for r in rates]
    for run, params in zip(result.runs, result.params):
        alone = _alone(params["seed"], seeds[0])
        rate = {"learning_rate": params["learning_rate"]}
        if isinstance(options.get("optimizer"), Optimizer):  # a configured one takes the rate
            rate = {"optimizer": options["optimizer"].with_learning_rate(rate["learning_rate"])}
        history = alone.fit(X, y, epochs=epochs, validation_data=(Xv, yv),
                            **{**options, **rate})
        assert run.diverged is None
        np.testing.assert_array_equal(run.network._params, alone._params)
        np.testing.assert_array_equal(run.network._opt_state, alone._opt_state)
        np.testing.assert_array_equal(run.network._opt_step, alone._opt_step)
        for key in ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate",
                    "grad_norms"):
            assert run.history[key] == history[key], key
        assert run.network.epochs_trained == alone.epochs_trained == epochs
        assert run.history.warnings == history.warnings


@pytest.mark.parametrize("case", ["minibatch", "per_sample", "full_batch", "adam"])
def test_the_gradient_probe_is_not_network_gradient(data, monkeypatch, case):
    """After each epoch every network's gradient is probed (fit's divergence and
    gradient-flow checks).  It ran ``network_gradient``, a compiled function a sweep needed
    for that alone (2.2-2.3 s of a cold sweep's start); it runs the loop the sweep kernel
    trains each network with now (``network_gradient_for_sweeps``; that it compiles nothing:
    ``test_compile_cost.py``, the same norms as fit's: the test above)."""
    X, y, _, _ = data
    gradients = []
    monkeypatch.setattr(cpu, "network_gradient", lambda *args: gradients.append(args))
    result = steepest.sweep(SIZES, X, y, learning_rates=[0.05, 0.3], epochs=2, **NET,
                            **FIT_CASES[case])
    assert gradients == []
    assert all(len(run.history["grad_norms"]) == 2 for run in result.runs)


def test_the_first_network_is_fit_alone_without_help(data):
    # the sweep shuffles as its first network would: no generator to set by hand
    X, y, _, _ = data
    result = steepest.sweep(SIZES, X, y, learning_rates=[0.2, 0.7], seeds=[5], epochs=2,
                            batch_size=10, **NET)
    alone = steepest.Network(SIZES, seed=5, **NET)
    alone.fit(X, y, epochs=2, batch_size=10, learning_rate=0.2)
    np.testing.assert_array_equal(result.networks[0]._params, alone._params)


def test_after_the_sweep_each_network_is_its_own_and_fit_continues_it(data):
    X, y, _, _ = data
    result = steepest.sweep(SIZES, X, y, learning_rates=[0.1, 0.4], epochs=1, batch_size=10,
                            **NET)
    first, second = result.networks
    before = second._params.copy()
    first.fit(X, y, epochs=1)  # its learning rate and batch size, remembered
    np.testing.assert_array_equal(second._params, before)  # no shared memory
    assert first.epochs_trained == 2 and first._train_config["batch_size"] == 10
    assert first.history["learning_rate"] == [0.1, 0.1]


def _diverging():
    """Regression targets far out, an identity output and a rate of 2: the loss explodes
    within a few epochs; at 0.001 it does not."""
    rng = np.random.default_rng(3)
    X = rng.random((64, 5), dtype=np.float32)
    y = (100 * X.sum(axis=1, keepdims=True)).astype(np.float32)
    return X, y, dict(activation="relu", output="identity", loss="mse")


def test_a_diverging_network_is_stopped_and_restored_the_others_go_on():
    X, y, options = _diverging()
    result = steepest.sweep([5, 16, 1], X, y, learning_rates=[0.001, 2.0], seeds=[1],
                            epochs=6, batch_size=8, **options)
    calm, wild = result.runs
    assert calm.diverged is None and len(calm.history) == 6
    # the same network alone raises DivergenceError in the same epoch and keeps the same
    # last good weights
    alone = steepest.Network([5, 16, 1], seed=1, **options)
    with pytest.raises(DivergenceError) as raised:
        alone.fit(X, y, epochs=6, batch_size=8, learning_rate=2.0)
    assert wild.diverged_epoch == raised.value.epoch
    assert wild.diverged.startswith(f"training diverged in epoch {raised.value.epoch}:")
    assert len(wild.history) == raised.value.epoch - 1
    assert wild.network.epochs_trained == alone.epochs_trained == raised.value.epoch - 1
    np.testing.assert_array_equal(wild.network._params, alone._params)
    assert np.isfinite(wild.network._params).all()
    alone_calm = steepest.Network([5, 16, 1], seed=1, **options)
    alone_calm._rng.bit_generator.state = steepest.Network(
        [5, 16, 1], seed=1, **options)._rng.bit_generator.state
    alone_calm.fit(X, y, epochs=6, batch_size=8, learning_rate=0.001)
    np.testing.assert_array_equal(calm.network._params, alone_calm._params)
    # the table says so, and the best is the one that finished
    assert result.best is calm
    rows = result.table().splitlines()
    assert len(rows) == 3 and rows[1].startswith("* ") and rows[1].endswith("ok")
    assert rows[2].endswith(f"diverged in epoch {wild.diverged_epoch}")
    assert result.diverged == [None, wild.diverged]


def test_best_is_by_validation_loss_else_training_loss(data):
    X, y, Xv, yv = data
    with_val = steepest.sweep(SIZES, X, y, learning_rates=[0.01, 0.5, 2.0], epochs=2,
                              batch_size=10, validation_data=(Xv, yv), **NET)
    lowest = min(with_val.runs, key=lambda run: run.history["val_loss"][-1])
    assert with_val.best is lowest
    without = steepest.sweep(SIZES, X, y, learning_rates=[0.01, 0.5, 2.0], epochs=2,
                             batch_size=10, **NET)
    assert without.best is min(without.runs, key=lambda run: run.history["loss"][-1])
    assert "val_loss" not in without.table().splitlines()[0]


def test_best_is_none_when_every_network_diverged():
    X, y, options = _diverging()
    result = steepest.sweep([5, 16, 1], X, y, learning_rates=[2.0, 3.0], epochs=6,
                            batch_size=8, **options)
    assert all(result.diverged) and result.best is None


def test_the_plot_draws_every_curve(tmp_path, data):
    pytest.importorskip("matplotlib")
    X, y, _, _ = data
    result = steepest.sweep(SIZES, X, y, learning_rates=[0.1, 0.5], epochs=2, batch_size=10,
                            **NET)
    path = tmp_path / "sweep.png"
    result.plot(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(learning_rates=[]), ValueError, "learning_rates must not be empty"),
    (dict(learning_rates=[0.1, -1.0]), ValueError, r"learning_rates\[1\]"),
    (dict(learning_rates="0.1"), TypeError, "learning_rates must be a sequence"),
    (dict(seeds=[0, "a"]), TypeError, r"seeds\[1\]"),
    (dict(epochs=-1), ValueError, "epochs"),
    (dict(learning_rate=0.1), TypeError, "learning_rates"),
    (dict(callbacks=[]), TypeError, "callbacks"),
    (dict(checkpoint="x.npz"), TypeError, "checkpoint"),
    (dict(colour="red"), TypeError, "'colour'"),
    (dict(activation="nope"), ValueError, "activation"),
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(comm="world"), TypeError, "comm must be an mpi4py communicator"),
    (dict(sync="gradient"), TypeError, "sync"),
])
def test_bad_arguments_are_refused_naming_them(data, kwargs, error, match):
    X, y, _, _ = data
    with pytest.raises(error, match=match):
        steepest.sweep(SIZES, X, y, **{"learning_rates": [0.1], **kwargs})


def test_learning_rates_none_is_the_optimisers_default(data):
    X, y, _, _ = data
    result = steepest.sweep(SIZES, X, y, seeds=[0, 1], epochs=1, optimizer="adam", **NET)
    assert [p["learning_rate"] for p in result.params] == [Adam().learning_rate] * 2


# ------------------------------------------------------------------ the kernels
def _kernel_inputs(rng, k=3):
    sizes = np.array([6, 5, 3], np.int64)
    acts = np.array([codes.ACTIVATION_CODES["tanh"], codes.ACTIVATION_CODES["softmax"]],
                    np.int64)
    n_params = 6 * 5 + 5 + 5 * 3 + 3
    params = (0.3 * rng.standard_normal((k, n_params))).astype(np.float32)
    X = rng.standard_normal((20, 6)).astype(np.float32)
    Y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 20)]
    return sizes, acts, params, X, Y, rng.permutation(20)


def test_the_sweep_kernels_match_the_reference(rng):
    sizes, acts, params, X, Y, order = _kernel_inputs(rng)
    loss = codes.LOSS_CODES["cross_entropy"]
    rates = np.array([0.1, 0.5, 1.0], np.float32)
    active = np.array([1, 0, 1], np.int64)
    got, want = params.copy(), params.astype(np.float64)
    losses, expected = np.empty(3, np.float32), np.empty(3)
    cpu.sweep_sgd_epoch(got, sizes, acts, loss, X, Y, order, 4, rates, active, losses)
    reference.sweep_sgd_epoch(want, sizes, acts, loss, X.astype(np.float64),
                              Y.astype(np.float64), order, 4, rates.astype(np.float64),
                              active, expected)
    assert_close(got, want, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(got[1], params[1])  # inactive: untouched
    assert np.isnan(losses[1]) and np.isnan(expected[1])
    assert_close(losses[[0, 2]], expected[[0, 2]], rtol=1e-4, atol=1e-6)

    # any optimiser: Adam with each network's own rate
    opt = Adam(learning_rate=0.01)
    hyper = np.stack([opt.hyper()] * 3)
    hyper[:, codes.HYPER_LEARNING_RATE] = [0.01, 0.02, 0.03]
    state = np.zeros((3, opt.n_state_slots, params.shape[1]), np.float32)
    step = np.zeros((3, 1), np.int64)
    got, want = params.copy(), params.astype(np.float64)
    want_state, want_step = state.astype(np.float64), step.copy()
    cpu.sweep_optimizer_epoch(got, state, step, sizes, acts, loss, opt.code, hyper, X, Y,
                              order, 4, active, losses)
    reference.sweep_optimizer_epoch(want, want_state, want_step, sizes, acts, loss, opt.code,
                                    hyper.astype(np.float64), X.astype(np.float64),
                                    Y.astype(np.float64), order, 4, active, expected)
    assert_close(got, want, rtol=1e-4, atol=1e-5)
    assert_close(state, want_state, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(step, want_step)
    assert step[0, 0] == 5 and step[1, 0] == 0  # 20 rows in batches of 4; inactive: 0


@pytest.mark.parametrize("active", [[0] * 5 + [1] * 4, [1] * 4 + [0] * 5, [1, 0] * 4 + [1]],
                         ids=["low_stopped", "high_stopped", "alternate"])
def test_the_threads_take_the_networks_each_once_whatever_is_stopped(rng, active):
    """The sweep kernels' threads take the networks one at a time as they go (a stopped
    network, such as every rate above a diverging one, takes no time): every active network
    comes out as it would from the single network's loop, bit for bit, and every stopped
    one untouched with a NaN loss."""
    sizes, acts, params, X, Y, order = _kernel_inputs(rng, k=9)
    loss = codes.LOSS_CODES["cross_entropy"]
    rates = np.geomspace(0.05, 2.0, 9).astype(np.float32)
    active = np.array(active, np.int64)
    opt = Adam(learning_rate=0.01)
    hyper = np.stack([opt.hyper()] * 9)
    hyper[:, codes.HYPER_LEARNING_RATE] = rates
    for batch in (1, 4, 20):
        got, losses = params.copy(), np.empty(9, np.float32)
        cpu.sweep_sgd_epoch(got, sizes, acts, loss, X, Y, order, batch, rates, active, losses)
        state = np.zeros((9, opt.n_state_slots, params.shape[1]), np.float32)
        step = np.zeros((9, 1), np.int64)
        got_opt, opt_losses = params.copy(), np.empty(9, np.float32)
        cpu.sweep_optimizer_epoch(got_opt, state, step, sizes, acts, loss, opt.code, hyper, X,
                                  Y, order, batch, active, opt_losses)
        for k in range(9):
            if not active[k]:
                for trained, k_losses in ((got, losses), (got_opt, opt_losses)):
                    np.testing.assert_array_equal(trained[k], params[k])
                    assert np.isnan(k_losses[k])
                continue
            alone = params[k].copy()
            if batch == 20:  # a batch of all the rows: one full-batch step, as fit takes it
                want = cpu.gd_step_full_batch(alone, sizes, acts, loss, X, Y, rates[k])
            else:
                want = cpu.sgd_epoch_minibatch(alone, sizes, acts, loss, X, Y, order, batch,
                                               rates[k])
            np.testing.assert_array_equal(got[k], alone)
            assert losses[k] == np.float32(want)
            alone, k_state, k_step = (params[k].copy(), np.zeros_like(state[k]),
                                      np.zeros_like(step[k]))
            want = cpu.optimizer_epoch_minibatch(alone, k_state, k_step, sizes, acts, loss,
                                                 opt.code, hyper[k], X, Y, order, batch)
            np.testing.assert_array_equal(got_opt[k], alone)
            np.testing.assert_array_equal(state[k], k_state)
            assert opt_losses[k] == np.float32(want) and step[k, 0] == k_step[0]


@needs_cuda
@pytest.mark.parametrize("options", [dict(batch_size=4), dict(batch_size=1),
                                     dict(batch_size=None), dict(batch_size=4, optimizer="adam")],
                         ids=["minibatch", "per_sample", "full_batch", "adam"])
def test_a_sweep_on_cuda_matches_the_cpu_sweep(rng, options):
    X = rng.random((24, 6), dtype=np.float32)
    y = rng.integers(0, 3, 24)
    net = dict(activation="tanh", output="softmax", loss="cross_entropy")
    rates = [0.01, 0.05] if "optimizer" in options else [0.1, 0.5]
    results = {device: steepest.sweep([6, 5, 3], X, y, learning_rates=rates, seeds=[2],
                                      epochs=2, device=device, **net, **options)
               for device in ("cpu", "cuda")}
    for ours, theirs in zip(results["cuda"].runs, results["cpu"].runs):
        assert ours.history.device == "cuda"
        assert_close(ours.network._params, theirs.network._params, rtol=1e-4, atol=1e-5)
        assert_close(ours.history["loss"], theirs.history["loss"], rtol=1e-4, atol=1e-6)


@needs_cuda
def test_the_cuda_sweep_is_one_launch_of_a_block_per_network(rng, monkeypatch):
    # per-sample and small-batch SGD: one launch of K blocks for the whole sweep, each block
    # its network; an inactive network untouched with a NaN loss; the reference's results
    from steepest.kernels import _cuda
    from steepest.kernels import cuda as kernels
    from steepest.kernels.cuda import loops

    cuda = _cuda.load()
    launched = []
    original = loops._launch_one_block

    def spy(kernel, n_blocks, *args):
        launched.append((kernel.py_func.__name__, n_blocks))
        return original(kernel, n_blocks, *args)

    monkeypatch.setattr(loops, "_launch_one_block", spy)
    sizes, acts, params, X, Y, order = _kernel_inputs(rng)
    loss = codes.LOSS_CODES["cross_entropy"]
    rates = np.array([0.1, 0.5, 1.0], np.float32)
    active = np.array([1, 0, 1], np.int64)
    losses = np.empty(3, np.float32)
    params_dev = cuda.to_device(params)
    kernels.sweep_sgd_epoch(params_dev, sizes, acts, loss, cuda.to_device(X),
                            cuda.to_device(Y), cuda.to_device(order), 4, rates, active, losses)
    assert launched == [("_sweep_one_block_kernel", 3)]
    want, expected = params.astype(np.float64), np.empty(3)
    reference.sweep_sgd_epoch(want, sizes, acts, loss, X.astype(np.float64),
                              Y.astype(np.float64), order, 4, rates.astype(np.float64),
                              active, expected)
    got = params_dev.copy_to_host()
    assert_close(got, want, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(got[1], params[1])
    assert np.isnan(losses[1])
    assert_close(losses[[0, 2]], expected[[0, 2]], rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------ the command line
def test_the_cli_prints_the_table_and_writes_the_curves_and_metrics(tmp_path, capsys):
    import json

    from steepest.cli import main

    argv = ["sweep", "--learning-rates", "0.5,3", "--seeds", "0,1", "--train-samples", "300",
            "--epochs", "2", "--metrics-json", str(tmp_path / "sweep.json")]
    try:
        import matplotlib  # noqa: F401

        argv += ["--plot", str(tmp_path / "sweep.png")]
    except ImportError:
        pass
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("sweep of 4 networks 784-30-10")
    table = lines[1:6]
    assert "learning_rate" in table[0] and "val_accuracy" in table[0]
    assert sum(line.startswith("* ") for line in table[1:]) == 1
    assert [line.split()[-1] for line in table[1:]] == ["ok"] * 4
    metrics = json.loads((tmp_path / "sweep.json").read_text())
    assert [(m["learning_rate"], m["seed"]) for m in metrics] == [(0.5, 0), (3.0, 0),
                                                                   (0.5, 1), (3.0, 1)]
    assert all(len(m["history"]["loss"]) == 2 and m["diverged"] is None for m in metrics)
    if "--plot" in argv:
        assert (tmp_path / "sweep.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("flag,value", [("--learning-rates", "0.5,-1"), ("--seeds", "a"),
                                        ("--epochs", "0")])
def test_the_cli_refuses_bad_values_naming_the_flag(capsys, flag, value):
    from steepest.cli import main

    argv = ["sweep", "--learning-rates", "0.5", flag, value]
    with pytest.raises(SystemExit) as raised:
        main(argv)
    assert raised.value.code == 2
    assert flag in capsys.readouterr().err


def test_a_mostly_zero_x_is_compacted_once_the_sweep_reads_it_often_enough(data, monkeypatch):
    from steepest.kernels.rows import SparseRows
    from steepest.models import network as network_module

    X, y, _, _ = data
    compacted = []
    original = network_module.training_features

    def spy(*args, **kwargs):
        rows = original(*args, **kwargs)
        compacted.append(isinstance(rows, SparseRows))
        return rows

    monkeypatch.setattr(network_module, "training_features", spy)
    for rates, epochs in (([0.1, 0.2], 3), ([0.1] * 8, 1), ([0.1, 0.2], 1)):
        steepest.sweep(SIZES, X, y, learning_rates=rates, epochs=epochs, batch_size=10, **NET)
    assert compacted == [False, True, False]  # 6, 8 and 2 network-epochs


def test_training_warnings_go_into_each_history_and_are_warned_once(data):
    # raw 0-255 inputs: fit warns once per call; a sweep records it in every network's
    # history and warns once, naming the learning rates
    X, y, _, _ = data
    with pytest.warns(TrainingWarning) as caught:
        result = steepest.sweep(SIZES, X * 255, y, learning_rates=[0.01, 0.02], epochs=1,
                                batch_size=10, **NET)
    scale = [str(w.message) for w in caught if "far outside the usual scale" in str(w.message)]
    assert len(scale) == 1, scale
    assert scale[0].startswith("2 of the sweep's 2 networks (learning rate 0.01, 0.02): X is")
    for run, row in zip(result.runs, result.table().splitlines()[1:]):
        assert any("far outside the usual scale" in m for m in run.history.warnings)
        assert row.endswith("warned: see its history.warnings")


def test_the_input_scale_is_checked_once_for_all_the_networks(data, monkeypatch):
    # a function of X alone: asked once, not once per network (2.5 ms of a 16-network
    # sweep on MNIST); every history still has the warning (the test above)
    from steepest.models import sweep as sweep_module

    X, y, _, _ = data
    calls = []
    original = sweep_module.input_scale_warning
    monkeypatch.setattr(sweep_module, "input_scale_warning",
                        lambda *args: calls.append(args) or original(*args))
    with pytest.warns(TrainingWarning):
        steepest.sweep(SIZES, X * 255, y, learning_rates=[0.01, 0.02, 0.03], epochs=2,
                       batch_size=10, **NET)
    assert len(calls) == 1


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2,
                    reason="needs Numba's pool to have two threads")
def test_the_networks_checks_are_shared_among_the_threads(data, monkeypatch):
    """After each epoch every network's gradient is probed and its training accuracy
    counted; the networks are shared among Python threads (``Backend.each_item``), each
    network's calls on one of them (that the histories are fit's: the equality tests
    above)."""
    from steepest.models.network import Network

    X, y, _, _ = data
    threads = {"probe": set(), "accuracy": set()}
    for method, key in (("_probe_gradient", "probe"), ("_training_accuracy", "accuracy")):
        original = getattr(Network, method)

        def spy(self, *args, _original=original, _key=key, **kwargs):
            threads[_key].add(threading.get_ident())
            # long enough for the pool's thread to start: on these few rows a network's
            # checks take microseconds, and the calling thread could take all of them
            time.sleep(0.05)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(Network, method, spy)
    result = steepest.sweep(SIZES, X, y, learning_rates=[0.01, 0.02, 0.03, 0.04], epochs=2,
                            batch_size=10, **NET)
    assert all(len(run.history["accuracy"]) == 2 for run in result.runs)
    # the calling thread and the pool's (a pool thread done with its share may take the
    # next one, so a larger pool need not show one thread per network)
    assert len(threads["probe"]) >= 2 and len(threads["accuracy"]) >= 2


def test_networks_that_start_from_the_same_weights_are_probed_once_at_the_start(data,
                                                                               monkeypatch):
    # fit's start loss (the divergence check's "grew from") is a function of the weights and
    # the probe rows: a learning-rate sweep from one seed probed the same weights K times
    from steepest.models import sweep as sweep_module

    X, y, _, _ = data
    seen = []
    original = sweep_module._Sweep._start_losses

    def spy(self):
        probed = []
        probe = self._probe
        self._probe = lambda net: probed.append(net) or probe(net)
        losses = original(self)
        del self._probe
        seen.append((losses, [probe(net)[0] for net in self.nets], probed))
        return losses

    monkeypatch.setattr(sweep_module._Sweep, "_start_losses", spy)
    steepest.sweep(SIZES, X, y, learning_rates=[0.01, 0.02, 0.03], seeds=[4, 9], epochs=1,
                   batch_size=10, **NET)
    (losses, each_alone, probed), = seen
    assert losses == each_alone  # each network's own probe, bit for bit
    assert len(probed) == 2 and losses[0] == losses[2] != losses[3] == losses[5]


@pytest.mark.parametrize("batch_size", [None, 600, 500])
def test_the_warm_up_trains_a_few_rows_not_an_epoch(monkeypatch, batch_size):
    # a batch of all the rows (or of more than half of them) made the warm-up a whole epoch
    # of every network: the sweep's first epoch cost twice its time
    rng = np.random.default_rng(5)
    X, y = rng.random((600, 12), dtype=np.float32), rng.integers(0, 4, 600)
    rows = []
    original = cpu.sweep_sgd_epoch

    def spy(params, sizes, activations, loss, X, *args):
        rows.append(X.shape[0])
        return original(params, sizes, activations, loss, X, *args)

    monkeypatch.setattr(cpu, "sweep_sgd_epoch", spy)
    steepest.sweep(SIZES, X, y, learning_rates=[0.1, 0.2], epochs=1, batch_size=batch_size,
                   **NET)
    assert rows[-1] == 600 and len(rows) == 2
    assert rows[0] < 600


# --- pairs: two networks trained batch by batch in turn on one thread (kernels/cpu/_pairs.py)

PAIR_NETS = {  # (hidden, output, loss): a loss from a, from softmax's z, from sigmoid's z
    "sigmoid_mse": ("sigmoid", "sigmoid", "mse"),
    "relu_softmax_ce": ("relu", "softmax", "cross_entropy"),
    "tanh_sigmoid_bce": ("tanh", "sigmoid", "binary_cross_entropy"),
}


def _pair_inputs(rng, kind, n=300, n_in=40):
    """X of 300 rows: mostly zero and read sparsely (its rows listed), dense with no zeros
    (read whole), or mostly zero as ``SparseRows`` (rows stored as lists)."""
    X = rng.random((n, n_in), dtype=np.float32)
    if kind == "dense":
        return X
    X[X < 0.8] = 0
    if kind == "listed":
        return X
    from steepest.kernels.rows import SparseRows, index_dtype
    rows, positions = np.nonzero(X)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n))])
    return SparseRows(indptr.astype(np.int64), positions.astype(index_dtype(n_in)),
                      X[rows, positions], n_in)


@pytest.mark.parametrize("net", PAIR_NETS)
@pytest.mark.parametrize("kind", ["listed", "dense", "sparse_rows"])
@pytest.mark.parametrize("batch", [1, 7, 280])  # 280: over MAX_STORED_BATCH, lists not kept
def test_a_pair_trains_each_network_as_it_trains_alone(rng, net, kind, batch):
    """Two networks' epochs taken batch by batch in turn give each network the bits of its
    own epoch, its mean loss included (a pair's two divisions by N, made one reciprocal
    and two products by LLVM, were an ulp off)."""
    from steepest.kernels.cpu import loops

    hidden, output, loss_name = PAIR_NETS[net]
    sizes = np.array([40, 16, 8, 3], np.int64)
    acts = np.array([codes.ACTIVATION_CODES[a] for a in (hidden, hidden, output)], np.int64)
    loss = codes.LOSS_CODES[loss_name]
    n_params = 40 * 16 + 16 + 16 * 8 + 8 + 8 * 3 + 3
    X = _pair_inputs(rng, kind)
    Y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 300)]
    order = rng.permutation(300)
    first, second = (0.3 * rng.standard_normal((2, n_params))).astype(np.float32)
    rates = np.float32(0.5), np.float32(0.07)
    got = first.copy(), second.copy()
    losses = loops.sgd_epoch_minibatch_pair_fused(*got, sizes, acts, loss, X, Y, order, batch,
                                                  *rates)
    for params, rate, pair_params, pair_loss in zip((first, second), rates, got, losses):
        alone = params.copy()
        want = loops.sgd_epoch_minibatch_fused(alone, sizes, acts, loss, X, Y, order, batch,
                                               rate, loops.NO_PROBE)
        np.testing.assert_array_equal(pair_params, alone)
        assert pair_loss == want
    assert not np.array_equal(got[0], first)  # it trained


@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_the_sweep_pairs_networks_only_while_its_jobs_outnumber_the_threads(n_threads):
    from steepest.kernels.cpu.sweeps import ALONE, sgd_jobs

    for active in ([1] * 16, [1] * 3, [1, 0, 1, 1, 0, 1, 1], [0] * 4 + [1] * 9, [1], []):
        live = np.flatnonzero(active)
        jobs = sgd_jobs(np.array(active, np.int64), n_threads, pair=True)
        paired = jobs[jobs[:, 1] != ALONE]
        # each active network once, in order; the pairs first, then the networks alone
        assert jobs[jobs != ALONE].tolist() == live.tolist()
        assert (jobs[:len(paired), 1] != ALONE).all()
        assert len(paired) == min(len(live) // 2, max(len(live) - n_threads, 0))
        assert len(jobs) >= min(len(live), n_threads)
        unpaired = sgd_jobs(np.array(active, np.int64), n_threads, pair=False)
        assert unpaired[:, 0].tolist() == live.tolist() and (unpaired[:, 1] == ALONE).all()


@pytest.mark.parametrize("n_threads", [1, 2])
def test_a_sweep_in_pairs_equals_its_networks_trained_alone(rng, n_threads):
    """Sixteen networks, three of them stopped: at one thread every job is a pair but
    the last, at two the jobs are pairs too; each network comes out bit for bit as alone."""
    from steepest.kernels.cpu import loops

    sizes = np.array([40, 16, 8, 3], np.int64)
    acts = np.array([codes.ACTIVATION_CODES[a] for a in ("sigmoid",) * 3], np.int64)
    loss = codes.LOSS_CODES["mse"]
    X = _pair_inputs(rng, "listed")
    Y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 300)]
    order = rng.permutation(300)
    params = (0.3 * rng.standard_normal((16, 40 * 16 + 16 + 16 * 8 + 8 + 8 * 3 + 3))
              ).astype(np.float32)
    rates = np.geomspace(0.05, 5.0, 16).astype(np.float32)
    active = np.ones(16, np.int64)
    active[[2, 9, 10]] = 0
    got, losses = params.copy(), np.empty(16, np.float32)
    old = numba.get_num_threads()
    numba.set_num_threads(n_threads)
    try:
        cpu.sweep_sgd_epoch(got, sizes, acts, loss, X, Y, order, 1, rates, active, losses)
    finally:
        numba.set_num_threads(old)
    assert loops.sgd_epoch_minibatch_pair_fused.signatures  # the pairs ran
    for k in range(16):
        if not active[k]:
            np.testing.assert_array_equal(got[k], params[k])
            assert np.isnan(losses[k])
            continue
        alone = params[k].copy()
        want = cpu.sgd_epoch_minibatch(alone, sizes, acts, loss, X, Y, order, 1, rates[k])
        np.testing.assert_array_equal(got[k], alone)
        assert losses[k] == np.float32(want)
