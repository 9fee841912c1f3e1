"""samples/s of Network.fit with each optimiser (second epoch), beside plain SGD, one process.

    python benchmarks/optimizer_speed.py

784-30-10 sigmoid/MSE on the first 50,000 MNIST training images, batch sizes 10 and 128.
The first epoch includes nothing of compilation (fit warms up first) but the second is
quoted anyway, so caches and the CPU's clock have settled.
"""

import steepest

RATES = {"sgd": 1.0, "momentum": 0.3, "adagrad": 0.1, "rmsprop": 0.001, "adam": 0.01}


def main():
    X, y, Xt, yt = steepest.load_mnist()
    X, y = X[:50_000], y[:50_000]
    print(f"{'optimiser':<10} {'batch':>5} {'samples/s':>10} {'test acc.':>9}")
    for name, rate in RATES.items():
        for batch_size in (10, 128):
            net = steepest.Network([784, 30, 10], seed=0)
            history = net.fit(X, y, epochs=2, batch_size=batch_size, learning_rate=rate,
                              optimizer=name)
            print(f"{name:<10} {batch_size:>5} {history['samples_per_s'][-1]:>10,.0f} "
                  f"{net.evaluate(Xt, yt)['accuracy']:>9.4f}")


if __name__ == "__main__":
    main()
