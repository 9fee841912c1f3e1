"""Perceptron: the step neuron learns AND and OR, and cannot learn XOR."""

import numpy as np
import pytest

import steepest

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
AND, OR, XOR = [0, 0, 0, 1], [0, 1, 1, 1], [0, 1, 1, 0]


@pytest.mark.parametrize("y", [AND, OR], ids=["AND", "OR"])
@pytest.mark.parametrize("shuffle", [False, True])
def test_learns_linearly_separable_gates(y, shuffle):
    p = steepest.Perceptron(learning_rate=1.0, epochs=100, shuffle=shuffle, seed=0).fit(X, y)
    assert p.converged_ and p.errors_[-1] == 0 and len(p.errors_) < 100
    np.testing.assert_array_equal(p.predict(X), y)
    # the learned line separates the classes: z ≥ 0 exactly on the 1s
    np.testing.assert_array_equal(p.decision_function(X) >= 0, np.array(y) == 1)


@pytest.mark.parametrize("shuffle", [False, True])
def test_cannot_learn_xor(shuffle):
    with pytest.warns(steepest.ConvergenceWarning, match="linearly separable"):
        p = steepest.Perceptron(learning_rate=1.0, epochs=500, shuffle=shuffle, seed=0)
        p.fit(X, XOR)
    assert not p.converged_ and len(p.errors_) == 500
    assert min(p.errors_) >= 1  # every pass over the four points makes a mistake
    assert p.score(X, XOR) <= 0.75  # no line gets all four right


def test_the_rule_by_hand():
    # first pass on AND from w = 0, b = 0 (ŷ = 1 when z ≥ 0), η = 0.5:
    # (0,0): ŷ=1, y=0 → b = −0.5;  (0,1): z=−0.5 → ŷ=0 ✓;  (1,0): ✓;
    # (1,1): z=−0.5, y=1 → w = (0.5, 0.5), b = 0
    with pytest.warns(steepest.ConvergenceWarning):  # one pass is not enough for AND
        p = steepest.Perceptron(learning_rate=0.5, epochs=1).fit(X, AND)
    np.testing.assert_array_equal(p.weights_, [0.5, 0.5])
    assert p.bias_ == 0.0 and p.errors_ == [2]


def test_step_predictions_use_the_step_kernel_at_zero():
    p = steepest.Perceptron().fit(X, OR)
    p.weights_, p.bias_ = np.array([1.0, -1.0]), 0.0
    points = np.array([[1.0, 1.0], [0.0, 1.0], [2.0, 1.0]])
    np.testing.assert_array_equal(p.predict(points), [1, 0, 1])


def test_input_checks():
    with pytest.raises(ValueError, match="Only binary classification"):
        steepest.Perceptron().fit(X, [0, 1, 2, 1])
    with pytest.raises(ValueError, match="2-D"):
        steepest.Perceptron().fit(np.ones(4), AND)
    with pytest.raises(RuntimeError, match="not fitted"):
        steepest.Perceptron().predict(X)
    with pytest.raises(ValueError, match="X has 3 features, but Perceptron is expecting 2"):
        steepest.Perceptron().fit(X, AND).predict(np.ones((2, 3)))


# ---------------------------------------------------------------- issue 12: any two labels

@pytest.mark.parametrize("labels", [(-1, 1), ("no", "yes"), (0.0, 1.0), (False, True)],
                         ids=["plus-minus-one", "strings", "floats", "booleans"])
def test_any_two_labels(labels):
    y = np.take(np.array(labels), AND)
    p = steepest.Perceptron().fit(X, y)
    np.testing.assert_array_equal(p.classes_, np.array(labels))
    np.testing.assert_array_equal(p.predict(X), y)
    assert p.predict(X).dtype == np.array(labels).dtype
    assert p.score(X, y) == 1.0 and p.converged_


def test_labels_are_mapped_in_sorted_order():
    # classes_[1] is the class on the positive side (z ≥ 0), as in scikit-learn
    p = steepest.Perceptron().fit(X, np.where(np.array(OR) == 1, "b", "a"))
    np.testing.assert_array_equal(p.classes_, ["a", "b"])
    np.testing.assert_array_equal(p.decision_function(X) >= 0, np.array(OR) == 1)


@pytest.mark.parametrize("y,match", [
    ([1, 1, 1, 1], "one class"),
    ([0, 1, 2, 1], "Only binary classification is supported.*3 classes"),
    (["a", "b", "c", "a"], "Only binary classification is supported"),
    ([0.5, 1.5, 0.25, 1.0], "continuous"),
])
def test_one_or_three_classes_are_refused(y, match):
    with pytest.raises(ValueError, match=match):
        steepest.Perceptron().fit(X, y)


def test_fitted_names_follow_scikit_learn_and_the_old_ones_still_work():
    p = steepest.Perceptron(learning_rate=0.5, epochs=1)
    with pytest.warns(steepest.ConvergenceWarning):
        p.fit(X, AND)
    np.testing.assert_array_equal(p.coef_, [0.5, 0.5])
    assert p.intercept_ == 0.0 and p.n_features_in_ == 2 and p.n_iter_ == 1
    np.testing.assert_array_equal(p.weights_, p.coef_)
    assert p.bias_ == p.intercept_


def test_convergence_warning_when_the_epoch_cap_comes_first():
    with pytest.warns(steepest.ConvergenceWarning, match="epochs=20.*linearly separable"):
        p = steepest.Perceptron(epochs=20).fit(X, XOR)
    assert not p.converged_ and len(p.errors_) == 20


def test_params_and_score():
    p = steepest.Perceptron(learning_rate=0.5)
    assert p.get_params() == {"learning_rate": 0.5, "epochs": 1000, "shuffle": False,
                              "seed": None, "device": "auto"}
    assert p.set_params(epochs=10) is p and p.epochs == 10
    assert p.fit(X, OR) is p and p.score(X, OR) == 1.0


def test_the_constructor_only_stores_its_arguments():
    p = steepest.Perceptron(learning_rate=-1, epochs=0)
    assert p.learning_rate == -1 and p.epochs == 0
    with pytest.raises(ValueError, match="learning_rate"):
        p.fit(X, AND)


def test_weights_that_overflow_raise_divergence_error():
    big = np.array([[1e200, 1e200], [-1e200, -1e200]])
    with pytest.raises(steepest.DivergenceError, match="learning_rate=1e\\+200"):
        steepest.Perceptron(learning_rate=1e200).fit(big, [0, 1])
