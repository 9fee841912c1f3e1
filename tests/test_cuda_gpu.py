"""Checks that only mean something on a real NVIDIA GPU (skipped with a reason elsewhere)."""

import pytest

import steepest
from steepest.kernels import _cuda

pytestmark = pytest.mark.gpu


def test_driver_probe_agrees_with_numba_cuda():
    from numba import cuda

    assert _cuda.real_gpu_present()
    assert len(cuda.gpus) == _cuda.driver_gpu_count()
    assert steepest.Network([3, 2], device="auto").backend_device == "cuda"


@pytest.mark.slow
@pytest.mark.parametrize("batch_size,sizes", [(10, [784, 30, 10]), (1, [784, 16, 16, 10])])
def test_mnist_epoch_accuracy_matches_cpu(batch_size, sizes):
    # The bar: the same test accuracy as the CPU within 0.5% after an epoch.
    X, y, Xt, yt = steepest.load_mnist()
    X, y = X[:50_000], y[:50_000]
    base = steepest.Network(sizes, seed=0)
    accuracy = {}
    for device in ("cpu", "cuda"):
        net = steepest.Network.from_params(base.weights, base.biases, device=device)
        history = net.fit(X, y, epochs=1, batch_size=batch_size,
                          learning_rate=3.0 if batch_size == 10 else 0.5, shuffle=False)
        assert history.device == device
        accuracy[device] = net.evaluate(Xt, yt)["accuracy"]
    assert accuracy["cuda"] > 0.85
    assert abs(accuracy["cuda"] - accuracy["cpu"]) <= 0.005, accuracy
