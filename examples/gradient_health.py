"""Vanishing gradients: per-layer gradient norms of a deep sigmoid network on MNIST, at init.

Going back through each sigmoid layer multiplies δ by Wᵀ and by σ′ ≤ ¼, so the first layer's
gradient is far smaller than the last's: the early layers barely learn.

    python examples/gradient_health.py
"""

import steepest

X, y, _, _ = steepest.load_mnist()
net = steepest.Network([784, 30, 30, 30, 30, 10], activation="sigmoid", seed=0)
norms = net.gradient_norms(X[:1000], y[:1000])
for layer, norm in enumerate(norms, start=1):
    print(f"layer {layer}: ||dL/dW|| = {norm:.6f}")
print(f"last / first = {norms[-1] / norms[0]:.0f}")
