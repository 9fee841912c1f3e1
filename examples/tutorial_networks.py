"""The networks of the tutorials, counted: 784-16-16-10 has 12,960 weights and 42 biases.

    python examples/tutorial_networks.py
"""

import steepest

for sizes in ([784, 16, 16, 10], [784, 30, 10]):
    net = steepest.Network(sizes, seed=0)
    weights = sum(W.size for W in net.weights)
    biases = sum(b.size for b in net.biases)
    print(f"{'-'.join(map(str, sizes))}: {weights:,} weights + {biases} biases = "
          f"{net.n_parameters:,} parameters")
