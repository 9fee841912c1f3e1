"""``Perceptron``: Rosenblatt's single neuron with a step activation and its learning rule.

ŷ = step(w·x + b), with step(z) = 1 for z ≥ 0 and 0 otherwise.  The rule visits the samples
one at a time and corrects only mistakes: w ← w + η(y − ŷ)x, b ← b + η(y − ŷ).  If a line
(hyperplane) separates the two classes the rule finds one in finitely many steps (AND, OR);
if none does (XOR) it never settles, which is why networks need a hidden layer and a
differentiable activation.  Not here: the multi-class perceptron, averaging, margins.
Training is a plain NumPy loop (a few samples, one neuron); predictions go through the
kernel set's ``step_forward``.
"""

import numpy as np

from .backend import get_backend
from .validation import check_count, check_features, check_positive_real


class Perceptron:
    """A binary classifier: one neuron with a step activation, trained by the perceptron rule.

    Parameters
    ----------
    learning_rate : float
        η in w ← w + η(y − ŷ)x.
    epochs : int
        At most this many passes over the data; training stops early after a pass with no
        mistakes.
    shuffle : bool
        Visit the samples in a new random order each pass (seeded by ``seed``).
    seed : int, optional
        Seeds the shuffling.  The weights start at zero.

    Attributes
    ----------
    weights_ : ndarray (n_features,), bias_ : float
        The learned w and b.
    errors_ : list of int
        Mistakes (updates) in each pass.
    converged_ : bool
        The last pass made no mistakes: every training sample is classified correctly.
    """

    def __init__(self, learning_rate=1.0, epochs=100, shuffle=False, seed=None, device="auto"):
        self.learning_rate = check_positive_real(learning_rate, "learning_rate")
        self.epochs = check_count(epochs, "epochs", 1)
        self.shuffle = bool(shuffle)
        self.seed = seed
        self._backend = get_backend(device)

    def fit(self, X, y):
        """Learn from X (n, n_features) and labels y (n,) in {0, 1}; returns ``self``."""
        X = np.asarray(X)
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (n_samples, n_features); got shape {X.shape}")
        X = check_features(X, X.shape[1]).astype(np.float64)
        y = np.asarray(y)
        if y.shape != (X.shape[0],) or not np.isin(y, (0, 1)).all():
            raise ValueError(f"y must hold one label 0 or 1 per sample of X ({X.shape[0]}); "
                             f"got {y!r}")
        y = y.astype(np.float64)
        rng = np.random.default_rng(self.seed)
        w, b = np.zeros(X.shape[1]), 0.0
        self.errors_ = []
        for _ in range(self.epochs):
            order = rng.permutation(len(X)) if self.shuffle else np.arange(len(X))
            mistakes = 0
            for i in order:
                predicted = 1.0 if X[i] @ w + b >= 0.0 else 0.0
                update = self.learning_rate * (y[i] - predicted)  # 0 when right
                if update != 0.0:
                    w += update * X[i]
                    b += update
                    mistakes += 1
            self.errors_.append(mistakes)
            if mistakes == 0:
                break
        self.weights_, self.bias_ = w, float(b)
        self.converged_ = self.errors_[-1] == 0
        return self

    def decision_function(self, X):
        """z = X·w + b: float64 (n,)."""
        if not hasattr(self, "weights_"):
            raise RuntimeError("Perceptron is not fitted yet: call fit(X, y) first")
        X = np.asarray(X, np.float64)
        if X.ndim != 2 or X.shape[1] != self.weights_.size:
            raise ValueError(f"X must have shape (n, {self.weights_.size}); got {X.shape}")
        return X @ self.weights_ + self.bias_

    def predict(self, X):
        """Labels step(X·w + b) in {0, 1}: int64 (n,)."""
        z = self.decision_function(X).astype(np.float32).reshape(-1, 1)
        k = self._backend
        out = np.empty_like(z)
        out_dev = k.to_device(out)
        k.kernels.step_forward(out_dev, k.to_device(z))
        k.to_host(out, out_dev)
        return out[:, 0].astype(np.int64)

    def score(self, X, y):
        """Accuracy: the fraction of samples classified correctly."""
        return float(np.mean(self.predict(X) == np.asarray(y)))

    def __repr__(self):
        return f"Perceptron(learning_rate={self.learning_rate}, epochs={self.epochs})"
