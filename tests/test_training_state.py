"""Issue 11: training state that lives with the network, survives every fit and resume, and
is safe to share; divergence and training that learns nothing are reported."""

import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest

import steepest
from steepest.models.network import TrainingWarning


def blobs(n=120, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, 5)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 1).astype(np.int64) + (X[:, 2] > 0.7)
    return X, y


def small_net(seed=1, **kw):
    return steepest.Network([5, 6, 3], seed=seed, **kw)


# ------------------------------------------------------------------ state across fit calls
def test_schedule_and_history_continue_across_fit_calls():
    X, y = blobs()
    net = small_net()
    step = steepest.StepDecay(step_size=1, factor=0.5)
    first = net.fit(X, y, epochs=2, learning_rate=3.0, lr_schedule=step)
    second = net.fit(X, y, epochs=2, learning_rate=3.0, lr_schedule=step)
    assert first["learning_rate"] == [3.0, 1.5] and second["learning_rate"] == [0.75, 0.375]
    assert second["epoch"] == [3, 4] and net.epochs_trained == 4
    assert net.history["epoch"] == [1, 2, 3, 4]
    assert net.history["loss"] == first["loss"] + second["loss"]
    # a later call without the arguments continues with the network's rate and schedule
    assert net.fit(X, y, epochs=1)["learning_rate"] == [0.1875]
    assert net.fit(X, y, epochs=1, lr_schedule="constant")["learning_rate"] == [3.0]


def test_callbacks_and_divergence_see_the_networks_epoch_count():
    X, y = blobs()
    net = small_net()
    net.fit(X, y, epochs=2, learning_rate=0.5)
    seen = []
    net.fit(X, y, epochs=2, callbacks=[lambda epoch, metrics: seen.append(epoch)])
    assert seen == [3, 4]


@pytest.mark.parametrize("optimizer", ["adam", "momentum"])
def test_loaded_network_continues_with_its_optimizer_rate_and_batch(tmp_path, optimizer):
    X, y = blobs()
    kw = dict(batch_size=7, learning_rate=0.02, optimizer=optimizer,
              lr_schedule=steepest.ExponentialDecay(0.8))
    straight = small_net()
    straight.fit(X, y, epochs=5, **kw)
    first = small_net()
    first.fit(X, y, epochs=2, checkpoint=tmp_path / "ck.npz", **kw)
    resumed = steepest.Network.load(tmp_path / "ck.npz")
    hist = resumed.fit(X, y, epochs=3)  # no training arguments: the checkpoint's
    assert np.array_equal(resumed._params, straight._params)
    assert hist["learning_rate"] == pytest.approx([0.02 * 0.8 ** e for e in (2, 3, 4)])
    assert resumed.history["epoch"] == [1, 2, 3, 4, 5]


def test_plateau_schedule_resumes_from_the_saved_history(tmp_path):
    X, y = blobs()
    Xv, yv = blobs(40, seed=9)
    kw = dict(batch_size=10, learning_rate=2.0, validation_data=(Xv, yv),
              lr_schedule=steepest.ReduceOnPlateau(patience=1, factor=0.5))
    straight = small_net(seed=4)
    rates = straight.fit(X, y, epochs=6, **kw)["learning_rate"]
    first = small_net(seed=4)
    first.fit(X, y, epochs=3, checkpoint=tmp_path / "ck.npz", **kw)
    resumed = steepest.Network.load(tmp_path / "ck.npz")
    assert resumed.fit(X, y, epochs=3, **kw)["learning_rate"] == rates[3:]
    assert np.array_equal(resumed._params, straight._params)


def test_format_1_checkpoints_still_load(tmp_path):
    X, y = blobs()
    net = small_net()
    net.fit(X, y, epochs=1, learning_rate=0.5)
    net.save(tmp_path / "new.npz")
    fields = dict(np.load(tmp_path / "new.npz"))
    for key in ("training_config", "history", "seed"):
        del fields[key]
    np.savez(tmp_path / "old.npz", **{**fields, "format_version": np.int64(1)})
    old = steepest.Network.load(tmp_path / "old.npz")
    assert old.epochs_trained == 1 and np.array_equal(old._params, net._params)
    assert old.fit(X, y, epochs=1)["epoch"] == [2]


def test_early_stopping_checkpoint_holds_the_restored_best_epoch(tmp_path):
    X, y = blobs()
    Xv, yv = blobs(40, seed=5)
    net = small_net(seed=2)
    stopper = steepest.EarlyStopping(monitor="val_loss", patience=2)
    # a rate that overshoots after a few epochs, so the best epoch is not the last
    hist = net.fit(X, y, epochs=40, batch_size=4, learning_rate=4.0,
                   validation_data=(Xv, yv), callbacks=[stopper], checkpoint=tmp_path / "c.npz")
    assert stopper.stopped_epoch and stopper.best_epoch < stopper.stopped_epoch
    assert net.epochs_trained == stopper.best_epoch and len(hist) == stopper.stopped_epoch
    saved = steepest.Network.load(tmp_path / "c.npz")
    assert saved.epochs_trained == stopper.best_epoch
    assert np.array_equal(saved._params, net._params)
    assert saved.history["epoch"][-1] == stopper.best_epoch
    # the best epoch's validation loss is what the restored network has
    assert net.evaluate(Xv, yv)["loss"] == pytest.approx(stopper.best, rel=1e-5)


def test_a_callback_stop_between_checkpoints_still_saves_the_last_epoch(tmp_path):
    X, y = blobs()
    net = small_net()
    net.fit(X, y, epochs=10, learning_rate=0.5, checkpoint=tmp_path / "c.npz",
            checkpoint_every=5, callbacks=[lambda epoch, metrics: epoch == 3])
    saved = steepest.Network.load(tmp_path / "c.npz")
    assert saved.epochs_trained == 3 and np.array_equal(saved._params, net._params)


# ------------------------------------------------------------------ the command line
def test_ctrl_c_snapshot_does_not_change_with_later_epochs():
    from steepest.cli import _snapshot

    X, y = blobs()
    net = small_net()
    net.fit(X, y, epochs=1, learning_rate=0.01, optimizer="adam")
    snapshot = _snapshot(net)
    state = snapshot["optimizer_state"].copy()
    net.fit(X, y, epochs=1, learning_rate=0.01, optimizer="adam")  # moments change in place
    assert np.array_equal(snapshot["optimizer_state"], state)
    assert not np.array_equal(net._opt_state, state)


def _cli(tmp_path, *args):
    cmd = [sys.executable, "-m", "steepest", "train", "--train-samples", "600", "--quiet",
           *map(str, args)]
    return subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_cli_resume_takes_the_checkpoints_options_and_ends_bit_identical(tmp_path):
    options = ["--lr", "0.01", "--batch-size", "50", "--activation", "relu", "--loss",
               "cross_entropy", "--optimizer", "adam", "--lr-schedule",
               "step:step_size=1,factor=0.5"]
    straight = _cli(tmp_path, "--epochs", "3", *options, "--save", "straight.npz")
    assert straight.returncode == 0, straight.stderr
    half = _cli(tmp_path, "--epochs", "2", *options, "--checkpoint", "half.npz")
    assert half.returncode == 0, half.stderr
    resumed = _cli(tmp_path, "--resume", "half.npz", "--epochs", "3", "--save", "resumed.npz")
    assert resumed.returncode == 0, resumed.stderr
    a = steepest.Network.load(tmp_path / "straight.npz")
    b = steepest.Network.load(tmp_path / "resumed.npz")
    assert (b.activation, b.loss, b.epochs_trained) == ("relu", "cross_entropy", 3)
    assert np.array_equal(a._params, b._params)
    assert a.history["learning_rate"] == b.history["learning_rate"] == [0.01, 0.005, 0.0025]
    # a flag that contradicts the checkpoint is refused, naming both values
    clash = _cli(tmp_path, "--resume", "half.npz", "--epochs", "3", "--lr", "0.5",
                 "--batch-size", "50")
    assert clash.returncode == 2
    assert "--learning-rate 0.5 (the checkpoint has 0.01)" in clash.stderr
    assert "--batch-size" not in clash.stderr  # the same value is no conflict


# ------------------------------------------------------------------ inputs and threads
def test_read_only_inputs_do_not_compile_another_kernel_set():
    from steepest.kernels import cpu

    X, y = blobs()
    net = small_net(device="cpu")
    net.fit(X, y, epochs=1, batch_size=8, learning_rate=0.5)
    net.evaluate(X, y)
    from steepest.kernels.cpu import _fused, loops

    kernels = (loops.sgd_epoch_minibatch_fused, _fused.fused_inference, cpu.network_gradient)
    before = [len(k.signatures) for k in kernels]
    X_ro = X.copy()
    X_ro.setflags(write=False)
    Y_ro = np.eye(3, dtype=np.float32)[y]
    Y_ro.setflags(write=False)
    net.fit(X_ro, Y_ro, epochs=1, batch_size=8, validation_data=(X_ro, Y_ro))
    net.evaluate(X_ro, Y_ro)
    assert [len(k.signatures) for k in kernels] == before


def test_predict_during_fit_in_another_thread_sees_no_half_trained_weights():
    X, y = blobs(4000)
    net = small_net(seed=3)
    started, results = threading.Event(), {}

    def train():
        net.fit(X, y, epochs=30, batch_size=1, learning_rate=0.05,
                callbacks=[lambda epoch, metrics: started.set()])

    worker = threading.Thread(target=train)
    worker.start()
    assert started.wait(60)
    results["during"] = net.predict_proba(X[:50])  # waits for fit to finish
    worker.join()
    assert np.array_equal(results["during"], net.predict_proba(X[:50]))


# ------------------------------------------------------------------ divergence and warnings
@pytest.mark.slow
def test_huge_learning_rate_with_relu_softmax_is_caught():
    X, y, _, _ = steepest.load_mnist()
    net = steepest.Network([784, 30, 10], activation="relu", loss="cross_entropy", seed=0)
    before = net._params.copy()
    with pytest.raises(steepest.DivergenceError, match="epoch 1") as err:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TrainingWarning)
            net.fit(X[:5000], y[:5000], epochs=3, batch_size=32, learning_rate=1e6)
    assert err.value.epoch == 1
    assert np.array_equal(net._params, before) and net.epochs_trained == 0


@pytest.mark.slow
def test_unscaled_pixels_warn_once_and_in_the_history():
    X, y, _, _ = steepest.load_mnist()
    pixels = np.round(X[:3000] * 255).astype(np.uint8)
    net = steepest.Network([784, 30, 10], seed=0)
    with pytest.warns(TrainingWarning) as caught:
        hist = net.fit(pixels, y[:3000], epochs=2, batch_size=10, learning_rate=3.0)
    messages = [str(w.message) for w in caught]
    assert any("far outside the usual scale" in m and "X / 255" in m for m in messages)
    assert any("no gradient reaches the weights of layer(s) 1" in m for m in messages)
    assert len(messages) == len(set(messages)) == len(hist.warnings)


@pytest.mark.slow
def test_dead_relu_layer_is_reported():
    X, y, _, _ = steepest.load_mnist()
    pixels = np.round(X[:3000] * 255).astype(np.uint8)
    net = steepest.Network([784, 30, 10], activation="relu", loss="cross_entropy", seed=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hist = net.fit(pixels, y[:3000], epochs=1, batch_size=10, learning_rate=0.1)
    assert any("dead (ReLU)" in m for m in hist.warnings)
    assert any(issubclass(w.category, TrainingWarning) for w in caught)


def test_well_scaled_training_gives_no_warning():
    X, y = blobs()
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainingWarning)
        hist = small_net().fit(X, y, epochs=3, learning_rate=0.5)
    assert hist.warnings == []


def test_sklearn_estimator_that_diverged_is_not_fitted():
    from sklearn.exceptions import NotFittedError

    X, y = blobs()
    model = steepest.MLPRegressor(hidden_layer_sizes=(4,), learning_rate_init=1e6, max_iter=3,
                                  random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(steepest.DivergenceError):
            model.fit(X * 1e3, y.astype(np.float64) * 1e3)
    with pytest.raises(NotFittedError):
        model.predict(X)


@pytest.mark.parametrize("loss,output", [("cross_entropy", "softmax"),
                                         ("binary_cross_entropy", "sigmoid")])
def test_evaluate_and_fit_report_exact_cross_entropies(loss, output):
    # confidently wrong outputs: logits of ±60 put the true class's probability far below
    # the old 1e-12 clamp, whose loss capped near 27.6 per sample
    X = np.eye(4, dtype=np.float32)
    y = np.array([1, 2, 3, 0])
    W = np.zeros((4, 4))
    W[np.arange(4), np.arange(4)] = 60.0  # row i predicts class i with certainty
    net = steepest.Network.from_params([W], [np.zeros(4)], output=output, loss=loss)
    z = (X @ W.T).astype(np.float64)
    if loss == "cross_entropy":
        lse = np.log(np.exp(z - z.max(1, keepdims=True)).sum(1)) + z.max(1)
        exact = np.mean(lse - z[np.arange(4), y])
    else:
        t = np.eye(4)[y]
        exact = np.mean((np.maximum(z, 0) - t * z + np.log1p(np.exp(-np.abs(z)))).sum(1))
    assert exact > 50
    assert net.evaluate(X, y)["loss"] == pytest.approx(exact, rel=1e-5)
    hist = net.fit(X, y, epochs=1, batch_size=None, learning_rate=1e-9)
    assert hist["loss"][0] == pytest.approx(exact, rel=1e-5)
