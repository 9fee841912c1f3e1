"""scikit-learn estimators over ``steepest.Network``: ``MLPClassifier`` and ``MLPRegressor``.

    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    import steepest
    model = make_pipeline(StandardScaler(), steepest.MLPClassifier(hidden_layer_sizes=(30,)))
    model.fit(X, y).score(X_test, y_test)

They follow the estimator conventions (constructor arguments only stored, ``get_params`` /
``set_params``, ``fit`` returning self, fitted attributes ending in ``_``) so they work in
``Pipeline``, ``cross_val_score`` and ``GridSearchCV``.  This module needs scikit-learn 1.6
or later (the optional extra ``steepest[sklearn]``; 1.6 brought the tags API and
``validate_data``); nothing else in steepest imports it, and ``steepest.MLPClassifier``
loads it only on first use.  The default batch size is 32 (``"auto"`` gives scikit-learn's
min(200, n)) and the default learning rate 0.01, suited to plain SGD.

What differs from ``sklearn.neural_network``: ``solver`` is any steepest optimiser ("sgd" by
default, "momentum", "adagrad", "rmsprop", "adam") at a fixed learning rate, ``alpha`` its L2
weight decay (0 by default, and applied to biases too); ``coefs_`` and ``intercepts_``
are float32 views of the live parameters; the classifier's default loss is cross-entropy on
a softmax output for any number of classes (two classes get two softmax units).

Not here: the training loop itself (``Network.fit``) or the kernels.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets, unique_labels
from sklearn.utils.validation import check_is_fitted, validate_data  # both 1.6+

from .models.network import Network
from .models.optimizers import get_optimizer

__all__ = ["MLPClassifier", "MLPRegressor"]

# scikit-learn's names for activations, accepted beside steepest's own.
_ACTIVATION_ALIASES = {"logistic": "sigmoid"}


def _hidden_sizes(value):
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value,)
    try:
        ok = not isinstance(value, (str, bytes)) and all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1
            for v in value)
    except TypeError:  # not iterable
        ok = False
    if not ok:
        raise ValueError(f"hidden_layer_sizes must be a positive integer or a sequence of "
                         f"them, such as (100,) or (64, 32); got {value!r}")
    return [int(v) for v in value]


class _BaseMLP(BaseEstimator):
    """What both estimators share: the network and the epoch loop."""

    _losses = ()

    def __init__(self, hidden_layer_sizes: int | Sequence[int] = (100,),
                 activation: str = "relu", *, loss: str | None = None, solver: str = "sgd",
                 alpha: float = 0.0, learning_rate_init: float = 0.01,
                 batch_size: int | str = 32, max_iter: int = 200, shuffle: bool = True,
                 random_state: int | np.random.RandomState | None = None, tol: float = 1e-4,
                 n_iter_no_change: int = 10, warm_start: bool = False, init: str | None = None,
                 device: str = "auto", verbose: int = 0) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.loss = loss
        self.solver = solver
        self.alpha = alpha
        self.learning_rate_init = learning_rate_init
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.warm_start = warm_start
        self.init = init
        self.device = device
        self.verbose = verbose

    # ------------------------------------------------------------------ fitted views
    @property
    def coefs_(self):
        """Per-layer weights in scikit-learn's orientation (n_in, n_out): float32 views.

        ``coefs_[i]`` is the transpose of ``network_.weights[i]`` (steepest stores W as
        (out, in)); writing into it changes the network.
        """
        check_is_fitted(self)
        return [W.T for W in self.network_.weights]

    @property
    def intercepts_(self):
        """Per-layer biases (n_out,): float32 views of the live parameters."""
        check_is_fitted(self)
        return list(self.network_.biases)

    @property
    def n_layers_(self):
        check_is_fitted(self)
        return len(self.network_.sizes)

    @property
    def out_activation_(self):
        check_is_fitted(self)
        return self.network_.output

    def __sklearn_is_fitted__(self):
        return hasattr(self, "network_")

    # ------------------------------------------------------------------ training
    def _check_params(self):
        hidden = _hidden_sizes(self.hidden_layer_sizes)
        if self.loss is not None and self.loss not in self._losses:
            raise ValueError(f"loss must be one of {', '.join(map(repr, self._losses))} for "
                             f"{type(self).__name__}; got {self.loss!r}")
        if self.batch_size != "auto" and (isinstance(self.batch_size, bool) or not isinstance(
                self.batch_size, numbers.Integral) or self.batch_size < 1):
            raise ValueError(f"batch_size must be 'auto' or a positive integer; got "
                             f"{self.batch_size!r}")
        for name in ("max_iter", "n_iter_no_change"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}")
        if not isinstance(self.tol, numbers.Real) or not self.tol >= 0:
            raise ValueError(f"tol must be a number >= 0; got {self.tol!r}")
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, numbers.Real) \
                or not self.alpha >= 0:
            raise ValueError(f"alpha must be a number >= 0; got {self.alpha!r}")
        get_optimizer(self.solver, self.learning_rate_init)  # a bad name or rate fails here
        return hidden

    def _new_network(self, n_in, n_out, hidden):
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        activation = _ACTIVATION_ALIASES.get(self.activation, self.activation)
        return Network([n_in, *hidden, n_out], activation=activation, output=self._output(),
                       loss=self.loss or self._losses[0], seed=seed, device=self.device,
                       init=self.init)

    def _train(self, X, targets, epochs, stop_early):
        """Run up to ``epochs`` epochs, one ``Network.fit`` call each, recording the loss."""
        n = X.shape[0]
        batch_size = min(200, n) if self.batch_size == "auto" else self.batch_size
        best, stale = np.inf, 0
        # the optimiser's state (momentum, Adam's moments) stays with the network between
        # these one-epoch calls and across partial_fit
        optimizer = get_optimizer(self.solver, self.learning_rate_init)
        optimizer.weight_decay = float(self.alpha)
        for _ in range(epochs):
            history = self.network_.fit(X, targets, epochs=1, batch_size=batch_size,
                                        optimizer=optimizer, shuffle=self.shuffle, verbose=0)
            loss = float(history["loss"][-1])
            self.loss_curve_.append(loss)
            self.n_iter_ += 1
            self.t_ += n
            if self.verbose:
                print(f"Iteration {self.n_iter_}, loss = {loss:.8f}")
            if not stop_early:
                continue
            # scikit-learn's rule: stop once the loss has not improved by tol for
            # n_iter_no_change epochs in a row
            stale = stale + 1 if loss > best - self.tol else 0
            best = min(best, loss)
            if stale >= self.n_iter_no_change:
                if self.verbose:
                    print(f"Training loss did not improve more than tol={self.tol} for "
                          f"{self.n_iter_no_change} consecutive epochs. Stopping.")
                return
        if stop_early:
            warnings.warn(f"{type(self).__name__}: max_iter={self.max_iter} epochs reached "
                          f"before the loss settled (tol={self.tol}); raise max_iter or "
                          f"learning_rate_init.", ConvergenceWarning, stacklevel=3)

    def _fit(self, X, y, incremental, classes=None):
        hidden = self._check_params()
        first = not (hasattr(self, "network_") and (incremental or self.warm_start))
        X, y = validate_data(self, X, y, reset=first, dtype=np.float32,
                             **self._y_checks())
        targets, n_out = self._encode_targets(y, first, classes)
        if first:
            self.network_ = self._new_network(X.shape[1], n_out, hidden)
            self.loss_curve_ = []
            self.n_iter_ = 0
            self.t_ = 0
        elif self.network_.sizes[-1] != n_out:
            raise ValueError(f"y has {n_out} outputs but the fitted network has "
                             f"{self.network_.sizes[-1]}; refit with warm_start=False")
        try:
            self._train(X, targets, 1 if incremental else self.max_iter,
                        stop_early=not incremental)
        except BaseException:
            if first:  # nothing was fitted: the estimator must not look fitted
                self._forget_fit()
            raise
        return self

    def _forget_fit(self):
        for name in ("network_", "loss_curve_", "n_iter_", "t_", "classes_", "n_outputs_",
                     "_y_ndim", "n_features_in_", "feature_names_in_"):
            self.__dict__.pop(name, None)

    def fit(self, X: ArrayLike, y: ArrayLike) -> _BaseMLP:
        """Train on (X, y) for up to ``max_iter`` epochs; returns self.

        With ``warm_start=True`` a second call continues from the fitted weights.
        """
        return self._fit(X, y, incremental=False)

    def _forward(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float32)
        return self.network_.forward(X)


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """A multi-layer perceptron classifier trained by mini-batch SGD on a ``Network``.

    Parameters
    ----------
    hidden_layer_sizes : int or sequence of int
        Widths of the hidden layers: ``(100,)``; ``()`` gives a softmax regression.
    activation : str
        Hidden activation: "relu", "sigmoid" (or "logistic"), "tanh" or "identity".
    loss : {"cross_entropy", "mse"}, optional
        "cross_entropy" (default) on a softmax output, or "mse" on a sigmoid output (whose
        ``predict_proba`` rows are the outputs rescaled to sum to 1).
    solver : str
        The optimiser: "sgd", "momentum", "adagrad", "rmsprop" or "adam".
    alpha : float
        L2 weight decay λ (λθ added to every gradient, biases included).
    learning_rate_init : float
        The step size η, constant through training.
    batch_size : int or "auto"
        Samples per update; "auto" is min(200, n_samples).
    max_iter : int
        Most epochs per ``fit``.
    shuffle : bool
        Reshuffle the samples every epoch.
    random_state : int, RandomState or None
        Seeds the initial weights and the shuffling.
    tol, n_iter_no_change : float, int
        ``fit`` stops when the training loss has not improved by ``tol`` for
        ``n_iter_no_change`` epochs in a row; reaching ``max_iter`` first warns with a
        ``ConvergenceWarning``.
    warm_start : bool
        ``fit`` continues from the previous solution instead of starting afresh.
    init : str, optional
        Weight initialiser ("he", "xavier", "scaled_normal", "normal"); by default "he" for
        ReLU and "scaled_normal" otherwise.
    device : str
        "auto", "cpu" or "cuda", as for ``Network``.
    verbose : int
        Print the loss after each epoch.

    Attributes
    ----------
    classes_ : ndarray (n_classes,)
        The class labels (any sortable type, strings included).
    network_ : steepest.Network
        The trained network (outputs in the order of ``classes_``).
    coefs_, intercepts_ : list of float32 arrays
        Weights (n_in, n_out) and biases, views of ``network_``'s parameters.
    loss_curve_ : list of float
        Mean training loss of each epoch.
    n_iter_ : int
        Epochs trained so far.
    t_ : int
        Training samples seen so far.
    n_features_in_ : int
        Features seen during ``fit``.
    """

    _losses = ("cross_entropy", "mse")

    def _output(self):
        return "softmax" if (self.loss or "cross_entropy") == "cross_entropy" else "sigmoid"

    def _y_checks(self):
        return {}

    def _encode_targets(self, y, first, classes):
        check_classification_targets(y)
        if first:
            if classes is not None:
                found = unique_labels(np.asarray(classes))
            else:
                found = unique_labels(y)
            if len(found) < 2:
                raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes; "
                                 f"got 1 class ({found[0]!r})" if len(found) else
                                 f"{type(self).__name__} needs at least 2 classes")
            self.classes_ = found
        elif classes is not None and not np.array_equal(unique_labels(np.asarray(classes)),
                                                        self.classes_):
            raise ValueError(f"classes={list(classes)!r} differs from the classes of the first "
                             f"partial_fit call, {list(self.classes_)!r}")
        unknown = np.setdiff1d(np.unique(y), self.classes_)
        if unknown.size:
            raise ValueError(f"y contains labels {list(unknown)!r} that are not in classes_ "
                             f"{list(self.classes_)!r}")
        return np.searchsorted(self.classes_, y).astype(np.int64), len(self.classes_)

    def partial_fit(self, X: ArrayLike, y: ArrayLike,
                    classes: ArrayLike | None = None) -> MLPClassifier:
        """One epoch of SGD on (X, y); returns self.

        ``classes`` (every label that will ever appear) is required on the first call.
        """
        if not hasattr(self, "network_") and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit")
        return self._fit(X, y, incremental=True, classes=classes)

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Class probabilities, float64 (n_samples, n_classes) in the order of ``classes_``."""
        out = self._forward(X).astype(np.float64)
        total = out.sum(axis=1, keepdims=True)
        # A sigmoid (mse) output is not a distribution; all-zero rows become uniform.
        out = np.where(total > 0, out / np.where(total > 0, total, 1.0), 1.0 / out.shape[1])
        return out

    def predict_log_proba(self, X: ArrayLike) -> np.ndarray:
        """Logarithm of ``predict_proba``."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predicted class labels (n_samples,), values from ``classes_``."""
        out = self._forward(X)  # first: it raises NotFittedError before classes_ is read
        return self.classes_[np.argmax(out, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = False
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """A multi-layer perceptron regressor (identity output) trained by mini-batch SGD.

    Parameters are those of ``MLPClassifier``, except ``loss``: "mse" (default; ½‖a − y‖²
    per sample) or "mae" (Σ|a − y|, robust to outliers).  Targets may be (n,) or
    (n, n_outputs); scale them (and X) to unit size first, as for any SGD regressor, or the
    default learning rate may diverge (``steepest.DivergenceError``).

    Attributes
    ----------
    network_, coefs_, intercepts_, loss_curve_, n_iter_, t_, n_features_in_
        As for ``MLPClassifier``.
    n_outputs_ : int
        Number of targets.
    """

    _losses = ("mse", "mae")

    def _output(self):
        return "identity"

    def _y_checks(self):
        return {"y_numeric": True, "multi_output": True}

    def _encode_targets(self, y, first, classes):
        targets = np.asarray(y, dtype=np.float32)
        if targets.ndim == 1:
            targets = targets.reshape(-1, 1)
        if first:
            self._y_ndim = np.ndim(y)
            self.n_outputs_ = targets.shape[1]
        return np.ascontiguousarray(targets), targets.shape[1]

    def partial_fit(self, X: ArrayLike, y: ArrayLike) -> MLPRegressor:
        """One epoch of SGD on (X, y); returns self."""
        return self._fit(X, y, incremental=True)

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predictions, float64: (n_samples,) for 1-D targets, else (n_samples, n_outputs)."""
        out = self._forward(X).astype(np.float64)
        return out[:, 0] if self._y_ndim == 1 else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags
