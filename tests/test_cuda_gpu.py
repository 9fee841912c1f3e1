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


@pytest.mark.parametrize("sizes,batch_size", [([784, 30, 10], 10), ([784, 16, 16, 10], 1)])
def test_the_shared_memory_opt_in_is_granted_and_trains_like_the_cpu(sizes, batch_size):
    # Where the device reports an opt-in maximum above 48 KB (Hopper: 227 KB), the driver must
    # accept raising the one-block kernel's limit, the epoch must launch with the whole
    # network in shared memory (more than 48 KB), and train as the CPU does.
    import numpy as np
    from numba import cuda

    from steepest.kernels import cpu
    from steepest.kernels.cuda import loops

    limit = _cuda.shared_memory_opt_in_bytes()
    if limit <= loops.SHARED_MEMORY_BYTES:
        pytest.skip(f"this GPU allows {limit} bytes per block: nothing to opt in to")
    assert loops.one_block_shared_limit() == limit
    rng = np.random.default_rng(0)
    X = rng.random((512, sizes[0]), dtype=np.float32)
    Y = np.eye(sizes[-1], dtype=np.float32)[rng.integers(0, sizes[-1], 512)]
    order = rng.permutation(512)
    net = steepest.Network(sizes, seed=0)
    acts, loss = net._activation_codes, net._loss_code
    params = net._params.copy()
    cpu_loss = cpu.sgd_epoch_minibatch(params, net._size_array, acts, loss, X, Y, order,
                                       batch_size, np.float32(0.5))
    params_dev = cuda.to_device(net._params)
    gpu_loss, layout = loops._one_block_epoch(
        params_dev, net._size_array, acts, loss, cuda.to_device(X), cuda.to_device(Y),
        cuda.to_device(order), batch_size, np.float32(0.5))
    assert layout["shared_bytes"] > loops.SHARED_MEMORY_BYTES, layout  # the opt-in was used
    assert layout["shared_from"] == 0 and layout["work_in_shared"]
    np.testing.assert_allclose(params_dev.copy_to_host(), params, rtol=1e-4, atol=1e-5)
    assert abs(gpu_loss - cpu_loss) <= 1e-4 * abs(cpu_loss) + 1e-6
