"""What a user's ``fit`` and ``evaluate`` cost beside the epoch kernel, on MNIST.

    python benchmarks/api_overhead.py

Prints, for W1 (784-30-10, batch 10) and W3 (784-128-64-10, batch 128), the median and
minimum of ``fit(epochs=1)`` on 50,000 rows, of its epoch kernel alone (``History
["seconds"]``), and of ``evaluate`` on the 10,000 test rows.  Run it twice on two versions,
interleaved, on a shared machine: the minimum is the steadier figure.
"""

import statistics
import time
import warnings

import steepest

WORKLOADS = {"W1": ([784, 30, 10], "sigmoid", "mse", 10, 3.0),
             "W3": ([784, 128, 64, 10], "relu", "cross_entropy", 128, 0.1)}
FIT_ROUNDS, EVALUATE_ROUNDS = 11, 41


def _ms(values):
    return f"median {statistics.median(values) * 1e3:6.1f} ms, min {min(values) * 1e3:6.1f} ms"


def main():
    warnings.simplefilter("ignore", steepest.TrainingWarning)
    X, y, Xt, yt = steepest.load_mnist()
    X, y = X[:50_000], y[:50_000]
    for name, (sizes, activation, loss, batch_size, rate) in WORKLOADS.items():
        net = steepest.Network(sizes, activation=activation, loss=loss, seed=0)
        net.fit(X[:200], y[:200], epochs=1, batch_size=batch_size, learning_rate=rate)
        fits, kernels, evaluations = [], [], []
        for _ in range(FIT_ROUNDS):
            start = time.perf_counter()
            history = net.fit(X, y, epochs=1, batch_size=batch_size, learning_rate=rate)
            fits.append(time.perf_counter() - start)
            kernels.append(history["seconds"][0])
        for _ in range(EVALUATE_ROUNDS):
            start = time.perf_counter()
            net.evaluate(Xt, yt)
            evaluations.append(time.perf_counter() - start)
        print(f"{name}: fit {_ms(fits)} | epoch kernel {_ms(kernels)} | "
              f"evaluate(10k) {_ms(evaluations)}")


if __name__ == "__main__":
    main()
