"""steepest.minimize: gradient descent on a function, with its whole trajectory."""

import warnings

import numpy as np
import pytest

import steepest
from steepest.models.descent import FUNCTIONS, numerical_gradient


def square(x):
    return x ** 2


@pytest.mark.parametrize("grad", [None, lambda x: 2 * x], ids=["numerical", "analytic"])
def test_x_squared_at_learning_rate_0_3(grad):
    path = steepest.minimize(square, 5, grad=grad, learning_rate=0.3, epochs=5)
    np.testing.assert_allclose(path.points, [5, 2, 0.8, 0.32, 0.128, 0.0512], rtol=1e-8)
    np.testing.assert_allclose(path.values, np.square(path.points), rtol=1e-12)
    assert path.points.shape == (6,) and not path.diverged
    assert path.x == pytest.approx(0.0512) and path.steps == 5


@pytest.mark.parametrize("grad", [None, lambda x: 2 * x], ids=["numerical", "analytic"])
def test_x_squared_oscillates_at_learning_rate_1(grad):
    path = steepest.minimize(square, 5.0, grad=grad, learning_rate=1.0, epochs=8)
    np.testing.assert_allclose(path.points, [5, -5, 5, -5, 5, -5, 5, -5, 5], rtol=1e-8)
    assert not path.diverged and not path.converged


@pytest.mark.parametrize("learning_rate", [1.01, 1.1, 2.5])
def test_x_squared_diverges_above_1(learning_rate):
    with pytest.warns(steepest.DivergenceWarning):
        path = steepest.minimize(square, 5.0, learning_rate=learning_rate, epochs=10)
    assert path.diverged and not path.converged
    assert np.all(np.abs(np.diff(np.abs(path.points))) > 0)  # |x| grows every step
    np.testing.assert_allclose(path.points[1:] / path.points[:-1], 1 - 2 * learning_rate,
                               rtol=1e-6)


def test_a_blown_up_path_stops_before_overflow():
    with pytest.warns(steepest.DivergenceWarning, match="blew up at step"):
        path = steepest.minimize(square, 5.0, grad=lambda x: 2 * x, learning_rate=3.0,
                                 epochs=10_000)
    assert path.diverged and path.steps < 10_000
    assert np.isfinite(path.points).all() and np.isfinite(path.values).all()
    assert abs(path.points[-1]) > 1e70


def test_small_learning_rate_converges():
    path = steepest.minimize(square, 5.0, grad=lambda x: 2 * x, learning_rate=0.3, epochs=200)
    assert path.converged and abs(path.x) < 1e-30
    # central differences stall where rounding dominates, still very close to 0
    path = steepest.minimize(square, 5.0, learning_rate=0.3, epochs=200)
    assert path.converged and abs(path.x) < 1e-15


def test_n_dimensional_with_numerical_gradient_matches_analytic():
    f, grad, x0, _ = FUNCTIONS["rosenbrock"]
    numeric = steepest.minimize(f, x0, learning_rate=0.001, epochs=50)
    exact = steepest.minimize(f, x0, grad=grad, learning_rate=0.001, epochs=50)
    assert numeric.points.shape == (51, 2)
    np.testing.assert_allclose(numeric.points, exact.points, rtol=1e-6, atol=1e-8)
    assert exact.values[-1] < exact.values[0]


def test_2d_path_bends_as_the_steepest_direction_changes():
    f, grad, x0, _ = FUNCTIONS["bowl"]
    path = steepest.minimize(f, x0, grad=grad, learning_rate=0.02, epochs=40)
    steps = np.diff(path.points, axis=0)
    unit = steps / np.linalg.norm(steps, axis=1, keepdims=True)
    assert unit[0] @ unit[-1] < 0.3  # first and last directions more than ~70° apart
    # each step goes along −∇f at its own point, not along the line to the minimum
    for k in range(3):
        g = grad(path.points[k])
        np.testing.assert_allclose(steps[k], -0.02 * g, rtol=1e-12)
    assert np.all(np.diff(path.values) < 0)


def test_numerical_gradient_is_central_difference_accurate(rng):
    x = rng.standard_normal(4) * 3
    f = lambda p: np.sin(p[0]) * p[1] ** 2 + np.exp(0.3 * p[2]) - p[3] ** 3  # noqa: E731
    exact = np.array([np.cos(x[0]) * x[1] ** 2, 2 * np.sin(x[0]) * x[1],
                      0.3 * np.exp(0.3 * x[2]), -3 * x[3] ** 2])
    np.testing.assert_allclose(numerical_gradient(f, x), exact, rtol=1e-7, atol=1e-8)


def test_scalar_functions_get_scalars_and_vectors_get_arrays():
    seen = []
    steepest.minimize(lambda x: seen.append(type(x)) or x * x, 1.0, epochs=1)
    assert set(seen) == {float}
    seen.clear()
    steepest.minimize(lambda p: seen.append(type(p)) or float(p @ p), [1.0, 2.0], epochs=1)
    assert set(seen) == {np.ndarray}


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(f=3, x0=1.0), TypeError, "f must be a function"),
    (dict(f=square, x0=1.0, learning_rate=0), ValueError, "learning_rate"),
    (dict(f=square, x0=1.0, epochs=-1), ValueError, "epochs"),
    (dict(f=square, x0=[[1.0]]), ValueError, "x0"),
    (dict(f=square, x0=float("nan")), ValueError, "x0"),
    (dict(f=lambda p: p @ p, x0=[1.0, 2.0], grad=lambda p: p[:1]), ValueError, "grad returned 1"),
    (dict(f=square, x0=[1.0, 2.0]), ValueError, "f must return one number"),
])
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        steepest.minimize(**kwargs)


def test_repr_says_what_happened():
    with pytest.warns(steepest.DivergenceWarning):
        assert "diverged" in repr(steepest.minimize(square, 5.0, learning_rate=1.5, epochs=3))
    assert "converged" in repr(steepest.minimize(square, 5.0, learning_rate=0.5, epochs=3))


def test_rosenbrock_with_defaults_warns_and_still_returns_the_path():
    f, grad, x0, _ = FUNCTIONS["rosenbrock"]
    with pytest.warns(steepest.DivergenceWarning, match=r"step 1\b.*learning_rate=0\.1") as caught:
        path = steepest.minimize(f, x0, grad=grad)
    assert issubclass(caught[0].category, RuntimeWarning)
    assert isinstance(path, steepest.Trajectory) and path.diverged
    assert caught[0].filename == __file__  # points at the caller, not at steepest


def test_a_path_that_only_ends_higher_names_its_first_step_above_the_start():
    # η = 1.01 on x²: |x| grows by 2% a step, f is above f(x0) from step 1 on
    with pytest.warns(steepest.DivergenceWarning, match=r"step 1\b.*learning_rate=1\.01"):
        steepest.minimize(square, 5.0, learning_rate=1.01, epochs=3)


def test_a_converging_path_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        steepest.minimize(square, 5.0, learning_rate=0.3, epochs=10)
        steepest.minimize(square, 5.0, learning_rate=1.0, epochs=8)  # oscillates, not diverged
