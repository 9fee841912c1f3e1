"""steepest.MLPClassifier / MLPRegressor against scikit-learn's own, parameter by parameter.

Started from the same weights and fed the same batches (shuffle=False), one epoch of each
ends with the same parameters and the same ``loss_curve_`` to float32 rounding; with default
arguments the scores on five data sets are within noise of scikit-learn's; and every
parameter and fitted attribute of scikit-learn's estimators exists here with its meaning.
"""

import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn",
                              reason="scikit-learn (the 'sklearn' extra) is not installed")

from sklearn import neural_network  # noqa: E402
from sklearn.datasets import (  # noqa: E402
    load_breast_cancer,
    load_diabetes,
    load_digits,
    load_iris,
    make_regression,
)
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from steepest import sklearn as ours  # noqa: E402


def _quiet(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y)


def _problem(kind, n=103, d=6, seed=0):
    """Float32 data for a binary or 3-class classifier or a 1-output regressor."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    score = X @ rng.standard_normal(d)
    if kind == "binary":
        return X, (score > 0).astype(int)
    if kind == "multiclass":
        return X, np.digitize(score, [-0.5, 0.5])
    return X, (score + 0.1 * rng.standard_normal(n)).astype(np.float32)


def _one_epoch_from(model, X, y, coefs, intercepts):
    """One epoch of ``model`` (warm_start) starting from the given weights."""
    _quiet(model, X, y)  # builds the network and its attributes
    for layer, (W, b) in enumerate(zip(coefs, intercepts)):
        model.coefs_[layer][...] = W
        model.intercepts_[layer][...] = b
    _quiet(model, X, y)
    return model


SGD_SETTINGS = [
    {"solver": "sgd", "momentum": 0.0, "alpha": 0.0},
    {"solver": "sgd", "momentum": 0.0, "alpha": 0.05},
    {"solver": "sgd", "momentum": 0.9, "nesterovs_momentum": False, "alpha": 0.05},
    {"solver": "sgd", "momentum": 0.9, "nesterovs_momentum": True, "alpha": 0.05},
]


@pytest.mark.parametrize("settings", SGD_SETTINGS,
                         ids=["sgd", "sgd+alpha", "momentum+alpha", "nesterov+alpha"])
@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_one_epoch_equals_scikit_learn(kind, settings):
    X, y = _problem(kind)
    common = dict(hidden_layer_sizes=(7, 5), activation="tanh", batch_size=10, max_iter=1,
                  shuffle=False, warm_start=True, learning_rate="constant",
                  learning_rate_init=0.05, n_iter_no_change=1000, random_state=0, **settings)
    theirs_cls, ours_cls = ((neural_network.MLPRegressor, ours.MLPRegressor)
                            if kind == "regression" else
                            (neural_network.MLPClassifier, ours.MLPClassifier))
    theirs = _quiet(theirs_cls(**common), X, y)
    coefs = [W.astype(np.float32) for W in theirs.coefs_]
    intercepts = [b.astype(np.float32) for b in theirs.intercepts_]
    theirs = _one_epoch_from(theirs_cls(**common), X, y, coefs, intercepts)
    mine = _one_epoch_from(ours_cls(**common), X, y, coefs, intercepts)
    assert [W.shape for W in mine.coefs_] == [W.shape for W in theirs.coefs_]
    for W_ours, W_theirs in zip(mine.coefs_ + mine.intercepts_,
                                theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(W_ours, W_theirs, rtol=2e-5, atol=2e-6)
    assert mine.loss_curve_[-1] == pytest.approx(theirs.loss_curve_[-1], rel=2e-5)
    assert mine.n_iter_ == theirs.n_iter_ == 1 and mine.t_ == theirs.t_ == 2 * len(X)
    if kind == "regression":
        np.testing.assert_allclose(mine.predict(X), theirs.predict(X), rtol=1e-4, atol=1e-5)
    else:
        np.testing.assert_array_equal(mine.predict(X), theirs.predict(X))


def test_adam_epoch_matches_scikit_learn_to_its_epsilon():
    X, y = _problem("multiclass")
    common = dict(hidden_layer_sizes=(7,), batch_size=10, max_iter=1, shuffle=False,
                  warm_start=True, alpha=0.01, learning_rate_init=0.01, random_state=0)
    theirs = _quiet(neural_network.MLPClassifier(**common), X, y)
    coefs = [W.astype(np.float32) for W in theirs.coefs_]
    intercepts = [b.astype(np.float32) for b in theirs.intercepts_]
    theirs = _one_epoch_from(neural_network.MLPClassifier(**common), X, y, coefs, intercepts)
    mine = _one_epoch_from(ours.MLPClassifier(**common), X, y, coefs, intercepts)
    for W_ours, W_theirs in zip(mine.coefs_, theirs.coefs_):
        # Adam's ε sits under √v̂ here, under √v there: a difference of order ε·√t
        np.testing.assert_allclose(W_ours, W_theirs, rtol=1e-4, atol=1e-5)
    assert mine.loss_curve_[-1] == pytest.approx(theirs.loss_curve_[-1], rel=1e-4)


# ---------------------------------------------------------------- the training loop's rules
def _pair(cls_name, **params):
    return (getattr(neural_network, cls_name)(**params), getattr(ours, cls_name)(**params))


def test_n_iter_no_change_stops_at_the_same_epoch_as_scikit_learn():
    X, y = _problem("multiclass")
    for model in _pair("MLPClassifier", tol=100.0, n_iter_no_change=3, max_iter=50,
                       random_state=0):
        _quiet(model, X, y)
        assert model.n_iter_ == 5  # best loss in epoch 1; epochs 2-5 do not beat it by 100
        assert model.best_loss_ == min(model.loss_curve_)


def test_n_iter_counts_the_last_call_and_t_all_samples():
    X, y = _problem("binary")
    for model in _pair("MLPClassifier", max_iter=5, warm_start=True, n_iter_no_change=1000,
                       random_state=0):
        _quiet(model, X, y)
        _quiet(model, X, y)
        assert model.n_iter_ == 5 and len(model.loss_curve_) == 10 and model.t_ == 10 * len(X)
    for model in _pair("MLPClassifier", random_state=0):
        for _ in range(4):
            model.partial_fit(X, y, classes=[0, 1])
        assert model.n_iter_ == 1 and len(model.loss_curve_) == 4


def test_binary_multilabel_and_regressor_shapes_match_scikit_learn():
    X, y = _problem("binary")
    Y = np.column_stack([y, 1 - y, X[:, 0] > 0]).astype(int)
    r = _problem("regression")[1]
    for make, target in [("MLPClassifier", y), ("MLPClassifier", Y),
                         ("MLPRegressor", r), ("MLPRegressor", r[:, None])]:
        theirs, mine = (_quiet(model, X, target) for model in
                        _pair(make, hidden_layer_sizes=(4,), max_iter=3, random_state=0))
        assert [W.shape for W in mine.coefs_] == [W.shape for W in theirs.coefs_]
        assert mine.predict(X).shape == theirs.predict(X).shape
        assert mine.n_outputs_ == theirs.n_outputs_
        assert mine.out_activation_ == theirs.out_activation_
        if make == "MLPClassifier":
            assert mine.predict_proba(X).shape == theirs.predict_proba(X).shape
            np.testing.assert_array_equal(mine.classes_, theirs.classes_)


def test_learning_rate_schedules_follow_scikit_learn():
    X, y = _problem("multiclass")
    for schedule in ("invscaling", "adaptive"):
        rates = []
        for model in _pair("MLPClassifier", solver="sgd", learning_rate=schedule,
                           learning_rate_init=0.1, power_t=0.4, tol=1e9, n_iter_no_change=2,
                           max_iter=12, random_state=0):
            _quiet(model, X, y)
            rates.append((model.n_iter_, model._optimizer.learning_rate))
        assert rates[1][0] == rates[0][0]
        assert rates[1][1] == pytest.approx(rates[0][1], rel=1e-12), schedule


def test_early_stopping_follows_scikit_learn():
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    for model in _pair("MLPClassifier", early_stopping=True, tol=1.0, n_iter_no_change=3,
                       validation_fraction=0.2, random_state=0):
        _quiet(model, X, y)
        assert model.n_iter_ == 5 and len(model.validation_scores_) == 5
        assert model.best_validation_score_ == max(model.validation_scores_)
        assert model.best_loss_ is None
    # the weights kept are those of the best epoch: what training stopped there gives
    best = int(np.argmax(model.validation_scores_)) + 1
    again = _quiet(ours.MLPClassifier(early_stopping=True, tol=1.0, n_iter_no_change=3,
                                      validation_fraction=0.2, random_state=0,
                                      max_iter=best), X, y)
    for W_best, W_kept in zip(again.coefs_, model.coefs_):
        np.testing.assert_array_equal(W_best, W_kept)
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping"):
        ours.MLPClassifier(early_stopping=True).partial_fit(X, y, classes=[0, 1, 2])


def test_batch_size_larger_than_the_data_warns_as_scikit_learn():
    X, y = _problem("binary", n=20)
    for model in _pair("MLPClassifier", batch_size=50, max_iter=2):
        with pytest.warns(UserWarning, match="batch_size"):
            _quiet(model, X, y)


# ---------------------------------------------------------------- every name accounted for
@pytest.mark.parametrize("name", ["MLPClassifier", "MLPRegressor"])
def test_every_scikit_learn_parameter_and_default(name):
    theirs, mine = _pair(name)
    ours_params = mine.get_params()
    for key, value in theirs.get_params().items():
        assert key in ours_params, f"{name} lacks scikit-learn's parameter {key!r}"
        if key != "loss":  # the regressor's "squared_error" is steepest's None
            assert ours_params[key] == value, (key, ours_params[key], value)


@pytest.mark.parametrize("name", ["MLPClassifier", "MLPRegressor"])
def test_every_scikit_learn_fitted_attribute(name):
    X, y = _problem("multiclass" if name == "MLPClassifier" else "regression")
    for early_stopping in (False, True):
        theirs, mine = (_quiet(model, X, y) for model in
                        _pair(name, max_iter=3, early_stopping=early_stopping,
                              random_state=0))
        fitted = [key for key in vars(theirs) if key.endswith("_") and not key.startswith("_")]
        for key in fitted:
            assert hasattr(mine, key), f"{name} lacks scikit-learn's attribute {key!r}"
            if key in ("best_loss_", "validation_scores_", "best_validation_score_"):
                assert (getattr(mine, key) is None) == (getattr(theirs, key) is None), key


def test_what_steepest_does_not_do_is_refused_by_name():
    X, y = _problem("binary")
    with pytest.raises(ValueError, match="solver='lbfgs' is not available.*'adam'"):
        ours.MLPClassifier(solver="lbfgs").fit(X, y)
    with pytest.raises(ValueError, match="sample_weight is not supported"):
        ours.MLPClassifier().fit(X, y, sample_weight=np.ones(len(y)))
    with pytest.raises(ValueError, match="loss must be one of"):
        ours.MLPRegressor(loss="poisson").fit(X, y.astype(float))
    with pytest.raises(ValueError, match="learning_rate must be one of"):
        ours.MLPClassifier(learning_rate=0.1).fit(X, y)


# ---------------------------------------------------------------- scores with defaults
def _five_data_sets():
    return {"digits": (load_digits(return_X_y=True), "MLPClassifier"),
            "iris": (load_iris(return_X_y=True), "MLPClassifier"),
            "breast cancer": (load_breast_cancer(return_X_y=True), "MLPClassifier"),
            "diabetes": (load_diabetes(return_X_y=True), "MLPRegressor"),
            "make_regression": (make_regression(n_samples=500, n_features=10, noise=10,
                                                random_state=0), "MLPRegressor")}


@pytest.mark.slow
@pytest.mark.parametrize("data_set", list(_five_data_sets()))
def test_default_scores_are_within_noise_of_scikit_learn(data_set):
    (X, y), name = _five_data_sets()[data_set]
    scores = {"theirs": [], "ours": []}
    for seed in range(3):
        X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=seed)
        for who, model in zip(("theirs", "ours"), _pair(name, random_state=seed)):
            pipeline = _quiet(make_pipeline(StandardScaler(), model), X_train, y_train)
            scores[who].append(pipeline.score(X_test, y_test))
    theirs, mine = np.mean(scores["theirs"]), np.mean(scores["ours"])
    # the spread of scikit-learn's own scores over the three seeds, at least 0.02
    noise = max(0.02, 2 * np.std(scores["theirs"]))
    assert abs(mine - theirs) <= noise, (data_set, scores)
