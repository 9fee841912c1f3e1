"""LinearRegression by batch, stochastic and mini-batch gradient descent."""

import warnings

import numpy as np
import pytest

import steepest
from steepest import optimizers
from steepest.models.linear_regression import mean_squared_error


def regression_data(rng, n=300, d=3, noise=0.1):
    X = rng.standard_normal((n, d)) * rng.uniform(0.5, 2.0, d)
    w, b = rng.uniform(-3, 3, d), rng.uniform(-2, 2)
    y = X @ w + b + noise * rng.standard_normal(n)
    exact = np.linalg.lstsq(np.c_[X, np.ones(n)], y, rcond=None)[0]
    return X, y, exact


def test_house_price_mse():
    assert mean_squared_error([100, 120, 80], [90, 130, 95]) == pytest.approx(141.67, abs=0.005)
    assert mean_squared_error([100, 120, 80], [90, 130, 95]) == pytest.approx(425 / 3)
    with pytest.raises(ValueError, match="equal length"):
        mean_squared_error([1, 2], [1])


def test_house_prices_mse_falls_every_step_from_the_given_start():
    X, y = np.array([[1.5], [1.8], [1.2]]), np.array([100.0, 120.0, 80.0])
    model = steepest.LinearRegression(method="batch", learning_rate=0.3, epochs=300)
    model.fit(X, y, coef_init=[0.1], intercept_init=0.2)
    history = np.array(model.loss_history_)
    assert len(history) == 301 and model.n_steps_ == 300
    # the start: ŷ = 0.1·size + 0.2, far below every price
    start = mean_squared_error(y, 0.1 * X[:, 0] + 0.2)
    assert history[0] == pytest.approx(start, rel=1e-6)
    assert np.all(np.diff(history) < 0)
    assert history[-1] < 1e-3 * history[0]


def test_too_large_learning_rate_raises_with_the_history_kept():
    X, y = np.array([[1.5], [1.8], [1.2]]), np.array([100.0, 120.0, 80.0])
    model = steepest.LinearRegression(method="batch", learning_rate=5.0, epochs=500)
    with pytest.raises(FloatingPointError, match="learning_rate=5.0"):
        model.fit(X, y, coef_init=[0.1], intercept_init=0.2)
    assert model.loss_history_[1] > model.loss_history_[0]


@pytest.mark.parametrize("method,learning_rate,epochs,tol", [
    ("batch", 0.1, 300, 2e-4), ("minibatch", 0.02, 60, 5e-3), ("sgd", 0.002, 40, 5e-3)])
def test_converges_to_least_squares(rng, method, learning_rate, epochs, tol):
    X, y, exact = regression_data(rng)
    model = steepest.LinearRegression(method=method, learning_rate=learning_rate, epochs=epochs,
                                      batch_size=16, seed=1).fit(X, y)
    got = np.r_[model.coef_, model.intercept_]
    # SGD's constant step leaves it jittering around the optimum, within about η·noise
    assert np.abs(got - exact).max() < tol, (got, exact)
    least_squares = np.mean((np.c_[X, np.ones(len(X))] @ exact - y) ** 2)
    assert model.loss_history_[-1] == pytest.approx(least_squares, rel=0.05)
    steps = {"batch": epochs, "minibatch": epochs * -(-len(X) // 16), "sgd": epochs * len(X)}
    assert model.n_steps_ == steps[method]


def test_batch_gradient_descent_is_the_textbook_update(rng):
    # two steps by hand in float64: θ ← θ − η·(1/n)·Σ (ŷ − y)·[x, 1]
    X, y, _ = regression_data(rng, n=20, d=2)
    w, b, lr = np.array([0.3, -0.2]), 0.5, 0.05
    model = steepest.LinearRegression(method="batch", learning_rate=lr, epochs=2)
    model.fit(X, y, coef_init=w, intercept_init=b)
    for _ in range(2):
        err = X @ w + b - y
        w, b = w - lr * X.T @ err / len(X), b - lr * err.mean()
    np.testing.assert_allclose(model.coef_, w, rtol=1e-5, atol=1e-6)
    assert model.intercept_ == pytest.approx(b, rel=1e-5, abs=1e-6)


def test_sgd_takes_one_step_per_sample_in_order(rng):
    X, y, _ = regression_data(rng, n=5, d=1)
    lr = 0.1
    model = steepest.LinearRegression(method="sgd", learning_rate=lr, epochs=1, shuffle=False)
    model.fit(X, y, coef_init=[0.0], intercept_init=0.0)
    w, b = 0.0, 0.0
    for x_i, y_i in zip(X[:, 0], y):
        err = w * x_i + b - y_i
        w, b = w - lr * err * x_i, b - lr * err
    assert model.coef_[0] == pytest.approx(w, rel=1e-5)
    assert model.intercept_ == pytest.approx(b, rel=1e-5)


def test_any_optimizer_can_drive_the_regression(rng):
    X, y, exact = regression_data(rng)
    model = steepest.LinearRegression(method="minibatch", batch_size=32, epochs=150, seed=0,
                                      optimizer=optimizers.Adam(learning_rate=0.05)).fit(X, y)
    assert model.learning_rate == "auto" and model.learning_rate_ == 0.05  # the object's own
    assert np.abs(np.r_[model.coef_, model.intercept_] - exact).max() < 0.02


def test_predict_and_input_checks(rng):
    X, y, _ = regression_data(rng, n=30, d=2)
    model = steepest.LinearRegression(epochs=5)
    with pytest.raises(RuntimeError, match="not fitted"):
        model.predict(X)
    model.fit(X, y)
    np.testing.assert_allclose(model.predict(X), X @ model.coef_ + model.intercept_)
    assert model.mse(X, y) == model.loss_history_[-1]
    with pytest.raises(ValueError, match="one finite target per sample"):
        model.fit(X, y[:-1])
    with pytest.raises(ValueError, match="coef_init must have 2 values"):
        model.fit(X, y, coef_init=[1.0])
    with pytest.raises(ValueError, match="unknown method 'newton'"):
        steepest.LinearRegression(method="newton").fit(X, y)
    with pytest.raises(ValueError, match="learning_rate"):
        steepest.LinearRegression(learning_rate=-1).fit(X, y)
    with pytest.raises(ValueError, match="learning_rate must be 'auto'"):
        steepest.LinearRegression(learning_rate="fast").fit(X, y)
    with pytest.raises(ValueError, match="tol"):
        steepest.LinearRegression(tol=-1.0).fit(X, y)
    with pytest.raises(ValueError, match="max_iter"):
        steepest.LinearRegression(max_iter=0).fit(X, y)
    with pytest.raises(ValueError, match="X has 1 features, but LinearRegression is expecting 2"):
        model.predict(X[:, :1])
    # a 1-D X is one feature per sample
    one = steepest.LinearRegression().fit(X[:, 0], y)
    assert one.coef_.shape == (1,) and one.predict(X[:3, 0]).shape == (3,)


# ---------------------------------------------------------------- issue 12: the defaults

def one_feature_case():
    """The user trial: one feature in [0, 10], 200 rows, y = 2 + 0.5x + noise."""
    rng = np.random.default_rng(12)
    x = rng.uniform(0, 10, 200)
    y = 2.0 + 0.5 * x + rng.standard_normal(200)
    exact = np.linalg.lstsq(np.c_[x, np.ones(200)], y, rcond=None)[0]
    return x.reshape(-1, 1), y, exact


def r2(y, predicted):
    return 1 - np.sum((y - predicted) ** 2) / np.sum((y - np.mean(y)) ** 2)


def test_defaults_reach_least_squares_on_one_unscaled_feature():
    X, y, exact = one_feature_case()
    model = steepest.LinearRegression().fit(X, y)
    got = np.r_[model.coef_, model.intercept_]
    np.testing.assert_allclose(got, exact, rtol=1e-3)
    assert model.converged_ and model.n_iter_ < model.max_iter


def test_defaults_reach_least_squares_on_diabetes():
    datasets = pytest.importorskip("sklearn.datasets")
    X, y = datasets.load_diabetes(return_X_y=True)
    exact = np.linalg.lstsq(np.c_[X, np.ones(len(X))], y, rcond=None)[0]
    best = r2(y, np.c_[X, np.ones(len(X))] @ exact)  # 0.518
    model = steepest.LinearRegression().fit(X, y)
    assert model.converged_
    assert model.score(X, y) == pytest.approx(best, abs=5e-4)
    np.testing.assert_allclose(np.r_[model.coef_, model.intercept_], exact, rtol=1e-3)


def test_score_is_r2_and_params_round_trip():
    X, y, _ = one_feature_case()
    model = steepest.LinearRegression(method="sgd", learning_rate=0.001)
    assert model.get_params()["method"] == "sgd"
    assert model.set_params(method="batch", learning_rate="auto") is model
    model.fit(X, y)
    assert model.score(X, y) == pytest.approx(r2(y, model.predict(X)), abs=1e-12)
    assert model.n_features_in_ == 1


def test_the_constructor_only_stores_its_arguments():
    model = steepest.LinearRegression(method="newton", learning_rate=-1)
    assert model.method == "newton" and model.learning_rate == -1
    X, y, _ = one_feature_case()
    with pytest.raises(ValueError, match="unknown method 'newton'"):
        model.fit(X, y)


def test_convergence_warning_when_the_epoch_cap_comes_first():
    X, y, _ = one_feature_case()
    model = steepest.LinearRegression(learning_rate=1e-4, max_iter=5)
    with pytest.warns(steepest.ConvergenceWarning, match="max_iter=5"):
        model.fit(X, y)
    assert not model.converged_ and model.n_iter_ == 5


def test_a_huge_learning_rate_raises_divergence_error():
    X, y, _ = one_feature_case()
    model = steepest.LinearRegression(learning_rate=100.0)
    with pytest.raises(steepest.DivergenceError, match="learning_rate=100.0") as caught:
        model.fit(X, y)
    error = caught.value
    assert isinstance(error, FloatingPointError)
    assert error.learning_rate == 100.0 and 1 <= error.epoch <= 10
    # stopped when the MSE became inf or grew 10⁴-fold, as Network's training stops
    assert error.history == model.loss_history_ and error.history[-1] > 1e4 * error.history[0]
    # the weights are those of the last good epoch, as Network leaves them
    assert np.isfinite(model.coef_).all() and np.isfinite(model.intercept_)


@pytest.mark.parametrize("method", ["sgd", "minibatch"])
def test_auto_steps_for_sgd_and_minibatch_get_close_to_least_squares(method):
    # 1/L_B for the batch size, divided by 10 at each of the first two plateaus: the noise
    # floor of the last step leaves the fit within a hair of least squares
    X, y, exact = one_feature_case()
    best = r2(y, np.c_[X, np.ones(len(X))] @ exact)
    with warnings.catch_warnings():
        warnings.simplefilter("error", steepest.ConvergenceWarning)
        model = steepest.LinearRegression(method=method, seed=0).fit(X, y)
    assert model.converged_ and model.score(X, y) == pytest.approx(best, abs=2e-3)
    assert np.abs(np.r_[model.coef_, model.intercept_] - exact).max() < 0.1


def test_an_explicit_learning_rate_is_used_as_given_and_epochs_runs_every_epoch():
    X, y, _ = one_feature_case()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ConvergenceWarning: no stopping test was asked for
        model = steepest.LinearRegression(learning_rate=0.01, epochs=7, tol=1.0).fit(X, y)
    assert model.learning_rate_ == 0.01 and model.n_iter_ == 7 and len(model.loss_history_) == 8
    assert not model.converged_
