"""Gradient descent on f(x) = x² from x0 = 5: converging, oscillating and diverging.

Each step is x ← x − η·2x = (1 − 2η)x: a factor 0.4 at η = 0.3, −1 at η = 1 (x bounces
between 5 and −5), and beyond −1 for η > 1 (|x| grows: divergence).

    python examples/descent_1d.py
"""

import warnings

import steepest

# η = 1.1 diverges on purpose; each line says so, so minimize's DivergenceWarning is not shown
warnings.simplefilter("ignore", steepest.DivergenceWarning)
for learning_rate in (0.1, 0.3, 1.0, 1.1):
    path = steepest.minimize(lambda x: x ** 2, 5.0, learning_rate=learning_rate, epochs=6)
    points = ", ".join(f"{p:g}" for p in path.points)
    print(f"lr {learning_rate}: {points}  diverged={path.diverged}")
