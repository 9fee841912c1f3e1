"""What the lesson estimators share: the scikit-learn estimator conventions, without sklearn.

``LinearRegression`` and ``Perceptron`` follow scikit-learn's rules, so ``clone``,
``cross_val_score``, ``GridSearchCV`` and ``Pipeline`` take them: the constructor only stores
its arguments (they are checked in ``fit``), ``get_params``/``set_params`` read them back,
``fit`` returns self, fitted attributes end in ``_`` and ``n_features_in_`` guards
``predict``.  scikit-learn stays optional: nothing here imports it, except
``__sklearn_tags__``, which only scikit-learn calls.

Also here: the warning for an epoch cap reached before the stopping test was met
(``ConvergenceWarning``), the one divergence error of every model (``DivergenceError``, defined
with ``Network``), and the input checks with the messages scikit-learn's checks look for.
"""

import inspect

import numpy as np

from .network import DivergenceError
from .validation import _is_sparse

__all__ = ["ConvergenceWarning", "DivergenceError", "Estimator", "NotFittedError",
           "features", "one_feature_as_column", "r2_score"]


class ConvergenceWarning(UserWarning):
    """Training reached its epoch cap before its stopping test was met.

    steepest's own class, so that ``import steepest`` never needs scikit-learn.  It is not
    ``sklearn.exceptions.ConvergenceWarning``: filter this one to silence steepest's.
    """


class NotFittedError(RuntimeError, ValueError, AttributeError):
    """``predict`` (or a fitted attribute) was asked for before ``fit``.

    A RuntimeError as before, and a ValueError and AttributeError as scikit-learn's
    ``NotFittedError`` is (so ``hasattr(model, "coef_")`` is False on an unfitted model).
    """


class Estimator:
    """get_params / set_params / repr read off ``__init__``'s arguments, as scikit-learn does.

    A subclass's ``__init__`` must store each argument under its own name and do nothing
    else; ``fit`` checks them.  ``_estimator_type`` is "regressor" or "classifier".
    """

    _estimator_type = None

    @classmethod
    def _param_names(cls):
        parameters = inspect.signature(cls.__init__).parameters.values()
        return [p.name for p in parameters if p.name != "self"]

    def get_params(self, deep=True):
        """The constructor's arguments as a dict (``deep`` is accepted for scikit-learn;
        no parameter here is itself an estimator)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        """Set constructor arguments by name; returns self.  Checked at the next ``fit``."""
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"invalid parameter {name!r} for {type(self).__name__}; "
                                 f"valid parameters are {valid}")
            setattr(self, name, value)
        return self

    def __repr__(self):
        defaults = {p.name: p.default
                    for p in inspect.signature(type(self).__init__).parameters.values()}
        changed = [f"{name}={value!r}" for name, value in self.get_params().items()
                   if not _same(value, defaults[name])]
        return f"{type(self).__name__}({', '.join(changed)})"

    # ------------------------------------------------------------------ fitted state
    def __sklearn_is_fitted__(self):
        return "coef_" in vars(self)

    def _check_fitted(self):
        if not self.__sklearn_is_fitted__():
            raise NotFittedError(f"{type(self).__name__} is not fitted yet: call fit(X, y) "
                                 "first")

    def _check_n_features(self, X):
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} is "
                             f"expecting {self.n_features_in_} features as input")
        return X

    def __sklearn_tags__(self):
        # scikit-learn calls this, so scikit-learn is installed: the one import of it here
        from sklearn.utils import ClassifierTags, RegressorTags, Tags, TargetTags

        tags = Tags(estimator_type=self._estimator_type, target_tags=TargetTags(required=True))
        if self._estimator_type == "regressor":
            tags.regressor_tags = RegressorTags()
        if self._estimator_type == "classifier":
            tags.classifier_tags = ClassifierTags(multi_class=False)  # binary only
        return tags


def _same(value, default):
    """Whether a parameter still has its default (for repr; arrays never do)."""
    try:
        return value is default or bool(value == default) and type(value) is type(default)
    except (TypeError, ValueError):
        return False


def one_feature_as_column(X):
    """A 1-D X (a plain vector of x values) as one feature per sample, shape (n, 1); any
    other X unchanged.  The lessons' convenience: scikit-learn would refuse a 1-D X."""
    if _is_sparse(X):
        return X
    array = np.asarray(X)
    return array.reshape(-1, 1) if array.ndim == 1 else array


def features(X, name="X"):
    """X as a float64 2-D array (n ≥ 1, n_features ≥ 1) of finite numbers.

    Object arrays of numbers are converted like NumPy converts them; the messages name the
    problem in the words scikit-learn's estimator checks look for.
    """
    if _is_sparse(X):
        raise TypeError(f"{name} is a scipy.sparse matrix; sparse input is not supported: "
                        f"pass {name}.toarray()")
    array = np.asarray(X)
    if array.dtype.kind == "c":
        raise ValueError(f"Complex data not supported: {name} has dtype {array.dtype}")
    if array.dtype.kind not in "biufO":
        raise TypeError(f"{name} must hold numbers; got dtype {array.dtype}")
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features); got shape {array.shape}. "
                         f"Reshape your data with {name}.reshape(-1, 1) for one feature or "
                         f"{name}.reshape(1, -1) for one sample")
    if array.shape[0] == 0:
        raise ValueError(f"{name} has 0 samples (shape={array.shape}) while a minimum of 1 "
                         "is required")
    if array.shape[1] == 0:
        raise ValueError(f"{name} has 0 feature(s) (shape={array.shape}) while a minimum of 1 "
                         "is required.")
    array = array.astype(np.float64)  # an object holding a non-number raises TypeError here
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or inf")
    return array


def r2_score(y, predicted):
    """R² = 1 − Σ(y − ŷ)² / Σ(y − ȳ)²: 1 for a perfect fit, 0 for predicting the mean.

    Constant y: 1 when predicted exactly, else 0 (scikit-learn's convention).
    """
    y = np.asarray(y, np.float64).ravel()
    residual = np.sum((y - predicted) ** 2)
    spread = np.sum((y - y.mean()) ** 2)
    if spread == 0:
        return 1.0 if residual == 0 else 0.0
    return float(1.0 - residual / spread)
