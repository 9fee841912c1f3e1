"""scikit-learn estimators over ``steepest.Network``: ``MLPClassifier`` and ``MLPRegressor``.

    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    import steepest
    model = make_pipeline(StandardScaler(), steepest.MLPClassifier(hidden_layer_sizes=(30,)))
    model.fit(X, y).score(X_test, y_test)

They take scikit-learn's parameter names with scikit-learn's meanings (its 1.9 release), so
a model tuned with ``sklearn.neural_network`` in mind behaves the same here: started from the
same weights and fed the same batches, one epoch ends with the same parameters and the same
``loss_curve_`` to float32 rounding (``tests/test_sklearn_equivalence.py``).  They follow the
estimator conventions, so they work in ``Pipeline``, ``cross_val_score`` and ``GridSearchCV``.
This module needs scikit-learn 1.6 or later (the optional extra ``steepest[sklearn]``);
nothing else in steepest imports it, and ``steepest.MLPClassifier`` loads it only on first use.

Every parameter and attribute of ``sklearn.neural_network.MLPClassifier`` / ``MLPRegressor``:

=========================  ==================================================================
scikit-learn               here
=========================  ==================================================================
hidden_layer_sizes         the same
activation                 the same ("logistic" is steepest's "sigmoid")
solver                     "adam" (default) and "sgd" as scikit-learn; also steepest's
                           "momentum", "adagrad", "rmsprop"; "lbfgs" is refused (ValueError:
                           steepest trains by gradient descent only)
alpha                      the same: ½α‖W‖²/batch on the weights only, in loss_curve_ too
batch_size                 the same ("auto" = min(200, n); larger than n warns, is clipped)
learning_rate              the same ("constant", "invscaling", "adaptive"; solver "sgd" only)
learning_rate_init         the same (0.001)
power_t                    the same
max_iter, tol              the same
n_iter_no_change           the same (stop once more than this many epochs did not improve)
shuffle, random_state      the same meaning; the random numbers themselves differ
verbose, warm_start        the same
momentum                   the same (solver "sgd"); 0 is plain SGD
nesterovs_momentum         the same
early_stopping             the same (stratified split, validation score, best weights kept)
validation_fraction        the same
beta_1, beta_2, epsilon    the same (Adam adds ε to √v̂, Kingma and Ba's form; scikit-learn
                           to √v, a difference of order ε)
max_fun                    accepted; as in scikit-learn it only matters for "lbfgs"
loss (regressor)           "squared_error" (default, ½ mean over samples of the squared error)
                           and steepest's "mae"; "poisson" is refused
fit(sample_weight=)        refused unless None (ValueError): not supported yet
coefs_, intercepts_        the same shapes; float32 views of the network's parameters
classes_, n_outputs_       the same (one output unit for two classes; multi-label y works)
loss_, loss_curve_         the same (the penalised training loss of each epoch)
best_loss_                 the same (None with early_stopping)
validation_scores_,        the same (None without early_stopping)
best_validation_score_
n_iter_, t_                the same: epochs of the last fit call; samples seen in all
n_layers_, out_activation_ the same ("logistic", "softmax" or "identity")
n_features_in_,            the same
feature_names_in_
=========================  ==================================================================

What steepest adds: ``loss="mse"`` for the classifier (sigmoid outputs), ``init`` (the
weight initialiser: scikit-learn's uniform Glorot, "glorot_uniform", by default), ``device``
("auto", "cpu", "cuda") and ``network_``, the trained ``steepest.Network``.  Where training
diverges, ``fit`` raises ``steepest.DivergenceError`` with the last good weights kept, where
scikit-learn raises ValueError after the fact.  Known gap: a multi-output regressor trained
with ``alpha > 0`` reports in ``loss_curve_`` the squared error summed over its outputs (the
loss whose gradient both libraries follow) where scikit-learn reports its mean over them.

Not here: the training loop itself (``Network.fit``) or the kernels.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets, unique_labels
from sklearn.utils.validation import (  # validate_data: 1.6+
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from .models.network import Network
from .models.optimizers import OPTIMIZERS, SGD, Adam, Momentum
from .models.validation import training_features

__all__ = ["MLPClassifier", "MLPRegressor"]

# scikit-learn's names for activations, both ways
_ACTIVATION_ALIASES = {"logistic": "sigmoid"}
_SKLEARN_OUTPUT_NAMES = {"sigmoid": "logistic"}
_LEARNING_RATES = ("constant", "invscaling", "adaptive")
_SMALLEST_ADAPTIVE_RATE = 1e-6  # "adaptive" stops instead of dividing a rate this small


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


def _check_real(value, name, low, high=np.inf, low_open=False, high_open=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (
            (value > low if low_open else value >= low)
            and (value < high if high_open else value <= high)):
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be a number in {interval}; got {value!r}")


def _check_integer(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")


class _BaseMLP(BaseEstimator):
    """What both estimators share: the parameters, the network and the epoch loop."""

    _losses = ()

    def __init__(self, hidden_layer_sizes: int | Sequence[int] = (100,),
                 activation: str = "relu", *, loss: str | None = None, solver: str = "adam",
                 alpha: float = 0.0001, batch_size: int | str = "auto",
                 learning_rate: str = "constant", learning_rate_init: float = 0.001,
                 power_t: float = 0.5, max_iter: int = 200, shuffle: bool = True,
                 random_state: int | np.random.RandomState | None = None, tol: float = 1e-4,
                 verbose: bool = False, warm_start: bool = False, momentum: float = 0.9,
                 nesterovs_momentum: bool = True, early_stopping: bool = False,
                 validation_fraction: float = 0.1, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-8, n_iter_no_change: int = 10, max_fun: int = 15000,
                 init: str | None = None, device: str = "auto") -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.loss = loss
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.init = init
        self.device = device

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
        """The output activation by scikit-learn's name: "logistic", "softmax", "identity"."""
        check_is_fitted(self)
        return _SKLEARN_OUTPUT_NAMES.get(self.network_.output, self.network_.output)

    def __sklearn_is_fitted__(self):
        return hasattr(self, "network_")

    # ------------------------------------------------------------------ checks
    def _check_params(self):
        """Every constructor argument, checked before any work: the hidden widths."""
        hidden = _hidden_sizes(self.hidden_layer_sizes)
        if self.loss is not None and self.loss not in self._losses:
            raise ValueError(f"loss must be one of {', '.join(map(repr, self._losses))} for "
                             f"{type(self).__name__}; got {self.loss!r}")
        if self.solver == "lbfgs":
            raise ValueError("solver='lbfgs' is not available: steepest trains by gradient "
                             "descent only; use solver='adam' (the default) or 'sgd'")
        if self.solver not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.solver!r}; expected one of "
                             f"{', '.join(map(repr, OPTIMIZERS))}")
        if self.learning_rate not in _LEARNING_RATES:
            raise ValueError(f"learning_rate must be one of {', '.join(_LEARNING_RATES)}; got "
                             f"{self.learning_rate!r} (the initial rate is learning_rate_init)")
        if self.batch_size != "auto":
            _check_integer(self.batch_size, "batch_size", 1)
        for name in ("max_iter", "n_iter_no_change", "max_fun"):
            _check_integer(getattr(self, name), name, 1)
        _check_real(self.alpha, "alpha", 0)
        _check_real(self.tol, "tol", 0)
        _check_real(self.learning_rate_init, "learning_rate_init", 0, low_open=True)
        _check_real(self.power_t, "power_t", 0)
        _check_real(self.momentum, "momentum", 0, 1, high_open=True)
        _check_real(self.validation_fraction, "validation_fraction", 0, 1, True, True)
        _check_real(self.beta_1, "beta_1", 0, 1, high_open=True)
        _check_real(self.beta_2, "beta_2", 0, 1, high_open=True)
        _check_real(self.epsilon, "epsilon", 0, low_open=True)
        return hidden

    def _new_optimizer(self):
        """scikit-learn's optimiser for ``solver``, at ``learning_rate_init``."""
        rate, alpha = float(self.learning_rate_init), float(self.alpha)
        if self.solver == "adam":
            return Adam(learning_rate=rate, beta1=self.beta_1, beta2=self.beta_2,
                        eps=self.epsilon, alpha=alpha)
        if self.solver == "sgd" and self.momentum > 0:
            return Momentum(learning_rate=rate, momentum=self.momentum,
                            nesterov=bool(self.nesterovs_momentum), alpha=alpha)
        if self.solver == "sgd":
            return SGD(learning_rate=rate, alpha=alpha)
        return OPTIMIZERS[self.solver](learning_rate=rate, alpha=alpha)

    # ------------------------------------------------------------------ training
    def _fit(self, X, y, incremental, classes=None, sample_weight=None):
        if sample_weight is not None:
            raise ValueError("sample_weight is not supported by steepest's MLP estimators yet; "
                             "pass sample_weight=None")
        hidden = self._check_params()
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        first = not (hasattr(self, "network_") and (incremental or self.warm_start))
        X, y = validate_data(self, X, y, reset=first, dtype=np.float32, accept_sparse="csr",
                             **self._y_checks())
        if y.ndim == 2 and y.shape[1] == 1:  # as scikit-learn: one column is 1-D, with a warning
            y = column_or_1d(y, warn=True)
        targets = self._encode_targets(y, first, incremental, classes)
        if first:
            self._initialize(X.shape[1], hidden)
        if not incremental or not hasattr(self, "_optimizer"):
            # as scikit-learn: each fit starts its optimiser afresh; partial_fit continues it
            self._optimizer = self._new_optimizer()
            self.network_.reset_optimizer()
        try:
            self._fit_stochastic(X, y, targets, incremental)
        except BaseException:
            if first:  # nothing was fitted: the estimator must not look fitted
                self._forget_fit()
            raise
        return self

    def _initialize(self, n_features, hidden):
        """A new network and scikit-learn's fitted counters."""
        self._random_state = check_random_state(self.random_state)
        seed = int(self._random_state.randint(np.iinfo(np.int32).max))
        activation = _ACTIVATION_ALIASES.get(self.activation, self.activation)
        self.network_ = Network([n_features, *hidden, self.n_outputs_], activation=activation,
                                output=self._output(), loss=self._network_loss(), seed=seed,
                                device=self.device, init=self.init or "glorot_uniform",
                                multilabel=self._multilabel())
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_curve_ = []
        self._no_improvement_count = 0
        self.best_loss_ = None if self.early_stopping else np.inf
        self.validation_scores_ = [] if self.early_stopping else None
        self.best_validation_score_ = -np.inf if self.early_stopping else None
        self._best_params = self.network_._params.copy()  # early_stopping's best so far

    def _forget_fit(self):
        for name in ("network_", "loss_curve_", "n_iter_", "t_", "classes_", "n_outputs_",
                     "_label_binarizer", "_optimizer", "n_features_in_", "feature_names_in_",
                     "loss_", "best_loss_", "validation_scores_", "best_validation_score_"):
            self.__dict__.pop(name, None)

    def _split(self, X, y, targets):
        """(X_train, targets_train, (X_val, y_val) or None): early_stopping's hold-out."""
        if not self.early_stopping:
            return X, targets, None
        stratify = y if is_classifier(self) and self.n_outputs_ == 1 else None
        X_train, X_val, t_train, _, _, y_val = train_test_split(
            X, targets, y, random_state=self._random_state, test_size=self.validation_fraction,
            stratify=stratify)
        if X_val.shape[0] < 2:
            raise ValueError("The validation set is too small. Increase 'validation_fraction' "
                             "or the size of your dataset.")
        return X_train, t_train, (X_val, y_val)

    def _batch_size(self, n):
        if self.batch_size == "auto":
            return min(200, n)
        if self.batch_size > n:
            warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going "
                          "to be clipped", UserWarning, stacklevel=4)
        return min(self.batch_size, n)

    def _fit_stochastic(self, X, y, targets, incremental):
        """scikit-learn's epoch loop, each epoch one compiled ``Network.fit`` call."""
        X_train, t_train, validation = self._split(X, y, targets)
        n = X_train.shape[0]
        # checked (and a mostly-zero X compacted, scipy.sparse converted) once, not per epoch
        compact = self.network_._backend.sparse_rows and not incremental and self.max_iter > 1
        X_train = training_features(X_train, X_train.shape[1], compact)
        batch_size = self._batch_size(n)
        self.n_iter_ = 0
        for _ in range(self.max_iter):
            history = self.network_.fit(X_train, t_train, epochs=1, batch_size=batch_size,
                                        optimizer=self._optimizer, shuffle=self.shuffle)
            self.n_iter_ += 1
            self.t_ += n
            self.loss_ = self._reported_loss(float(history["loss"][-1]))
            self.loss_curve_.append(self.loss_)
            if self.verbose:
                print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
            self._update_no_improvement_count(validation)
            if self.learning_rate == "invscaling" and self.solver == "sgd":
                self._set_rate(self.learning_rate_init / (self.t_ + 1) ** self.power_t)
            if self._no_improvement_count > self.n_iter_no_change:
                if self._trigger_stopping():
                    break
                self._no_improvement_count = 0
            if incremental:
                break
            if self.n_iter_ == self.max_iter:
                warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) "
                              f"reached and the optimization hasn't converged yet.",
                              ConvergenceWarning, stacklevel=3)
        if self.early_stopping:
            self.network_._params[...] = self._best_params

    def _set_rate(self, rate):
        self._optimizer = self._optimizer.with_learning_rate(rate)

    def _trigger_stopping(self):
        """True to stop; "adaptive" divides the rate by 5 instead while it is above 1e-6."""
        what = "Validation score" if self.early_stopping else "Training loss"
        message = (f"{what} did not improve more than tol={self.tol:f} for "
                   f"{self.n_iter_no_change} consecutive epochs.")
        rate = self._optimizer.learning_rate
        if self.learning_rate != "adaptive" or self.solver != "sgd" \
                or rate <= _SMALLEST_ADAPTIVE_RATE:
            if self.verbose:
                print(message + " Stopping.")
            return True
        self._set_rate(rate / 5.0)
        if self.verbose:
            print(message + f" Setting learning rate to {rate / 5.0:f}")
        return False

    def _update_no_improvement_count(self, validation):
        """scikit-learn's rule: an epoch counts as no improvement when the training loss did
        not fall below the best by tol (or the validation score rise above it by tol)."""
        if validation is not None:
            score = self._score_arrays(*validation)
            self.validation_scores_.append(score)
            if self.verbose:
                print(f"Validation score: {score:f}")
            stale = score < self.best_validation_score_ + self.tol
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_params = self.network_._params.copy()
        else:
            stale = self.loss_curve_[-1] > self.best_loss_ - self.tol
            self.best_loss_ = min(self.best_loss_, self.loss_curve_[-1])
        self._no_improvement_count = self._no_improvement_count + 1 if stale else 0

    def _reported_loss(self, loss):
        return loss

    def fit(self, X: ArrayLike, y: ArrayLike, sample_weight: None = None) -> _BaseMLP:
        """Train on (X, y) for up to ``max_iter`` epochs; returns self.

        With ``warm_start=True`` a second call continues from the fitted weights (with a
        fresh optimiser, as in scikit-learn).  ``sample_weight`` must be None.
        """
        return self._fit(X, y, incremental=False, sample_weight=sample_weight)

    def _checked(self, X):
        """X checked against the fit (features, names) as float32."""
        check_is_fitted(self)
        return validate_data(self, X, reset=False, dtype=np.float32, accept_sparse="csr")


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """A multi-layer perceptron classifier, scikit-learn's, trained on a ``Network``.

    Parameters and attributes are scikit-learn's (see the table in ``steepest.sklearn``),
    plus:

    loss : {"cross_entropy", "mse"}, optional
        "cross_entropy" (default): scikit-learn's log-loss, on a softmax output for several
        classes and one sigmoid unit for two (or one per label for multi-label y).  "mse":
        sigmoid outputs trained on squared error (``predict_proba`` rescales them).
    init : str, optional
        Weight initialiser: "glorot_uniform" (scikit-learn's, the default), "he", "xavier",
        "scaled_normal" or "normal".
    device : str
        "auto", "cpu" or "cuda", as for ``Network``.

    Attributes
    ----------
    network_ : steepest.Network
        The trained network (outputs in the order of ``classes_``).
    """

    _losses = ("cross_entropy", "mse")

    def _network_loss(self):
        if self.loss == "mse":
            return "mse"
        return "cross_entropy" if self._output() == "softmax" else "binary_cross_entropy"

    def _output(self):
        multiclass = self._label_binarizer.y_type_ == "multiclass"
        return "softmax" if multiclass and self.loss != "mse" else "sigmoid"

    def _multilabel(self):
        return self._label_binarizer.y_type_ == "multilabel-indicator"

    def _y_checks(self):
        return {"multi_output": True}

    def _encode_targets(self, y, first, incremental, classes):
        """The network's targets (labels, or 0/1 rows for multi-label y); on the first call,
        ``classes_`` and ``n_outputs_`` as scikit-learn's LabelBinarizer gives them."""
        check_classification_targets(y)
        if first or not hasattr(self, "classes_"):
            self._define_classes(y, classes)
        else:
            self._check_classes(y, incremental, classes)
        Y = self._label_binarizer.transform(y)
        if self._label_binarizer.y_type_ == "multilabel-indicator":
            return Y.astype(np.float32)
        # labels: one column of 0/1 for two classes, else the index of the class
        return Y[:, 0].astype(np.int64) if Y.shape[1] == 1 else Y.argmax(axis=1)

    def _define_classes(self, y, classes):
        self._label_binarizer = LabelBinarizer()
        self._label_binarizer.fit(y if classes is None else np.asarray(classes))
        self.classes_ = self._label_binarizer.classes_
        if len(self.classes_) < 2 and self._label_binarizer.y_type_ != "multilabel-indicator":
            found = f"1 class ({self.classes_[0]!r})" if len(self.classes_) else "no class"
            raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes; "
                             f"got {found}")
        unknown = np.setdiff1d(unique_labels(y), self.classes_)
        if unknown.size:
            raise ValueError(f"y contains labels {list(unknown)!r} that are not in classes "
                             f"{list(self.classes_)!r}")
        kind = self._label_binarizer.y_type_
        self.n_outputs_ = 1 if kind == "binary" else len(self.classes_)

    def _check_classes(self, y, incremental, classes):
        found = unique_labels(y)
        if classes is not None and not np.array_equal(unique_labels(np.asarray(classes)),
                                                      self.classes_):
            raise ValueError(f"classes={list(classes)!r} differs from the classes of the first "
                             f"partial_fit call, {list(self.classes_)!r}")
        if self.warm_start and not incremental and set(found) != set(self.classes_):
            raise ValueError(f"warm_start can only be used where `y` has the same classes as "
                             f"in the previous call to fit. Previously got {self.classes_}, "
                             f"`y` has {found}")
        unknown = np.setdiff1d(found, self.classes_)
        if unknown.size:
            raise ValueError(f"y contains labels {list(unknown)!r} that are not in classes_ "
                             f"{list(self.classes_)!r}")

    def partial_fit(self, X: ArrayLike, y: ArrayLike, sample_weight: None = None,
                    classes: ArrayLike | None = None) -> MLPClassifier:
        """One epoch on (X, y); returns self.

        ``classes`` (every label that will ever appear) is required on the first call.
        """
        if not hasattr(self, "network_") and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit")
        return self._fit(X, y, incremental=True, classes=classes, sample_weight=sample_weight)

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Class probabilities, float64 (n_samples, n_classes) in the order of ``classes_``:
        (n, 2) for two classes; each label's probability for multi-label y."""
        X = self._checked(X)  # first: it raises NotFittedError before network_ is read
        proba = self.network_.predict_proba(X).astype(np.float64)
        if self._label_binarizer.y_type_ == "multilabel-indicator":
            return proba
        return proba / proba.sum(axis=1, keepdims=True)  # rows that sum to 1 in float64 too

    def predict_log_proba(self, X: ArrayLike) -> np.ndarray:
        """Logarithm of ``predict_proba``."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predicted class labels (n_samples,), values from ``classes_``; for multi-label y,
        a 0/1 indicator matrix (n_samples, n_classes)."""
        return self._predict_arrays(self._checked(X))

    def _predict_arrays(self, X):
        predicted = self.network_.predict(X)
        if self._label_binarizer.y_type_ == "multilabel-indicator":
            return predicted
        return self.classes_[predicted]

    def _score_arrays(self, X, y):
        return float(accuracy_score(y, self._predict_arrays(X)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        tags.input_tags.sparse = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """A multi-layer perceptron regressor (identity output), scikit-learn's, on a ``Network``.

    Parameters and attributes are scikit-learn's (see the table in ``steepest.sklearn``);
    ``loss`` is keyword-only here:

    loss : {"squared_error", "mae"}, optional
        "squared_error" (default): ½(a − y)² averaged over samples, as scikit-learn's; "mae":
        Σ|a − y| per sample, robust to outliers.  "mse" is the same as "squared_error".
    """

    _losses = ("squared_error", "mse", "mae")

    def _network_loss(self):
        return "mae" if self.loss == "mae" else "mse"

    def _output(self):
        return "identity"

    def _multilabel(self):
        return False

    def _y_checks(self):
        return {"y_numeric": True, "multi_output": True}

    def _encode_targets(self, y, first, incremental, classes):
        targets = np.asarray(y, dtype=np.float32)
        if targets.ndim == 1:
            targets = targets.reshape(-1, 1)
        if first:
            self.n_outputs_ = targets.shape[1]
        elif targets.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {targets.shape[1]} outputs but the fitted network has "
                             f"{self.n_outputs_}; refit with warm_start=False")
        return np.ascontiguousarray(targets)

    def _reported_loss(self, loss):
        # scikit-learn reports the squared error averaged over the outputs as well (its
        # gradient is that of the sum, steepest's "mse"): exact without the α penalty
        if self._network_loss() == "mse" and self.alpha == 0:
            return loss / self.n_outputs_
        return loss

    def partial_fit(self, X: ArrayLike, y: ArrayLike, sample_weight: None = None
                    ) -> MLPRegressor:
        """One epoch on (X, y); returns self."""
        return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predictions, float64: (n_samples,) for one target, else (n_samples, n_outputs)."""
        return self._predict_arrays(self._checked(X))

    def _predict_arrays(self, X):
        out = self.network_.forward(X).astype(np.float64)
        return out[:, 0] if self.n_outputs_ == 1 else out

    def _score_arrays(self, X, y):
        return float(r2_score(y, self._predict_arrays(X)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        tags.input_tags.sparse = True
        return tags

