"""LinearRegression and Perceptron as scikit-learn estimators (issue 12).

scikit-learn stays optional: steepest itself never imports it, and these tests skip without it.
"""

import subprocess
import sys
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.base import clone, is_classifier, is_regressor  # noqa: E402
from sklearn.datasets import load_diabetes, make_classification  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import steepest  # noqa: E402

# Checks that fail by design, each with why.  parametrize_with_checks marks them xfail.
_NOT_FITTED = ("before fit, predict raises steepest's own not-fitted error (a RuntimeError, "
               "ValueError and AttributeError), not sklearn.exceptions.NotFittedError: "
               "steepest's core does not import scikit-learn")
_COLUMN_Y = ("a column-vector y (n, 1) is accepted without scikit-learn's "
             "DataConversionWarning, a class steepest's core cannot import")
EXPECTED_FAILED_CHECKS = {
    "LinearRegression": {
        "check_estimators_unfitted": _NOT_FITTED,
        "check_supervised_y_2d": _COLUMN_Y,
        "check_fit1d": "a 1-D X is one feature per sample by design (the lessons' x values)",
    },
    "Perceptron": {
        "check_estimators_unfitted": _NOT_FITTED,
        "check_supervised_y_2d": _COLUMN_Y,
    },
}


def _expected_failures(estimator):
    return EXPECTED_FAILED_CHECKS[type(estimator).__name__]


with warnings.catch_warnings():
    # by design: scikit-learn stays optional, so neither inherits from its BaseEstimator
    warnings.filterwarnings("ignore", "Estimator .* does not inherit from", UserWarning)
    _checks = parametrize_with_checks([steepest.LinearRegression(), steepest.Perceptron()],
                                      expected_failed_checks=_expected_failures,
                                      xfail_strict=True)


@_checks
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        # the checks fit unseparable or tiny data on purpose; the cap's warning is expected
        warnings.simplefilter("ignore", steepest.ConvergenceWarning)
        check(estimator)


def test_import_steepest_does_not_import_sklearn():
    code = ("import sys, steepest; steepest.LinearRegression(); steepest.Perceptron(); "
            "steepest.ConvergenceWarning; print('sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False"]


def test_estimator_types():
    assert is_regressor(steepest.LinearRegression())
    assert is_classifier(steepest.Perceptron())


def test_cross_val_score_on_the_regressor():
    X, y = load_diabetes(return_X_y=True)
    scores = cross_val_score(steepest.LinearRegression(), X, y, cv=5)
    assert scores.shape == (5,) and 0.4 < scores.mean() < 0.55  # sklearn's own: 0.482


def test_cross_val_score_on_the_perceptron():
    X, y = make_classification(n_samples=200, n_features=4, n_redundant=0, class_sep=2.0,
                               random_state=0)
    labels = np.where(y == 1, "spam", "ham")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", steepest.ConvergenceWarning)
        scores = cross_val_score(steepest.Perceptron(epochs=50), X, labels, cv=4)
    assert scores.shape == (4,) and scores.mean() > 0.85


@pytest.mark.parametrize("estimator", [
    steepest.LinearRegression(method="minibatch", learning_rate=0.01, batch_size=8, seed=3),
    steepest.Perceptron(learning_rate=0.5, shuffle=True, seed=2)])
def test_clone_copies_the_parameters_and_no_fitted_state(estimator):
    X, y = make_classification(n_samples=40, n_features=3, n_redundant=0, random_state=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", steepest.ConvergenceWarning)
        estimator.fit(X, y)
    copy = clone(estimator)
    assert type(copy) is type(estimator) and copy.get_params() == estimator.get_params()
    assert not hasattr(copy, "coef_") and hasattr(estimator, "coef_")


def test_grid_search_over_learning_rates_in_a_pipeline():
    X, y = load_diabetes(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), steepest.LinearRegression(method="minibatch",
                                                                     seed=0))
    search = GridSearchCV(pipe, {"linearregression__learning_rate": [0.001, 0.01, "auto"]},
                          cv=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", steepest.ConvergenceWarning)
        search.fit(X, y)
    assert search.best_score_ > 0.4


def test_repr_shows_the_changed_parameters():
    assert repr(steepest.LinearRegression()) == "LinearRegression()"
    assert repr(steepest.Perceptron(learning_rate=0.5)) == "Perceptron(learning_rate=0.5)"
