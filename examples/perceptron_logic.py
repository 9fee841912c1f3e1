"""A perceptron learns AND and OR but not XOR; a two-layer sigmoid network learns XOR.

    python examples/perceptron_logic.py
"""

import warnings

import numpy as np

import steepest

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
gates = {"AND": [0, 0, 0, 1], "OR": [0, 1, 1, 1], "XOR": [0, 1, 1, 0]}
for name, y in gates.items():
    with warnings.catch_warnings():
        # XOR hits the epoch cap, as it must: the line below says "converged False"
        warnings.simplefilter("ignore", steepest.ConvergenceWarning)
        p = steepest.Perceptron(learning_rate=1.0, epochs=100).fit(X, y)
    print(f"perceptron {name}: predictions {p.predict(X).tolist()} accuracy {p.score(X, y):.2f} "
          f"converged {p.converged_} (w = {p.coef_.tolist()}, b = {p.intercept_})")

net = steepest.Network([2, 4, 1], activation="sigmoid", seed=0)
net.fit(X, np.array(gates["XOR"]), epochs=2000, batch_size=None, learning_rate=2.0)
outputs = net.forward(X)[:, 0]
print(f"network 2-4-1 XOR: outputs {[round(float(o), 3) for o in outputs]} predictions "
      f"{net.predict(X).tolist()}")
