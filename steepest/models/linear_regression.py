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

The step size.  An explicit ``learning_rate`` (or an optimizer object's) is used as given, on
X and y as given: the lessons' textbook steps.  The default, ``learning_rate="auto"``, picks
the step from the data, because no fixed rate suits unscaled data: it walks on standardized
features and target ((x − mean)/std; the coefficients are mapped back afterwards), where the
cost's curvature is at most L = the largest eigenvalue of the Gram matrix (1/n)·XᵀX (at least
1: the intercept's), and steps η = 1/L, the largest step that can never overshoot.  For
"sgd" and "minibatch" L is that of a B-sample batch (see ``batch_curvature``).

How long.  ``epochs=N`` runs exactly N epochs, as the lessons do.  The default,
``epochs=None``, trains until ``n_iter_no_change`` epochs in a row have each lowered the
training MSE by less than ``tol``·var(y) (the training R² by less than ``tol``: scikit-learn's
``tol``/``n_iter_no_change`` rule), or stops at ``max_iter`` epochs with a
``ConvergenceWarning``.  Not here: regularisation paths, closed-form solving (use
``numpy.linalg.lstsq`` for that).
"""

import numbers
import warnings
from dataclasses import dataclass

import numpy as np

from ..kernels.codes import HYPER_LEARNING_RATE, IDENTITY, MSE
from .backend import get_backend
from .estimator import (
    ConvergenceWarning,
    DivergenceError,
    Estimator,
    features,
    one_feature_as_column,
    r2_score,
)
from .network import LOSS_BLOWUP
from .optimizers import Optimizer, get_optimizer
from .validation import check_count, check_positive_real

METHODS = ("batch", "sgd", "minibatch")
# Optimisers whose step is η times the gradient, so that η = 1/L suits them; the adaptive
# ones (Adagrad, RMSProp, Adam) scale their steps themselves and keep their own default η.
GRADIENT_SCALED = ("sgd", "momentum")
# learning_rate="auto" with "sgd" or "minibatch": at each of the first SLOWDOWNS plateaus of
# the training MSE the step is divided by SLOWDOWN_FACTOR before the next plateau stops.
SLOWDOWNS = 2
SLOWDOWN_FACTOR = 10.0


def mean_squared_error(y_true, y_pred):
    """(1/n)·Σ (y − ŷ)²: the house-price example's MSE([100, 120, 80], [90, 130, 95]) = 141.67."""
    y_true = np.asarray(y_true, np.float64).ravel()
    y_pred = np.asarray(y_pred, np.float64).ravel()
    if y_true.shape != y_pred.shape or y_true.size == 0:
        raise ValueError(f"y_true and y_pred must be non-empty and of equal length; got "
                         f"{y_true.size} and {y_pred.size} values")
    return float(np.mean((y_true - y_pred) ** 2))


class LinearRegression(Estimator):
    """Least-squares linear regression trained by batch, stochastic or mini-batch GD.

    A scikit-learn estimator (``get_params``, ``score``, ``clone``, ``cross_val_score``)
    that does not need scikit-learn.

    Parameters
    ----------
    method : str
        "batch" (one step per epoch), "sgd" (one step per sample) or "minibatch".
    learning_rate : float or "auto"
        η in θ ← θ − η∇J, used as given on X and y as given.  "auto": standardize X and y
        for training and step 1/L (see the module's notes); with "adagrad", "rmsprop" or
        "adam" the optimiser's own default η.
    epochs : int or None
        Exactly this many passes over the training data (``tol`` is not consulted).  None:
        train until the ``tol`` test is met, for at most ``max_iter`` passes.
    batch_size : int
        Samples per step for "minibatch" (the last batch of an epoch may be shorter).
    optimizer : str or Optimizer, optional
        Plain SGD steps by default; any of ``steepest.optimizers`` may be used instead (an
        optimizer object brings its own learning rate).
    shuffle : bool
        Reshuffle the samples each epoch ("sgd" and "minibatch"), seeded by ``seed``.
    seed : int, optional
        Seeds the shuffling.  The weights start at 0 unless ``fit`` is given a start.
    device : str
        "auto", "cpu" or "cuda": where the steps run.
    tol : float
        With ``epochs=None``: stop once ``n_iter_no_change`` epochs in a row each lowered the
        training MSE by less than tol·var(y) (the training R² by less than tol).  The default,
        1e-13, is about as small as float32 steps and a float64 MSE resolve: train until the
        MSE stops falling, which is what reaching least squares takes on ill-conditioned data.
    n_iter_no_change : int
        How many such epochs in a row stop training.
    max_iter : int
        With ``epochs=None``: the most epochs to run (scikit-learn's name for the cap).

    Attributes
    ----------
    coef_ : ndarray (n_features,)
        The weights w.
    intercept_ : float
        The bias b.
    n_features_in_ : int
        Features seen in ``fit``.
    loss_history_ : list of float
        MSE over the training set before training, then after every epoch (for "batch",
        after every step).
    n_iter_ : int
        Epochs run.
    n_steps_ : int
        Parameter updates taken.
    learning_rate_ : float
        The η of the last epoch (on standardized data when ``learning_rate="auto"``, where
        "sgd" and "minibatch" divide it by 10 at each of their first two plateaus).
    converged_ : bool
        Training stopped on ``tol`` (never with a fixed number of ``epochs``).
    """

    _estimator_type = "regressor"

    def __init__(self, method="batch", learning_rate="auto", epochs=None, batch_size=32,
                 optimizer=None, shuffle=True, seed=None, device="auto", tol=1e-13,
                 n_iter_no_change=5, max_iter=10_000):
        self.method = method
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.shuffle = shuffle
        self.seed = seed
        self.device = device
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.max_iter = max_iter

    # ------------------------------------------------------------------ training
    def fit(self, X, y, coef_init=None, intercept_init=None):
        """Train from ``coef_init``, ``intercept_init`` (0 when not given); returns ``self``.

        X : array (n, n_features), or (n,) for one feature; y : array (n,).

        Raises
        ------
        DivergenceError
            The MSE became NaN or inf (the learning rate is too large).  A FloatingPointError,
            as before; the history so far is kept in ``loss_history_`` and the weights are
            those of the last good epoch.

        Warns
        -----
        ConvergenceWarning
            With ``epochs=None``: ``max_iter`` epochs ran before the ``tol`` test was met.
        """
        self._check_params()
        X, y = self._training_data(X, y)
        n, n_features = X.shape
        auto = self._auto_step()
        scaling = Standardization.of(X, y) if auto else Standardization.none(n_features)
        X_fit, y_fit = scaling.apply(X, y)
        batch = {"batch": n, "sgd": 1, "minibatch": min(self.batch_size, n)}[self.method]
        optimizer = self._step_rule(X_fit, batch, auto)
        coef, intercept = self._start(coef_init, intercept_init, n_features)
        params = scaling.to_model(coef, intercept)  # [w, b] as the kernels lay them out
        self.n_features_in_ = n_features
        self._descend(params.astype(np.float32), X_fit, y_fit, X, y, scaling, optimizer, batch)
        return self

    def _check_params(self):
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; expected one of "
                             f"{', '.join(map(repr, METHODS))}")
        if not (isinstance(self.learning_rate, str) and self.learning_rate == "auto"):
            if isinstance(self.learning_rate, str):
                raise ValueError(f"learning_rate must be 'auto' or a positive number; got "
                                 f"{self.learning_rate!r}")
            check_positive_real(self.learning_rate, "learning_rate")
        if self.epochs is not None:
            check_count(self.epochs, "epochs", 0)
        check_count(self.batch_size, "batch_size", 1)
        check_count(self.n_iter_no_change, "n_iter_no_change", 1)
        check_count(self.max_iter, "max_iter", 1)
        if isinstance(self.tol, bool) or not isinstance(self.tol, numbers.Real) \
                or not self.tol >= 0:
            raise ValueError(f"tol must be a number ≥ 0; got {self.tol!r}")

    def _training_data(self, X, y):
        if y is None:
            raise ValueError("LinearRegression requires y to be passed, but the target y is "
                             "None")
        X = features(one_feature_as_column(X))
        return X, _targets(y, X.shape[0])

    def _auto_step(self):
        """Whether the step comes from the data: no rate given, by number or optimizer."""
        return (isinstance(self.learning_rate, str) and self.learning_rate == "auto"
                and not isinstance(self.optimizer, Optimizer))

    def _step_rule(self, X_fit, batch, auto):
        """The optimiser with its learning rate: as given, or 1/L from the (standardized) data."""
        if not auto:
            rate = None if isinstance(self.learning_rate, str) else self.learning_rate
            return get_optimizer(self.optimizer, rate)
        chosen = get_optimizer(self.optimizer)  # the name checked, default hyper-parameters
        if chosen.name in GRADIENT_SCALED:
            return chosen.with_learning_rate(1.0 / batch_curvature(X_fit, batch))
        return chosen

    @staticmethod
    def _start(coef_init, intercept_init, n_features):
        # a convex cost has one minimum: the start changes the path, not where it ends, and
        # a fixed start makes every fit repeatable
        coef = np.zeros(n_features)
        if coef_init is not None:
            coef = np.asarray(coef_init, np.float64).reshape(-1)
            if coef.shape != (n_features,):
                raise ValueError(f"coef_init must have {n_features} values; got shape "
                                 f"{coef.shape}")
        return coef, 0.0 if intercept_init is None else float(intercept_init)

    def _descend(self, params, X_fit, y_fit, X, y, scaling, optimizer, batch):
        """The epochs: one compiled call each, then the MSE, the divergence and stop tests."""
        steps = _KernelSteps(self.device, params, optimizer, X_fit, y_fit, batch)
        rng = np.random.default_rng(self.seed)
        shuffled = self.shuffle and self.method != "batch"
        until_settled = self.epochs is None  # else exactly ``epochs`` epochs, the lessons' way
        # a smaller step lowers the floor that SGD's noise keeps the MSE on; the textbook
        # steps (an explicit rate) and batch descent's exact gradient keep their step
        slowdowns = SLOWDOWNS if self._auto_step() and self.method != "batch" else 0
        n = X.shape[0]
        self._store(params, scaling)
        self.loss_history_ = [self._mse(X, y)]
        self.n_steps_ = self.n_iter_ = 0
        stop = _StopTest(self.tol if until_settled else None, self.n_iter_no_change, np.var(y),
                         self.loss_history_[0], slowdowns)
        for epoch in range(1, (self.max_iter if until_settled else self.epochs) + 1):
            good = (self.coef_, self.intercept_)
            self._store(steps.epoch(rng.permutation(n) if shuffled else np.arange(n)), scaling)
            self.n_steps_ += -(-n // batch)
            self.n_iter_ = epoch
            self.loss_history_.append(self._mse(X, y))
            verdict = stop.update(self.loss_history_[-1])
            problem = _divergence(self.loss_history_, verdict == "stop")
            if problem:
                self.coef_, self.intercept_ = good  # as Network leaves them: the last good
                raise DivergenceError(
                    f"linear regression diverged in epoch {epoch}: {problem} at "
                    f"learning_rate={steps.learning_rate}; the weights are those of epoch "
                    f"{epoch - 1}. Try a smaller learning rate, or learning_rate='auto'.",
                    epoch, steps.learning_rate, self.loss_history_)
            if verdict == "slow down":
                steps.learning_rate /= SLOWDOWN_FACTOR
            if verdict == "stop":
                break
        self.converged_ = stop.converged
        self.learning_rate_ = steps.learning_rate
        if until_settled and not stop.converged:
            self._warn_at_the_cap()

    def _warn_at_the_cap(self):
        warnings.warn(f"LinearRegression stopped at its cap of max_iter={self.max_iter} epochs "
                      f"while the training MSE still fell by more than tol={self.tol} times "
                      "var(y) an epoch: raise max_iter (or the learning rate).",
                      ConvergenceWarning, stacklevel=4)

    def _store(self, params, scaling):
        coef, intercept = scaling.to_data(params[:-1].astype(np.float64), float(params[-1]))
        self.coef_, self.intercept_ = coef, intercept

    # ------------------------------------------------------------------ using it
    def predict(self, X):
        """ŷ = X·w + b: float64 (n,)."""
        self._check_fitted()
        if self.n_features_in_ == 1:
            X = one_feature_as_column(X)
        X = self._check_n_features(features(X))
        return self._linear(X)

    def _linear(self, X):
        with np.errstate(over="ignore", invalid="ignore"):  # a diverged fit gives inf
            return X @ self.coef_ + self.intercept_

    def _mse(self, X, y):
        with np.errstate(over="ignore", invalid="ignore"):
            return float(np.mean((y - self._linear(X)) ** 2))

    def mse(self, X, y):
        """(1/n)·Σ (y − ŷ)² on (X, y)."""
        with np.errstate(over="ignore", invalid="ignore"):
            return mean_squared_error(y, self.predict(X))

    def score(self, X, y):
        """R² = 1 − Σ(y − ŷ)² / Σ(y − ȳ)² on (X, y): 1 is perfect, 0 is predicting the mean."""
        predicted = self.predict(X)
        return r2_score(_targets(y, predicted.shape[0]), predicted)


def _targets(y, n):
    """y as float64 (n,): one finite target per sample ((n, 1) is accepted too)."""
    y = np.asarray(y)
    if y.dtype.kind == "c":
        raise ValueError("Complex data not supported in y")
    y = y.astype(np.float64)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.shape != (n,) or not np.isfinite(y).all():
        raise ValueError(f"y must hold one finite target per sample of X: shape ({n},); "
                         f"got shape {y.shape}" + ("" if y.shape != (n,) else " with NaN or inf"))
    return y


@dataclass
class Standardization:
    """Training on (X − mean)/std and (y − ȳ)/s, with the coefficients mapped back.

    The model ŷ' = X'·w' + b' on the standardized data is the model ŷ = X·w + b on the data
    with w = w'·s/std and b = ȳ + s·b' − w·mean.  ``none`` is the identity (the raw lessons).
    """

    x_mean: np.ndarray
    x_scale: np.ndarray
    y_mean: float
    y_scale: float

    @classmethod
    def of(cls, X, y):
        x_scale = X.std(axis=0)
        x_scale[x_scale == 0] = 1.0  # a constant feature: centred to 0, nothing to scale
        return cls(X.mean(axis=0), x_scale, float(y.mean()), float(y.std()) or 1.0)

    @classmethod
    def none(cls, n_features):
        return cls(np.zeros(n_features), np.ones(n_features), 0.0, 1.0)

    def apply(self, X, y):
        return (X - self.x_mean) / self.x_scale, (y - self.y_mean) / self.y_scale

    def to_data(self, w, b):
        coef = w * self.y_scale / self.x_scale
        return coef, float(self.y_mean + self.y_scale * b - coef @ self.x_mean)

    def to_model(self, coef, intercept):
        w = coef * self.x_scale / self.y_scale
        return np.append(w, (intercept - self.y_mean + coef @ self.x_mean) / self.y_scale)


def batch_curvature(X, batch):
    """L_B: the curvature to step 1/L_B on, for batches of ``batch`` rows of centred X.

    The cost's Hessian is the Gram matrix (1/n)·[X, 1]ᵀ[X, 1]; with centred features the
    intercept's column of ones is orthogonal to them, so its largest eigenvalue is
    L = max(1, λ_max((1/n)·XᵀX)).  One sample's cost has curvature L₁ = max ‖[xᵢ, 1]‖²; a
    batch of B drawn without replacement has the "expected smoothness" between the two
    (Gower et al., "SGD: general analysis and improved rates", 2019):
    L_B = (n(B − 1)·L + (n − B)·L₁) / (B(n − 1)), L for B = n, L₁ for B = 1.
    """
    n = X.shape[0]
    L = max(1.0, float(np.linalg.eigvalsh(X.T @ X / n)[-1]))
    if batch >= n:
        return L
    L_one = 1.0 + float(np.max(np.sum(X * X, axis=1)))
    return (n * (batch - 1) * L + (n - batch) * L_one) / (batch * (n - 1))


def _divergence(history, stopped):
    """What went wrong, or "": the MSE became NaN/inf or grew beyond all reason (as in
    ``Network``), or training settled (``stopped``) higher than it started."""
    start, now = history[0], history[-1]
    if not np.isfinite(now):
        return f"the MSE became {now}"
    if now > LOSS_BLOWUP * max(start, 1e-300):
        return f"the MSE grew from {start:.6g} to {now:.6g}"
    if stopped and now > start:
        return f"the MSE rose from {start:.6g} to {now:.6g} and stopped falling"
    return ""


class _KernelSteps:
    """The training arrays on the device and one epoch of steps through the compiled loop."""

    def __init__(self, device, params, optimizer, X_fit, y_fit, batch):
        self.backend = get_backend(device)
        to_dev = self.backend.to_device
        self.params, self.optimizer, self.batch = params, optimizer, batch
        self.hyper = optimizer.hyper()
        self._rate = optimizer.learning_rate  # float64; the kernels read a float32 copy
        self.params_dev, self.hyper_dev = to_dev(params), to_dev(self.hyper)
        self.state = to_dev(optimizer.new_state(params.size))
        self.step = to_dev(np.zeros(1, np.int64))
        self.X = to_dev(_float32(X_fit, "X"))
        self.Y = to_dev(_float32(y_fit, "y").reshape(-1, 1))
        self.sizes = np.array([X_fit.shape[1], 1], np.int64)  # one dense layer: W (1, d), b
        self.activations = np.array([IDENTITY], np.int64)

    @property
    def learning_rate(self):
        return self._rate

    @learning_rate.setter
    def learning_rate(self, rate):
        self._rate = rate
        self.hyper[HYPER_LEARNING_RATE] = rate
        self.hyper_dev = self.backend.to_device(self.hyper)

    def epoch(self, order):
        """One pass in ``order``; returns the parameters [w, b] (float32, on the host)."""
        self.backend.kernels.optimizer_epoch_minibatch(
            self.params_dev, self.state, self.step, self.sizes, self.activations, MSE,
            self.optimizer.code, self.hyper_dev, self.X, self.Y,
            self.backend.to_device(order), self.batch)
        self.backend.to_host(self.params, self.params_dev)
        return self.params


def _float32(array, name):
    """``array`` as the float32 the kernels compute in, refusing what float32 cannot hold."""
    with np.errstate(over="ignore"):
        converted = np.ascontiguousarray(array, np.float32)
    if not np.isfinite(converted).all():
        raise ValueError(f"{name} holds values too large for float32, which the kernels use")
    return converted


class _StopTest:
    """scikit-learn's rule: a plateau is ``patience`` epochs in a row that each failed to bring
    the loss below the best so far minus tol·scale.  The first ``slowdowns`` plateaus ask for
    a smaller step ("slow down"); the next one stops training ("stop")."""

    def __init__(self, tol, patience, scale, start, slowdowns=0):
        self.margin = None if tol is None else tol * (scale if scale > 0 else 1.0)
        self.patience, self.slowdowns = patience, slowdowns
        self.best, self.stale = start, 0
        self.converged = False

    def update(self, loss):
        if self.margin is None:
            return "go on"
        self.stale = self.stale + 1 if loss > self.best - self.margin else 0
        self.best = min(self.best, loss)
        if self.stale < self.patience:
            return "go on"
        if self.slowdowns:
            self.slowdowns -= 1
            self.stale = 0
            return "slow down"
        self.converged = True
        return "stop"
