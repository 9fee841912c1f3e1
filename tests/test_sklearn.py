"""steepest.MLPClassifier / MLPRegressor as scikit-learn estimators."""

import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn",
                              reason="scikit-learn (the 'sklearn' extra) is not installed")

from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_digits, load_iris  # noqa: E402
from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import steepest  # noqa: E402
from steepest.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

# fit(sample_weight=...) exists, as in scikit-learn 1.7+, but refuses any weights with a
# ValueError saying so: the kernels do not weight samples yet.  Every other check passes.
_NO_SAMPLE_WEIGHTS = "sample_weight is not supported yet: fit refuses it with a ValueError"
SAMPLE_WEIGHT_CHECKS = ("check_all_zero_sample_weights_error",
                        "check_classifiers_one_label_sample_weights",
                        "check_sample_weight_equivalence_on_dense_data",
                        "check_sample_weight_equivalence_on_sparse_data",
                        "check_sample_weights_list", "check_sample_weights_not_an_array",
                        "check_sample_weights_not_overwritten", "check_sample_weights_shape")


def _expected_failures(estimator):
    return {name: _NO_SAMPLE_WEIGHTS for name in SAMPLE_WEIGHT_CHECKS}


@parametrize_with_checks([MLPClassifier(random_state=0), MLPRegressor(random_state=0),
                          MLPRegressor(activation="tanh", random_state=0)],
                         expected_failed_checks=_expected_failures)
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


def test_import_steepest_does_not_import_sklearn():
    code = ("import sys, steepest; before = 'sklearn' in sys.modules; "
            "steepest.MLPClassifier; print(before, 'sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]
    assert steepest.MLPClassifier is MLPClassifier and steepest.MLPRegressor is MLPRegressor


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _quiet_fit(estimator, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X, y)


def test_grid_search_over_learning_rates_in_a_pipeline():
    X, y = load_digits(return_X_y=True)
    X, y = X[:600], y[:600]
    pipe = Pipeline([("scale", StandardScaler()),
                     ("mlp", MLPClassifier(hidden_layer_sizes=(32,), max_iter=30, random_state=0))])
    rates = [1e-4, 0.01, 0.1]
    search = GridSearchCV(pipe, {"mlp__learning_rate_init": rates}, cv=3)
    _quiet_fit(search, X, y)
    scores = search.cv_results_["mean_test_score"]
    assert list(search.cv_results_["param_mlp__learning_rate_init"]) == rates
    # 30 epochs of SGD at η = 1e-4 barely move; the larger rates learn the digits
    assert scores[0] < 0.6 < 0.85 < max(scores[1:])
    assert search.best_params_["mlp__learning_rate_init"] in (0.01, 0.1)
    assert search.best_estimator_.score(X, y) > 0.95


def test_cross_val_score(iris):
    X, y = iris
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(MLPClassifier(hidden_layer_sizes=(20,), learning_rate_init=0.05,
                                               random_state=0), X, y, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.8


def test_string_labels_and_fitted_attributes(iris):
    X, y = iris
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    model = _quiet_fit(MLPClassifier(hidden_layer_sizes=(8, 5), learning_rate_init=0.05,
                                     max_iter=60, random_state=1), X, names)
    assert list(model.classes_) == ["setosa", "versicolor", "virginica"]
    predicted = model.predict(X)
    assert predicted.dtype == names.dtype and set(predicted) <= set(names)
    assert model.score(X, names) > 0.9
    proba = model.predict_proba(X)
    assert proba.shape == (150, 3) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(model.classes_[proba.argmax(axis=1)], predicted)
    assert model.n_features_in_ == 4 and model.n_layers_ == 4
    assert model.out_activation_ == "softmax"
    assert len(model.loss_curve_) == model.n_iter_ <= 60 and model.t_ == 150 * model.n_iter_
    # coefs_ in scikit-learn's (n_in, n_out) orientation; a NumPy forward pass with them
    # reproduces predict_proba
    assert [W.shape for W in model.coefs_] == [(4, 8), (8, 5), (5, 3)]
    assert [b.shape for b in model.intercepts_] == [(8,), (5,), (3,)]
    a = X.astype(np.float64)
    for i, (W, b) in enumerate(zip(model.coefs_, model.intercepts_)):
        z = a @ W.astype(np.float64) + b
        a = np.maximum(z, 0.0) if i < 2 else np.exp(z - z.max(1, keepdims=True))
    np.testing.assert_allclose(a / a.sum(1, keepdims=True), proba, rtol=1e-4, atol=1e-6)
    # views of the live parameters: writing through coefs_ changes the network
    model.coefs_[2][:] = 0.0
    model.intercepts_[2][:] = [0.0, 5.0, 0.0]
    assert set(model.predict(X)) == {"versicolor"}


def test_two_classes_and_mse_loss(iris):
    X, y = iris
    keep = y < 2
    model = _quiet_fit(MLPClassifier(hidden_layer_sizes=(6,), loss="mse", activation="logistic",
                                     learning_rate_init=0.5, random_state=0), X[keep], y[keep] * 7)
    assert list(model.classes_) == [0, 7] and model.out_activation_ == "logistic"
    assert model.score(X[keep], y[keep] * 7) == 1.0
    np.testing.assert_allclose(model.predict_proba(X[keep]).sum(axis=1), 1.0, rtol=1e-12)


def test_one_class_is_refused(iris):
    X, _ = iris
    with pytest.raises(ValueError, match="at least 2 classes; got 1 class"):
        MLPClassifier().fit(X[:10], ["a"] * 10)


def test_random_state_reproduces_and_varies(iris):
    X, y = iris
    a = _quiet_fit(MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=3), X, y)
    b = _quiet_fit(MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=3), X, y)
    c = _quiet_fit(MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=4), X, y)
    np.testing.assert_array_equal(a.coefs_[0], b.coefs_[0])
    assert a.loss_curve_ == b.loss_curve_
    assert not np.array_equal(a.coefs_[0], c.coefs_[0])


def _no_early_stop(**params):
    return dict(hidden_layer_sizes=(7,), learning_rate_init=0.05, random_state=5,
                n_iter_no_change=10_000, **params)


def test_partial_fit_epochs_equal_one_fit(iris):
    X, y = iris
    whole = _quiet_fit(MLPClassifier(max_iter=6, **_no_early_stop()), X, y)
    parts = MLPClassifier(**_no_early_stop())
    with pytest.raises(ValueError, match="classes must be passed"):
        parts.partial_fit(X, y)
    parts.partial_fit(X[:20], y[:20] % 2, classes=[0, 1, 2])  # y[:20] holds one class only
    assert list(parts.classes_) == [0, 1, 2] and parts.n_iter_ == 1
    parts = MLPClassifier(**_no_early_stop())
    for _ in range(6):
        parts.partial_fit(X, y, classes=np.unique(y))
    assert parts.n_iter_ == 1  # as scikit-learn: the epochs of the last call
    for W1, W2 in zip(whole.coefs_, parts.coefs_):
        np.testing.assert_array_equal(W1, W2)
    assert whole.loss_curve_ == parts.loss_curve_
    with pytest.raises(ValueError, match="not in classes_"):
        parts.partial_fit(X[:3], [0, 1, 9])
    with pytest.raises(ValueError, match="differs from the classes"):
        parts.partial_fit(X[:3], [0, 1, 2], classes=[0, 1, 2, 3])
    with pytest.raises(ValueError, match="features"):
        parts.partial_fit(X[:3, :2], [0, 1, 2])


def test_warm_start_continues_training(iris):
    X, y = iris
    # plain SGD: no optimiser state, which scikit-learn starts afresh at every fit
    sgd = {"solver": "sgd", "momentum": 0.0}
    whole = _quiet_fit(MLPClassifier(max_iter=8, **sgd, **_no_early_stop()), X, y)
    warm = _quiet_fit(MLPClassifier(max_iter=4, warm_start=True, **sgd, **_no_early_stop()), X,
                      y)
    _quiet_fit(warm, X, y)
    assert warm.n_iter_ == 4 and len(warm.loss_curve_) == 8 and warm.t_ == 8 * len(X)
    for W1, W2 in zip(whole.coefs_, warm.coefs_):
        np.testing.assert_array_equal(W1, W2)
    cold = _quiet_fit(MLPClassifier(max_iter=4, **_no_early_stop()), X, y)
    _quiet_fit(cold, X, y)
    assert cold.n_iter_ == 4  # refit from scratch


def test_early_stopping_on_tol_and_convergence_warning(iris):
    X, y = iris
    model = MLPClassifier(hidden_layer_sizes=(10,), learning_rate_init=0.05, tol=1e9,
                          n_iter_no_change=3, max_iter=100, random_state=0).fit(X, y)
    # the first epoch sets the best loss; none can beat it by 1e9, and training stops once
    # more than n_iter_no_change epochs did not (scikit-learn's rule)
    assert model.n_iter_ == 5
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(2\)"):
        MLPClassifier(max_iter=2, random_state=0).fit(X, y)


def test_bad_parameters_are_named_at_fit(iris):
    X, y = iris
    for params, name in [({"hidden_layer_sizes": (10, 0)}, "hidden_layer_sizes"),
                         ({"hidden_layer_sizes": "wide"}, "hidden_layer_sizes"),
                         ({"loss": "mae"}, "loss"), ({"batch_size": 0}, "batch_size"),
                         ({"max_iter": 0}, "max_iter"), ({"tol": -1.0}, "tol"),
                         ({"activation": "swish"}, "activation")]:
        with pytest.raises(ValueError, match=name):
            MLPClassifier(**params).fit(X, y)
    with pytest.raises(NotFittedError):
        MLPClassifier().predict(X)


def test_params_clone_and_pickle(iris):
    X, y = iris
    model = MLPClassifier(hidden_layer_sizes=(6,), learning_rate_init=0.03, random_state=2)
    assert model.get_params()["learning_rate_init"] == 0.03
    assert model.set_params(max_iter=7) is model and model.max_iter == 7
    _quiet_fit(model, X, y)
    copy = clone(model)
    assert copy.get_params() == model.get_params() and not hasattr(copy, "network_")
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict_proba(X), model.predict_proba(X))
    # the shuffling state travels too: one more epoch on each gives the same weights
    restored.partial_fit(X, y)
    model.partial_fit(X, y)
    np.testing.assert_array_equal(restored.coefs_[0], model.coefs_[0])


def test_regressor_fits_smooth_targets_single_and_multi_output():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (300, 3))
    y = np.sin(2 * X[:, 0]) + X[:, 1] * X[:, 2]
    model = _quiet_fit(MLPRegressor(hidden_layer_sizes=(32,), activation="tanh",
                                    learning_rate_init=0.05, max_iter=300, random_state=0), X, y)
    assert model.predict(X).shape == (300,) and model.predict(X).dtype == np.float64
    assert model.score(X, y) > 0.9
    assert model.out_activation_ == "identity" and model.n_outputs_ == 1
    Y = np.column_stack([y, X[:, 0] - X[:, 2]])
    multi = _quiet_fit(MLPRegressor(hidden_layer_sizes=(32,), activation="tanh",
                                    learning_rate_init=0.05, max_iter=300, random_state=0), X, Y)
    assert multi.predict(X).shape == (300, 2) and multi.n_outputs_ == 2
    assert multi.score(X, Y) > 0.9
    mae = _quiet_fit(MLPRegressor(hidden_layer_sizes=(16,), loss="mae", activation="tanh",
                                  learning_rate_init=0.01, max_iter=100, random_state=0), X, y)
    assert mae.score(X, y) > 0.5


def test_regressor_partial_fit_and_integer_targets():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 2))
    y_int = (X[:, 0] > 0).astype(np.int64) * 2 - 1
    a = _quiet_fit(MLPRegressor(max_iter=5, **_no_early_stop()), X, y_int)
    b = _quiet_fit(MLPRegressor(max_iter=5, **_no_early_stop()), X, y_int.astype(np.float64))
    np.testing.assert_array_equal(a.predict(X), b.predict(X))  # integers are targets, not labels
    c = MLPRegressor(**_no_early_stop())
    for _ in range(5):
        c.partial_fit(X, y_int)
    np.testing.assert_array_equal(c.predict(X), a.predict(X))


def test_solver_and_alpha_choose_the_optimizer():
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    model = MLPClassifier(hidden_layer_sizes=(32,), solver="adam", alpha=1e-4, batch_size=32,
                          learning_rate_init=1e-3, max_iter=15, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X[:1200], y[:1200])
    assert model.network_._optimizer_name == "adam"
    assert model.score(X[1200:], y[1200:]) > 0.9
    with pytest.raises(ValueError, match="solver='lbfgs' is not available"):
        MLPClassifier(solver="lbfgs").fit(X[:50], y[:50])
    with pytest.raises(ValueError, match="alpha"):
        MLPClassifier(alpha=-1.0).fit(X[:50], y[:50])
