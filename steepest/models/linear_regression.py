"""``LinearRegression``: ŷ = X·w + b fitted by gradient descent, the first lesson of the course.

Three ways to walk down the same cost, chosen by ``method``:

* "batch"      batch gradient descent: one step per epoch on the gradient over all samples;
* "sgd"        stochastic gradient descent: one step per sample;
* "minibatch"  mini-batch gradient descent: one step per ``batch_size`` samples.

Each step minimises J(θ) = ½·(1/B)·Σ (y − ŷ)² over its batch of B samples (half the batch's
mean squared error, so the gradient has no stray factor 2):
∂J/∂w = (1/B)·Σ (ŷ − y)·x and ∂J/∂b = (1/B)·Σ (ŷ − y).  The history records the plain MSE,
(1/n)·Σ (y − ŷ)², over the whole training set.  A linear model is a one-layer network with
an identity output, so the steps run in the same compiled training loop as ``Network``.
Not here: regularisation paths, closed-form solving (use ``numpy.linalg.lstsq`` for that).
"""

import numpy as np

from ..kernels.codes import IDENTITY, MSE
from .backend import get_backend
from .optimizers import Optimizer, get_optimizer
from .validation import check_count, check_features, check_positive_real

METHODS = ("batch", "sgd", "minibatch")


def mean_squared_error(y_true, y_pred):
    """(1/n)·Σ (y − ŷ)²: the house-price example's MSE([100, 120, 80], [90, 130, 95]) = 141.67."""
    y_true = np.asarray(y_true, np.float64).ravel()
    y_pred = np.asarray(y_pred, np.float64).ravel()
    if y_true.shape != y_pred.shape or y_true.size == 0:
        raise ValueError(f"y_true and y_pred must be non-empty and of equal length; got "
                         f"{y_true.size} and {y_pred.size} values")
    return float(np.mean((y_true - y_pred) ** 2))


class LinearRegression:
    """Least-squares linear regression trained by batch, stochastic or mini-batch GD.

    Parameters
    ----------
    method : str
        "batch" (one step per epoch), "sgd" (one step per sample) or "minibatch".
    learning_rate : float
        η in θ ← θ − η∇J (an ``optimizer`` object brings its own).
    epochs : int
        Passes over the training data.
    batch_size : int
        Samples per step for "minibatch" (the last batch of an epoch may be shorter).
    optimizer : str or Optimizer, optional
        Plain SGD steps by default; any of ``steepest.optimizers`` may be used instead.
    shuffle : bool
        Reshuffle the samples each epoch ("sgd" and "minibatch"), seeded by ``seed``.
    seed : int, optional
        Seeds the shuffling and the initial weights (N(0, 1)/√n_features, bias 0).

    Attributes
    ----------
    coef_ : ndarray (n_features,)
        The weights w.
    intercept_ : float
        The bias b.
    loss_history_ : list of float
        MSE over the training set before training, then after every epoch (for "batch",
        after every step).
    n_steps_ : int
        Parameter updates taken.
    """

    def __init__(self, method="batch", learning_rate=0.01, epochs=100, batch_size=32,
                 optimizer=None, shuffle=True, seed=None, device="auto"):
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; expected one of "
                             f"{', '.join(map(repr, METHODS))}")
        self.method = method
        learning_rate = check_positive_real(learning_rate, "learning_rate")
        self.epochs = check_count(epochs, "epochs", 0)
        self.batch_size = check_count(batch_size, "batch_size", 1)
        # a configured optimiser object carries its own learning rate
        self.optimizer = get_optimizer(
            optimizer, None if isinstance(optimizer, Optimizer) else learning_rate)
        self.learning_rate = self.optimizer.learning_rate
        self.shuffle = bool(shuffle)
        self.seed = seed
        self.device = device

    def fit(self, X, y, coef_init=None, intercept_init=None):
        """Train from ``coef_init``, ``intercept_init`` (random weights and 0 when not given).

        X : array (n, n_features); y : array (n,).  Returns ``self``.

        Raises
        ------
        FloatingPointError
            The MSE became NaN or inf (the learning rate is too large); the history so far
            is kept in ``loss_history_``.
        """
        X = np.asarray(X)
        X_given = X  # the history's MSE is measured on X as given, not its float32 copy
        if X.ndim == 1:
            X = X.reshape(-1, 1)  # one feature: a plain vector of x values is accepted
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (n_samples, n_features); got shape {X.shape}")
        X = check_features(X, X.shape[1])
        n, n_features = X.shape
        y = np.asarray(y, dtype=np.float64)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.shape != (n,) or not np.isfinite(y).all():
            raise ValueError(f"y must hold one finite target per sample of X: shape ({n},); "
                             f"got shape {y.shape}")
        rng = np.random.default_rng(self.seed)
        if coef_init is None:
            coef = rng.standard_normal(n_features) / np.sqrt(n_features)
        else:
            coef = np.asarray(coef_init, np.float64).reshape(-1)
            if coef.shape != (n_features,):
                raise ValueError(f"coef_init must have {n_features} values; got shape {coef.shape}")
        intercept = 0.0 if intercept_init is None else float(intercept_init)

        # one dense layer: W (1, n_features) then b (1,), flat, as the kernels expect
        params = np.concatenate([coef, [intercept]]).astype(np.float32)
        sizes = np.array([n_features, 1], np.int64)
        activations = np.array([IDENTITY], np.int64)
        batch = {"batch": n, "sgd": 1, "minibatch": min(self.batch_size, n)}[self.method]
        backend = get_backend(self.device)
        k, to_dev = backend.kernels, backend.to_device
        state = to_dev(self.optimizer.new_state(params.size))
        step = to_dev(np.zeros(1, np.int64))
        hyper = to_dev(self.optimizer.hyper())
        params_dev, X_dev = to_dev(params), to_dev(X)
        Y_dev = to_dev(y.astype(np.float32).reshape(-1, 1))

        self._store(params)
        self.loss_history_ = [self.mse(X_given, y)]
        self.n_steps_ = 0
        for epoch in range(1, self.epochs + 1):
            shuffled = self.shuffle and self.method != "batch"
            order = rng.permutation(n) if shuffled else np.arange(n)
            k.optimizer_epoch_minibatch(params_dev, state, step, sizes, activations, MSE,
                                        self.optimizer.code, hyper, X_dev, Y_dev,
                                        to_dev(order), batch)
            backend.to_host(params, params_dev)
            self._store(params)
            self.n_steps_ += -(-n // batch)
            self.loss_history_.append(self.mse(X_given, y))
            if not np.isfinite(self.loss_history_[-1]):
                raise FloatingPointError(
                    f"linear regression diverged in epoch {epoch}: the MSE became "
                    f"{self.loss_history_[-1]} at learning_rate={self.learning_rate}; "
                    "try a smaller learning rate")
        return self

    def _store(self, params):
        self.coef_ = params[:-1].astype(np.float64)
        self.intercept_ = float(params[-1])

    def predict(self, X):
        """ŷ = X·w + b: float64 (n,)."""
        if not hasattr(self, "coef_"):
            raise RuntimeError("LinearRegression is not fitted yet: call fit(X, y) first")
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1 and self.coef_.size == 1:
            X = X.reshape(-1, 1)
        if X.ndim != 2 or X.shape[1] != self.coef_.size:
            raise ValueError(f"X must have shape (n, {self.coef_.size}); got {X.shape}")
        # a diverged fit gives inf, not a warning
        with np.errstate(over="ignore", invalid="ignore"):
            return X @ self.coef_ + self.intercept_

    def mse(self, X, y):
        """(1/n)·Σ (y − ŷ)² on (X, y)."""
        with np.errstate(over="ignore", invalid="ignore"):
            return mean_squared_error(y, self.predict(X))

    def __repr__(self):
        return (f"LinearRegression(method={self.method!r}, learning_rate={self.learning_rate}, "
                f"epochs={self.epochs}, batch_size={self.batch_size})")
