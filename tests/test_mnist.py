"""End to end on real MNIST, through the public API and the command line."""

import json
import subprocess
import sys

import pytest

import steepest


@pytest.fixture(scope="module")
def mnist():
    return steepest.load_mnist()


@pytest.mark.slow
def test_one_epoch_of_784_30_10_reaches_90_percent(mnist):
    X, y, Xt, yt = mnist
    net = steepest.Network([784, 30, 10], activation="sigmoid", loss="mse", seed=0)
    hist = net.fit(X, y, epochs=1, batch_size=10, learning_rate=3.0, validation_data=(Xt, yt))
    result = net.evaluate(Xt, yt)
    assert result["accuracy"] >= 0.90
    assert hist["val_accuracy"][0] == result["accuracy"]


@pytest.mark.slow
def test_relu_softmax_network_learns(mnist):
    X, y, Xt, yt = mnist
    net = steepest.Network([784, 64, 10], activation="relu", output="softmax",
                           loss="cross_entropy", seed=0)
    net.fit(X[:20000], y[:20000], epochs=1, batch_size=32, learning_rate=0.1)
    assert net.evaluate(Xt, yt)["accuracy"] >= 0.90


@pytest.mark.slow
def test_cli_train_writes_metrics_and_checkpoint(tmp_path):
    metrics, model = tmp_path / "m.json", tmp_path / "net.npz"
    cmd = [sys.executable, "-m", "steepest", "train", "--epochs", "1", "--train-samples",
           "10000", "--metrics-json", str(metrics), "--save", str(model)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "epoch   1/1" in out.stdout and "samples/s" in out.stdout
    data = json.loads(metrics.read_text())
    assert data["device"] == "cpu" and data["sizes"] == [784, 30, 10]
    assert len(data["epochs"]) == 1 and data["epochs"][0]["samples_per_s"] > 0
    assert data["final"]["test_accuracy"] >= 0.85
    net = steepest.Network.load(model)
    Xt, yt = steepest.load_mnist()[2:]
    assert net.evaluate(Xt, yt)["accuracy"] == pytest.approx(data["final"]["test_accuracy"])


def test_cli_help_and_bad_arguments():
    out = subprocess.run([sys.executable, "-m", "steepest", "train", "--help"],
                         capture_output=True, text=True)
    assert out.returncode == 0 and "--metrics-json" in out.stdout and "--batch-size" in out.stdout
    out = subprocess.run([sys.executable, "-m", "steepest", "train", "--loss", "hinge",
                          "--epochs", "1"], capture_output=True, text=True)
    assert out.returncode == 2 and "unknown loss 'hinge'" in out.stderr
    assert "Traceback" not in out.stderr
