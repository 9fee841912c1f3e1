"""Batch, stochastic and mini-batch gradient descent on the same regression, against lstsq.

Each runs exactly 100 epochs at its own fixed learning rate, so the columns compare what
the same budget of epochs buys.

    python examples/linear_regression_methods.py
"""

import numpy as np

import steepest

rng = np.random.default_rng(0)
X = rng.standard_normal((400, 3))
y = X @ np.array([1.5, -2.0, 0.5]) + 3.0 + 0.1 * rng.standard_normal(400)
exact = np.linalg.lstsq(np.c_[X, np.ones(len(X))], y, rcond=None)[0]
print("lstsq:     w =", np.round(exact[:3], 3), f"b = {exact[3]:.3f}")

for method, learning_rate in [("batch", 0.1), ("sgd", 0.005), ("minibatch", 0.05)]:
    model = steepest.LinearRegression(method=method, learning_rate=learning_rate, epochs=100,
                                      batch_size=16, seed=0).fit(X, y)
    error = np.abs(np.r_[model.coef_, model.intercept_] - exact).max()
    print(f"{method + ':':10s} w = {np.round(model.coef_, 3)} b = {model.intercept_:.3f}  "
          f"steps {model.n_steps_:6d}  final MSE {model.loss_history_[-1]:.5f}  "
          f"max |θ − θ_lstsq| {error:.4f}")
