"""CUDA epoch benchmarks: W1, W2, W3 on 50,000 MNIST samples (real GPU only, never simulated).

W1: 784-30-10 sigmoid + MSE, mini-batch 10, η = 3.0 (Nielsen's chapter 1)
W2: 784-16-16-10 sigmoid + MSE, per-sample SGD, η = 0.5 (one kernel launch per epoch)
W3: 784-128-64-10 ReLU + softmax cross-entropy, mini-batch 128, η = 0.1

Each timed call is one epoch through the kernel set with ``cuda.synchronize()`` inside, the
data already on the device (as in ``Network.fit``).  Before timing, one epoch on the GPU is
checked against the CPU kernels from the same start and sample order, and the test accuracy
after it goes into ``extra_info``.  PyTorch CUDA eager runs the same workloads beside it when
torch is installed.  Run on a GPU machine with:

    python -m pytest benchmarks/test_bench_cuda.py --benchmark-enable -q
"""

import time

import numpy as np
import pytest

import steepest
from steepest.kernels import _cuda, codes

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not _cuda.real_gpu_present(),
                       reason="needs a real NVIDIA GPU with numba-cuda (simulator timings are "
                              "meaningless)"),
]

N_TRAIN = 50_000
WORKLOADS = {  # name: (sizes, hidden activation, output, loss, batch size, learning rate)
    "W1": ([784, 30, 10], "sigmoid", "sigmoid", "mse", 10, 3.0),
    "W2": ([784, 16, 16, 10], "sigmoid", "sigmoid", "mse", 1, 0.5),
    "W3": ([784, 128, 64, 10], "relu", "softmax", "cross_entropy", 128, 0.1),
}


@pytest.fixture(scope="module")
def mnist():
    X, y, Xt, yt = steepest.load_mnist()
    return X[:N_TRAIN], y[:N_TRAIN], Xt, yt


def _epoch(kernels, params, sizes, acts, loss, X, Y, order, batch_size, lr):
    if batch_size == 1:
        return kernels.sgd_epoch_per_sample(params, sizes, acts, loss, X, Y, order, lr)
    return kernels.sgd_epoch_minibatch(params, sizes, acts, loss, X, Y, order, batch_size, lr)


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_bench_cuda_epoch(benchmark, mnist, name):
    from steepest.kernels import cpu
    from steepest.kernels import cuda as gpu

    sizes, hidden, output, loss_name, batch_size, lr = WORKLOADS[name]
    X, y, Xt, yt = mnist
    net = steepest.Network(sizes, activation=hidden, output=output, loss=loss_name, seed=0,
                           device="cuda")
    size_array = np.array(sizes, np.int64)
    acts = np.array([codes.ACTIVATION_CODES[hidden]] * (len(sizes) - 2)
                    + [codes.ACTIVATION_CODES[output]], np.int64)
    loss = codes.LOSS_CODES[loss_name]
    Y = np.eye(sizes[-1], dtype=np.float32)[y]
    order = np.random.default_rng(1).permutation(N_TRAIN)
    lr32 = np.float32(lr)
    cuda = _cuda.load()
    X_dev, Y_dev, order_dev = cuda.to_device(X), cuda.to_device(Y), cuda.to_device(order)

    # check: one epoch on the GPU and on the CPU from the same start and order
    start = net._params.copy()
    params_dev = cuda.to_device(start)
    gpu_loss = _epoch(gpu, params_dev, size_array, acts, loss, X_dev, Y_dev, order_dev,
                      batch_size, lr32)
    cpu_params = start.copy()
    cpu_loss = _epoch(cpu, cpu_params, size_array, acts, loss, X, Y, order, batch_size, lr32)
    gpu_params = params_dev.copy_to_host()
    weight_difference = float(np.abs(gpu_params - cpu_params).max() / np.abs(cpu_params).max())
    net._params[...] = gpu_params
    gpu_accuracy = net.evaluate(Xt, yt)["accuracy"]
    net._params[...] = cpu_params
    cpu_accuracy = net.evaluate(Xt, yt)["accuracy"]
    assert abs(gpu_accuracy - cpu_accuracy) <= 0.005, (gpu_accuracy, cpu_accuracy)
    assert gpu_loss == pytest.approx(cpu_loss, rel=0.02), (gpu_loss, cpu_loss)

    def one_epoch():
        _epoch(gpu, params_dev, size_array, acts, loss, X_dev, Y_dev, order_dev, batch_size,
               lr32)
        cuda.synchronize()

    one_epoch()  # compiled already; warm the caches as well
    tick = time.perf_counter()
    one_epoch()
    single = time.perf_counter() - tick
    benchmark.group = f"cuda-{name}"
    benchmark(one_epoch)
    stats = getattr(benchmark, "stats", None)
    seconds = stats.stats.mean if stats is not None else single
    benchmark.extra_info.update(samples_per_s=N_TRAIN / seconds, gpu_test_accuracy=gpu_accuracy,
                                cpu_test_accuracy=cpu_accuracy, epoch_loss=gpu_loss,
                                weight_difference=weight_difference)


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_bench_torch_epoch(benchmark, mnist, name):
    """The same epoch in PyTorch CUDA eager (plain SGD, the same losses), for comparison."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA device here")
    sizes, hidden, output, loss_name, batch_size, lr = WORKLOADS[name]
    X, y, Xt, yt = mnist
    device = torch.device("cuda")
    torch.manual_seed(0)
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(n_in, n_out))
        last = i == len(sizes) - 2
        act = output if last else hidden
        if act == "sigmoid":
            layers.append(torch.nn.Sigmoid())
        elif act == "relu":
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    X_dev = torch.from_numpy(X).to(device)
    y_dev = torch.from_numpy(y.astype(np.int64)).to(device)
    Y_dev = torch.nn.functional.one_hot(y_dev, sizes[-1]).float()
    order = torch.randperm(N_TRAIN, device=device)

    def batch_loss(out, rows):
        if loss_name == "mse":  # ½‖a − y‖² per sample, batch mean
            return 0.5 * ((out - Y_dev[rows]) ** 2).sum(dim=1).mean()
        return torch.nn.functional.cross_entropy(out, y_dev[rows])  # softmax folded in

    def one_epoch():
        for start in range(0, N_TRAIN, batch_size):
            rows = order[start:start + batch_size]
            optimizer.zero_grad(set_to_none=True)
            batch_loss(model(X_dev[rows]), rows).backward()
            optimizer.step()
        torch.cuda.synchronize()

    one_epoch()
    tick = time.perf_counter()
    one_epoch()
    single = time.perf_counter() - tick
    benchmark.group = f"cuda-{name}"
    benchmark(one_epoch)
    with torch.no_grad():
        accuracy = (model(torch.from_numpy(Xt).to(device)).argmax(1).cpu().numpy() == yt).mean()
    stats = getattr(benchmark, "stats", None)
    seconds = stats.stats.mean if stats is not None else single
    benchmark.extra_info.update(samples_per_s=N_TRAIN / seconds, test_accuracy=float(accuracy))
