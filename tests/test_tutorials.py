"""The networks and lessons of the tutorials: parameter counts, XOR, vanishing gradients, and
``python -m steepest descend`` drawing a real PNG."""

import os
import subprocess
import sys

import numpy as np
import pytest

import steepest

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_784_16_16_10_has_12960_weights_and_42_biases():
    net = steepest.Network([784, 16, 16, 10])
    assert sum(W.size for W in net.weights) == 784 * 16 + 16 * 16 + 16 * 10 == 12_960
    assert sum(b.size for b in net.biases) == 16 + 16 + 10 == 42
    assert net.n_parameters == 12_960 + 42 == 13_002


def test_two_layer_sigmoid_network_learns_xor():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    y = np.array([0, 1, 1, 0])
    net = steepest.Network([2, 4, 1], activation="sigmoid", seed=0)
    before = net.evaluate(X, y)["loss"]
    net.fit(X, y, epochs=2000, batch_size=None, learning_rate=2.0)
    np.testing.assert_array_equal(net.predict(X), y)
    out = net.forward(X)[:, 0]
    assert np.all(np.abs(out - y) < 0.2), out
    assert net.evaluate(X, y)["loss"] < 0.05 * before


def test_deep_sigmoid_network_first_layer_gradients_vanish():
    X, y, _, _ = steepest.load_mnist()
    net = steepest.Network([784, 30, 30, 30, 30, 10], activation="sigmoid", seed=0)
    norms = net.gradient_norms(X[:500], y[:500])
    assert len(norms) == 5 and all(n > 0 for n in norms)
    assert norms[0] < norms[-1] / 30, norms
    # the same measure on a shallow network shows no such gap
    shallow = steepest.Network([784, 30, 10], seed=0).gradient_norms(X[:500], y[:500])
    assert shallow[0] > shallow[-1] / 30, shallow


def test_gradient_norms_are_the_norms_of_the_backprop_gradient(rng):
    from steepest.kernels import reference

    net = steepest.Network([5, 4, 3], activation="tanh", loss="cross_entropy", seed=2)
    X = rng.standard_normal((7, 5))
    y = rng.integers(0, 3, 7)
    grads = np.empty(net.n_parameters)
    reference.network_gradient(grads, net._params.astype(float), np.array(net.sizes),
                               net._activation_codes, net._loss_code, X, np.eye(3)[y])
    expected = [np.linalg.norm(grads[w]) for w, _ in reference.layer_slices(net.sizes)]
    np.testing.assert_allclose(net.gradient_norms(X, y), expected, rtol=1e-4)


def descend(*args, cwd):
    return subprocess.run([sys.executable, "-m", "steepest", "descend", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=120)


def test_descend_prints_the_points(tmp_path):
    out = descend("--no-plot", "--learning-rates", "0.3,1.0,1.2", "--epochs", "5", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[1] == "η = 0.3: 5, 2, 0.8, 0.32, 0.128, 0.0512"
    assert lines[2] == "η = 1: 5, -5, 5, -5, 5, -5"
    assert lines[3].startswith("η = 1.2: 5, -7, 9.8") and lines[3].endswith("[diverged]")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("function", ["quadratic", "bowl"])
def test_descend_draws_a_png(tmp_path, function):
    pytest.importorskip("matplotlib")
    target = tmp_path / "paths.png"
    out = descend("--function", function, "--epochs", "15", "-o", str(target), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    data = target.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000
    # a 4-panel figure is wider than tall (the IHDR chunk holds width then height)
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width > 2 * height
    assert f"drew 4 paths to {target}" in out.stdout


def test_descend_without_matplotlib_says_how_to_get_it(tmp_path):
    # a stand-in matplotlib that fails to import, first on the path
    fake = tmp_path / "matplotlib"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('no matplotlib here')\n")
    out = subprocess.run([sys.executable, "-m", "steepest", "descend", "-o", "x.png"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(
                             [str(tmp_path), os.environ.get("PYTHONPATH", "")])})
    assert out.returncode == 2
    assert "pip install 'steepest[plot]'" in out.stderr
    assert "η = 0.3" in out.stdout and not (tmp_path / "x.png").exists()


def test_descend_rejects_a_start_of_the_wrong_size(tmp_path):
    out = descend("--function", "bowl", "--x0", "1", "--no-plot", cwd=tmp_path)
    assert out.returncode == 2 and "--x0 for bowl needs 2" in out.stderr
