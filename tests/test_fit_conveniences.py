"""Training conveniences around the compiled epochs: validation split, early stopping,
learning-rate schedules, callbacks, and the history's plot."""

import math
from fractions import Fraction

import numpy as np
import pytest
from helpers import needs_cuda

import steepest


def blobs(n=120, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = (rng.standard_normal((n, 4)) + 1.5 * y[:, None]).astype(np.float32)
    return X, y


def test_validation_split_is_the_last_rows():
    X, y = blobs()
    a = steepest.Network([4, 5, 2], seed=1)
    b = steepest.Network([4, 5, 2], seed=1)
    ha = a.fit(X, y, epochs=3, batch_size=8, learning_rate=0.5, validation_split=0.25)
    hb = b.fit(X[:90], y[:90], epochs=3, batch_size=8, learning_rate=0.5,
               validation_data=(X[90:], y[90:]))
    assert np.array_equal(a._params, b._params)
    assert ha["val_loss"] == hb["val_loss"] and ha["val_accuracy"] == hb["val_accuracy"]
    assert ha["accuracy"] == hb["accuracy"]  # measured on the 90 training rows only
    with pytest.raises(ValueError, match="validation_split must be a number in"):
        a.fit(X, y, validation_split=1.5)
    with pytest.raises(ValueError, match="not both"):
        a.fit(X, y, validation_split=0.2, validation_data=(X, y))


@pytest.mark.parametrize("fraction", [np.float32(0.25), np.float64(0.25), Fraction(1, 4)])
def test_validation_split_takes_every_real_number_type(fraction):
    X, y = blobs()
    a = steepest.Network([4, 5, 2], seed=1)
    b = steepest.Network([4, 5, 2], seed=1)
    ha = a.fit(X, y, epochs=2, batch_size=8, learning_rate=0.5, validation_split=fraction)
    hb = b.fit(X, y, epochs=2, batch_size=8, learning_rate=0.5, validation_split=0.25)
    assert np.array_equal(a._params, b._params)
    assert ha["val_loss"] == hb["val_loss"]


def test_history_records_training_accuracy_per_epoch(monkeypatch):
    from steepest.models.network import _accuracy_blocks

    X, y = blobs(n=300, seed=3)
    # fewer accuracy rows than samples: 8 runs of 12 rows, from the first row to the last
    monkeypatch.setattr("steepest.models.network.ACCURACY_ROWS", 100)
    blocks = _accuracy_blocks(300)
    assert len(blocks) == 8 and blocks[0] == (0, 12) and blocks[-1] == (288, 300)
    measured = np.concatenate([np.arange(start, stop) for start, stop in blocks])
    net = steepest.Network([4, 5, 2], seed=2)
    seen = []
    history = net.fit(X, y, epochs=3, batch_size=8, learning_rate=0.5,
                      callbacks=[lambda epoch, metrics: seen.append(metrics["accuracy"])])
    assert len(history["accuracy"]) == 3 and history["accuracy"] == seen
    assert history["accuracy"][-1] == pytest.approx(
        net.evaluate(X[measured], y[measured])["accuracy"], rel=1e-12)
    assert history["accuracy"][-1] > 0.7  # the blobs are separable enough to learn
    regressor = steepest.Network([4, 1], loss="mse", output="identity", seed=0)
    assert "accuracy" not in regressor.fit(X, y[:, None].astype(np.float32), epochs=1)


@pytest.mark.parametrize("share, calls_per_epoch", [(1.0, [8]), (0.0, [1] * 8), (0.04, [2] * 4)])
def test_training_accuracy_is_the_same_bits_however_its_blocks_are_grouped(
        monkeypatch, share, calls_per_epoch):
    """The accuracy pass computes a call's outputs for at most ACCURACY_OUT_SHARE of X's bytes
    (all eight blocks at once took a small CSR fit past issue 14's memory target): grouped in
    one call, one per block, or in pairs, the history is the same bits."""
    from steepest.kernels import cpu

    X, y = blobs(n=300, seed=3)  # float32, 4,800 bytes: a share of 0.04 is 24 rows of 2 outputs
    monkeypatch.setattr("steepest.models.network.ACCURACY_ROWS", 100)  # 8 blocks of 12 rows
    forward_blocks, calls = cpu.network_forward_blocks, []

    def spy(outs, params, sizes, activations, blocks):
        calls.append(len(blocks))
        return forward_blocks(outs, params, sizes, activations, blocks)

    def accuracies():
        net = steepest.Network([4, 5, 2], seed=2)
        return net.fit(X, y, epochs=2, batch_size=8, learning_rate=0.5)["accuracy"]

    alone = accuracies()
    monkeypatch.setattr(cpu, "network_forward_blocks", spy)
    monkeypatch.setattr("steepest.models.network.ACCURACY_OUT_SHARE", share)
    assert accuracies() == alone
    assert calls == calls_per_epoch * 2


def test_evaluation_in_chunks_behind_a_progress_bar_matches_one_pass(monkeypatch, capsys):
    X, y = blobs(n=1000, seed=4)
    net = steepest.Network([4, 6, 2], seed=5)
    net.fit(X, y, epochs=2, batch_size=16, learning_rate=0.5)
    whole, whole_out = net.evaluate(X, y), net.forward(X)
    monkeypatch.setattr("steepest.models.network.EVAL_CHUNK", 300)  # 4 chunks, the last short
    chunked = net.evaluate(X, y, verbose=1)
    assert chunked["accuracy"] == whole["accuracy"]
    assert chunked["loss"] == pytest.approx(whole["loss"], rel=1e-6)
    assert np.array_equal(net.forward(X, verbose=1), whole_out)
    assert np.array_equal(net.predict(X, verbose=1), net.predict(X))
    assert capsys.readouterr().err == ""  # not a terminal: the bar stays silent


def _rows_per_kernel_call(monkeypatch, net):
    """A list that records the rows of every inference kernel call of ``net``'s backend."""
    kernels, seen = net._backend.kernels, []
    for name, x_position in (("network_forward", -1), ("network_evaluate", -2)):
        original = getattr(kernels, name)

        def spy(*args, _original=original, _x=x_position):
            seen.append(args[_x].shape[0])
            return _original(*args)
        monkeypatch.setattr(kernels, name, spy)
    return seen


@pytest.mark.parametrize("verbose,device", [(0, "cpu"), (1, "cpu"),
                                            pytest.param(0, "cuda", marks=needs_cuda)])
def test_inference_runs_in_bounded_chunks_whatever_verbose_is(monkeypatch, verbose, device):
    # so a large input never asks the device for n × width memory at once
    X, y = blobs(n=100, seed=4)
    net = steepest.Network([4, 6, 2], seed=5, device=device)
    whole = (net.evaluate(X, y), net.forward(X), net.predict(X))
    monkeypatch.setattr("steepest.models.network.EVAL_CHUNK", 30)
    seen = _rows_per_kernel_call(monkeypatch, net)
    chunked = (net.evaluate(X, y, verbose), net.forward(X, verbose), net.predict(X, verbose))
    assert seen == [30, 30, 30, 10] * 3
    assert chunked[0]["accuracy"] == whole[0]["accuracy"]
    assert chunked[0]["loss"] == pytest.approx(whole[0]["loss"], rel=1e-6)
    assert np.array_equal(chunked[1], whole[1]) and np.array_equal(chunked[2], whole[2])


def test_wide_networks_take_fewer_rows_per_inference_call(monkeypatch):
    X, _ = blobs(n=100, seed=4)
    net = steepest.Network([4, 500, 2], seed=5)
    whole = net.forward(X)
    monkeypatch.setattr("steepest.models.network.EVAL_BYTES", 4 * 506 * 30)  # 30 rows' worth
    seen = _rows_per_kernel_call(monkeypatch, net)
    assert np.array_equal(net.forward(X), whole)
    assert seen == [30, 30, 30, 10]


class Recorder(steepest.Callback):
    def on_train_begin(self, network):
        self.network, self.params, self.begun = network, {}, True

    def on_epoch_end(self, epoch, metrics):
        self.params[epoch] = self.network._params.copy()
        return False

    def on_train_end(self, network):
        self.ended = True


def test_early_stopping_restores_the_best_epoch():
    X, y = blobs()
    # validating on flipped labels: the better the network learns, the worse val_loss gets
    net = steepest.Network([4, 6, 2], loss="cross_entropy", seed=2)
    recorder = Recorder()
    stopper = steepest.EarlyStopping(monitor="val_loss", patience=3)
    hist = net.fit(X, y, epochs=50, batch_size=8, learning_rate=0.3,
                   validation_data=(X, 1 - y), callbacks=[recorder, stopper])
    best = int(np.argmin(hist["val_loss"])) + 1
    assert stopper.best_epoch == best and stopper.stopped_epoch == best + 3
    assert len(hist) == best + 3 < 50
    assert np.array_equal(net._params, recorder.params[best])
    assert not np.array_equal(net._params, recorder.params[len(hist)])
    assert recorder.begun and recorder.ended


def test_early_stopping_min_delta_and_accuracy_mode():
    stopper = steepest.EarlyStopping(monitor="val_accuracy", patience=2, min_delta=0.05,
                                     restore_best_weights=False)
    assert stopper.mode == "max"
    stopper.on_train_begin(steepest.Network([2, 2], seed=0))
    results = [stopper.on_epoch_end(e, {"val_accuracy": v})
               for e, v in enumerate([0.5, 0.52, 0.6, 0.62, 0.64], start=1)]
    assert results == [False, False, False, False, True]  # 0.62, 0.64 are within min_delta
    assert stopper.best_epoch == 3
    with pytest.raises(ValueError, match="monitors 'val_loss'"):
        steepest.EarlyStopping().on_epoch_end(1, {"loss": 1.0})


def test_schedules_give_the_documented_rates():
    step = steepest.StepDecay(step_size=2, factor=0.5)
    assert [step.learning_rate(e, 1.0, {}) for e in range(1, 6)] == [1, 1, 0.5, 0.5, 0.25]
    expo = steepest.ExponentialDecay(factor=0.9)
    assert expo.learning_rate(3, 2.0, {}) == pytest.approx(2.0 * 0.81)
    inv = steepest.InverseScaling(power=0.5)
    assert inv.learning_rate(4, 1.0, {}) == pytest.approx(0.5)
    plateau = steepest.ReduceOnPlateau(monitor="val_loss", factor=0.1, patience=2)
    history = {"epoch": [1, 2, 3, 4, 5, 6], "val_loss": [1.0, 0.9, 0.95, 0.91, 0.92, 0.93]}
    # no improvement after epoch 2 for epochs 3, 4 -> ×0.1; then 5, 6 -> ×0.1 again
    assert plateau.learning_rate(7, 1.0, history) == pytest.approx(0.01)
    first_four = {k: v[:4] for k, v in history.items()}
    assert plateau.learning_rate(5, 1.0, first_four) == pytest.approx(0.1)


def test_fit_follows_the_schedule_and_records_it():
    X, y = blobs()
    net = steepest.Network([4, 3, 2], seed=3)
    hist = net.fit(X, y, epochs=5, batch_size=10, learning_rate=0.8,
                   lr_schedule=steepest.StepDecay(step_size=2, factor=0.5))
    assert hist["learning_rate"] == [0.8, 0.8, 0.4, 0.4, 0.2]
    # the same rates given epoch by epoch produce the same weights
    other = steepest.Network([4, 3, 2], seed=3)
    for rate in hist["learning_rate"]:
        other.fit(X, y, epochs=1, batch_size=10, learning_rate=rate)
    assert np.array_equal(net._params, other._params)
    # a callable gets the network's epoch count: this call's epochs are 6, 7 and 8
    hist = net.fit(X, y, epochs=3, learning_rate=1.0,
                   lr_schedule=lambda epoch, rate, history: rate / epoch)
    assert hist["learning_rate"] == pytest.approx([1 / 6, 1 / 7, 1 / 8])
    with pytest.raises(ValueError, match="learning rate from lr_schedule"):
        net.fit(X, y, epochs=1, lr_schedule=lambda e, r, h: -1.0)
    with pytest.raises(ValueError, match="unknown lr_schedule 'cosine'"):
        net.fit(X, y, epochs=1, lr_schedule="cosine")


def test_callable_callback_sees_metrics_and_can_stop():
    X, y = blobs()
    seen = []

    def stop_at_three(epoch, metrics):
        seen.append((epoch, sorted(metrics)))
        return epoch == 3

    net = steepest.Network([4, 3, 2], seed=4)
    hist = net.fit(X, y, epochs=10, batch_size=10, learning_rate=0.5, validation_split=0.2,
                   callbacks=[stop_at_three])
    assert len(hist) == 3 and net.epochs_trained == 3 and [e for e, _ in seen] == [1, 2, 3]
    assert {"loss", "val_loss", "val_accuracy", "learning_rate", "grad_norms",
            "samples_per_s"} <= set(seen[0][1])
    with pytest.raises(TypeError, match=r"callbacks\[0\]"):
        net.fit(X, y, callbacks=["not callable"])


def test_history_records_gradient_norms_per_layer():
    X, y = blobs()
    net = steepest.Network([4, 5, 3, 2], seed=5)
    hist = net.fit(X, y, epochs=2, batch_size=10, learning_rate=0.5)
    assert [len(norms) for norms in hist["grad_norms"]] == [3, 3]
    assert all(v > 0 and math.isfinite(v) for norms in hist["grad_norms"] for v in norms)
    assert net.gradient_norms(X[:256], y[:256]) == pytest.approx(hist["grad_norms"][-1], rel=1e-5)


def test_history_plot_writes_a_png(tmp_path):
    X, y = blobs()
    net = steepest.Network([4, 3, 2], seed=6)
    hist = net.fit(X, y, epochs=4, learning_rate=0.5, validation_split=0.2,
                   lr_schedule="exponential")
    path = hist.plot(tmp_path / "history.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
