"""``Perceptron``: Rosenblatt's single neuron with a step activation and its learning rule.

ŷ = step(w·x + b), with step(z) = 1 for z ≥ 0 and 0 otherwise.  The rule visits the samples
one at a time and corrects only mistakes: w ← w + η(y − ŷ)x, b ← b + η(y − ŷ).  If a line
(hyperplane) separates the two classes the rule finds one in finitely many steps (AND, OR)
and training stops after the first pass without a mistake; if none does (XOR) it never
settles, which is why networks need a hidden layer and a differentiable activation.  Then
the epoch cap stops it, with a ``ConvergenceWarning``.

Any two labels may be used (0/1, −1/+1, strings): they are sorted into ``classes_`` and the
rule works on 0 for ``classes_[0]`` and 1 for ``classes_[1]``.  Not here: the multi-class
perceptron, averaging, margins.  Training is a plain NumPy loop (a few samples, one neuron);
predictions go through the kernel set's ``step_forward``.
"""

import warnings

import numpy as np

from .backend import get_backend
from .estimator import ConvergenceWarning, DivergenceError, Estimator, features
from .validation import check_count, check_positive_real


class Perceptron(Estimator):
    """A binary classifier: one neuron with a step activation, trained by the perceptron rule.

    A scikit-learn estimator (``get_params``, ``score``, ``clone``, ``cross_val_score``)
    that does not need scikit-learn.

    Parameters
    ----------
    learning_rate : float
        η in w ← w + η(y − ŷ)x.
    epochs : int
        At most this many passes over the data; training stops after the first pass with no
        mistakes (the perceptron's own stopping test: every sample classified correctly).
    shuffle : bool
        Visit the samples in a new random order each pass (seeded by ``seed``).
    seed : int, optional
        Seeds the shuffling.  The weights start at zero.
    device : str
        "auto", "cpu" or "cuda": where predictions run.

    Attributes
    ----------
    classes_ : ndarray (2,)
        The two labels, sorted; ``predict`` returns ``classes_[1]`` where w·x + b ≥ 0.
    coef_ : ndarray (n_features,), intercept_ : float
        The learned w and b (also readable and settable as the older ``weights_``, ``bias_``).
    n_features_in_ : int
        Features seen in ``fit``.
    errors_ : list of int
        Mistakes (updates) in each pass.
    n_iter_ : int
        Passes made.
    converged_ : bool
        The last pass made no mistakes: every training sample is classified correctly.
    """

    _estimator_type = "classifier"

    def __init__(self, learning_rate=1.0, epochs=1000, shuffle=False, seed=None, device="auto"):
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.shuffle = shuffle
        self.seed = seed
        self.device = device

    def fit(self, X, y):
        """Learn from X (n, n_features) and y (n,) holding two labels; returns ``self``.

        Raises
        ------
        ValueError
            y does not hold exactly two labels (or holds non-integer numbers).
        DivergenceError
            The weights overflowed (an enormous learning rate or X).

        Warns
        -----
        ConvergenceWarning
            The last of ``epochs`` passes still made mistakes.
        """
        rate = check_positive_real(self.learning_rate, "learning_rate")
        epochs = check_count(self.epochs, "epochs", 1)
        get_backend(self.device)  # a bad device name fails here, not at predict
        X = features(X)
        self.classes_, targets = binary_labels(y, X.shape[0])
        self.n_features_in_ = X.shape[1]
        self.coef_, self.intercept_ = np.zeros(X.shape[1]), 0.0
        self.errors_ = []
        rng = np.random.default_rng(self.seed)
        for epoch in range(1, epochs + 1):
            order = rng.permutation(len(X)) if self.shuffle else np.arange(len(X))
            self.errors_.append(self._pass(X, targets, order, rate))
            if not (np.isfinite(self.coef_).all() and np.isfinite(self.intercept_)):
                raise DivergenceError(f"the perceptron's weights overflowed in pass {epoch} at "
                                      f"learning_rate={rate}; use a smaller learning rate or "
                                      "scale X", epoch, rate, self.errors_)
            if self.errors_[-1] == 0:
                break
        self.n_iter_ = len(self.errors_)
        self.converged_ = self.errors_[-1] == 0
        if not self.converged_:
            warnings.warn(f"Perceptron still made {self.errors_[-1]} mistakes in its last pass "
                          f"at the cap of epochs={epochs}: the classes may not be linearly "
                          "separable (then no number of passes separates them), or need more "
                          "passes.", ConvergenceWarning, stacklevel=2)
        return self

    def _pass(self, X, targets, order, rate):
        """One pass of the rule over the samples in ``order``; returns the mistakes made."""
        w, b = self.coef_, self.intercept_
        mistakes = 0
        with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported by fit
            for i in order:
                predicted = 1.0 if X[i] @ w + b >= 0.0 else 0.0
                update = rate * (targets[i] - predicted)  # 0 when right
                if update != 0.0:
                    w += update * X[i]
                    b += update
                    mistakes += 1
        self.intercept_ = float(b)
        return mistakes

    # ------------------------------------------------------------------ using it
    def decision_function(self, X):
        """z = X·w + b: float64 (n,); z ≥ 0 means ``classes_[1]``."""
        self._check_fitted()
        X = self._check_n_features(features(X))
        return X @ self.coef_ + self.intercept_

    def predict(self, X):
        """The labels step(X·w + b) picks: ``classes_[1]`` where z ≥ 0, else ``classes_[0]``."""
        z = self.decision_function(X).astype(np.float32).reshape(-1, 1)
        backend = get_backend(self.device)
        out = np.empty_like(z)
        out_dev = backend.to_device(out)
        backend.kernels.step_forward(out_dev, backend.to_device(z))
        backend.to_host(out, out_dev)
        return self.classes_[out[:, 0].astype(np.int64)]

    def score(self, X, y):
        """Accuracy: the fraction of samples classified correctly."""
        predicted = self.predict(X)
        y = np.asarray(y).reshape(-1)
        if y.shape != predicted.shape:
            raise ValueError(f"y must hold one label per sample of X: shape "
                             f"{predicted.shape}; got shape {y.shape}")
        return float(np.mean(predicted == y))

    # the names before scikit-learn's conventions, kept working
    @property
    def weights_(self):
        """The older name of ``coef_``."""
        self._check_fitted()
        return self.coef_

    @weights_.setter
    def weights_(self, value):
        self.coef_ = np.asarray(value, np.float64)

    @property
    def bias_(self):
        """The older name of ``intercept_``."""
        self._check_fitted()
        return self.intercept_

    @bias_.setter
    def bias_(self, value):
        self.intercept_ = float(value)


def binary_labels(y, n):
    """(classes_, targets): y's two labels, sorted, and 0/1 per sample (1 for classes_[1])."""
    if y is None:
        raise ValueError("Perceptron requires y to be passed, but the target y is None")
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.shape != (n,):
        raise ValueError(f"y must hold one label per sample of X: shape ({n},); got shape "
                         f"{y.shape}")
    if y.dtype.kind in "fc":
        if not np.isfinite(y).all():
            raise ValueError("y contains NaN or inf: labels must be two classes")
        if np.any(y != np.round(y)):
            raise ValueError("Unknown label type: y is a continuous target (it holds "
                             "non-integer numbers); the perceptron needs two class labels")
    classes, targets = np.unique(y, return_inverse=True)
    if len(classes) == 1:
        raise ValueError(f"y has one class ({classes[0]!r}): the perceptron needs two classes "
                         "to separate")
    if len(classes) > 2:
        raise ValueError(f"Only binary classification is supported: y has {len(classes)} "
                         f"classes ({', '.join(map(repr, classes[:5].tolist()))}"
                         f"{', …' if len(classes) > 5 else ''}); the perceptron separates two. "
                         "For more, use steepest.MLPClassifier or a Network.")
    return classes, targets.reshape(-1).astype(np.float64)
