"""SGD, Momentum, Adagrad, RMSProp and Adam on the same ill-conditioned regression.

The features differ in scale by 10×, so the cost is a long narrow valley: plain SGD must use
a small step for the steep direction and crawls along the shallow one; momentum and the
adaptive methods do better.  All run in the same compiled loop, picked by name or object.

    python examples/optimizers.py
"""

import numpy as np

import steepest
from steepest import optimizers

rng = np.random.default_rng(1)
X = rng.standard_normal((256, 2)) * [1.0, 10.0]
y = X @ np.array([3.0, -0.5]) + 2.0
choices = [optimizers.SGD(learning_rate=0.009), optimizers.Momentum(learning_rate=0.002),
           optimizers.Adagrad(learning_rate=0.5), optimizers.RMSProp(learning_rate=0.05),
           optimizers.Adam(learning_rate=0.1, beta1=0.9, beta2=0.999)]
for opt in choices:
    model = steepest.LinearRegression(method="minibatch", batch_size=32, epochs=40,
                                      optimizer=opt, seed=0).fit(X, y)
    print(f"{type(opt).__name__:8s} MSE after 1 epoch {model.loss_history_[1]:10.4f}, "
          f"after 40 {model.loss_history_[-1]:10.6f}")
