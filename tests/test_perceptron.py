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
    p = steepest.Perceptron(learning_rate=1.0, epochs=500, shuffle=shuffle, seed=0).fit(X, XOR)
    assert not p.converged_ and len(p.errors_) == 500
    assert min(p.errors_) >= 1  # every pass over the four points makes a mistake
    assert p.score(X, XOR) <= 0.75  # no line gets all four right


def test_the_rule_by_hand():
    # first pass on AND from w = 0, b = 0 (ŷ = 1 when z ≥ 0), η = 0.5:
    # (0,0): ŷ=1, y=0 → b = −0.5;  (0,1): z=−0.5 → ŷ=0 ✓;  (1,0): ✓;
    # (1,1): z=−0.5, y=1 → w = (0.5, 0.5), b = 0
    p = steepest.Perceptron(learning_rate=0.5, epochs=1).fit(X, AND)
    np.testing.assert_array_equal(p.weights_, [0.5, 0.5])
    assert p.bias_ == 0.0 and p.errors_ == [2]


def test_step_predictions_use_the_step_kernel_at_zero():
    p = steepest.Perceptron(epochs=1).fit(X, OR)
    p.weights_, p.bias_ = np.array([1.0, -1.0]), 0.0
    points = np.array([[1.0, 1.0], [0.0, 1.0], [2.0, 1.0]])
    np.testing.assert_array_equal(p.predict(points), [1, 0, 1])


def test_input_checks():
    with pytest.raises(ValueError, match="label 0 or 1"):
        steepest.Perceptron().fit(X, [0, 1, 2, 1])
    with pytest.raises(ValueError, match="2-D"):
        steepest.Perceptron().fit(np.ones(4), AND)
    with pytest.raises(RuntimeError, match="not fitted"):
        steepest.Perceptron().predict(X)
    with pytest.raises(ValueError, match="shape"):
        steepest.Perceptron().fit(X, AND).predict(np.ones((2, 3)))
