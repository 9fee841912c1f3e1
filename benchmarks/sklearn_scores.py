"""steepest's MLPClassifier / MLPRegressor beside scikit-learn's, default arguments, one table.

Each estimator sits behind a StandardScaler in a pipeline. The score is on a held-out
quarter: accuracy for the classifiers, R² for the regressors (targets unscaled, as
scikit-learn's defaults meet them). Each cell is the mean over three splits (seeds 0–2), with
the wall time of the three fits. The slow test ``test_default_scores_are_within_noise_of_
scikit_learn`` in ``tests/test_sklearn_equivalence.py`` asserts the same comparison.

    python benchmarks/sklearn_scores.py
"""

import time
import warnings

import numpy as np
from sklearn import neural_network
from sklearn.datasets import (
    load_breast_cancer,
    load_diabetes,
    load_digits,
    load_iris,
    make_regression,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from steepest import sklearn as steepest_sklearn

DATA_SETS = {
    "digits": (lambda: load_digits(return_X_y=True), "MLPClassifier"),
    "iris": (lambda: load_iris(return_X_y=True), "MLPClassifier"),
    "breast cancer": (lambda: load_breast_cancer(return_X_y=True), "MLPClassifier"),
    "diabetes": (lambda: load_diabetes(return_X_y=True), "MLPRegressor"),
    "make_regression": (lambda: make_regression(n_samples=500, n_features=10, noise=10,
                                                random_state=0), "MLPRegressor"),
}


def mean_score(module, name, X, y, seeds=(0, 1, 2)):
    """(mean held-out score, seconds of fitting) over the splits."""
    scores, seconds = [], 0.0
    for seed in seeds:
        X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=seed)
        model = make_pipeline(StandardScaler(), getattr(module, name)(random_state=seed))
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X_train, y_train)
        seconds += time.perf_counter() - start
        scores.append(model.score(X_test, y_test))
    return float(np.mean(scores)), seconds


def main():
    print(f"{'data set':16s} {'score':>8s} {'sklearn':>9s} {'steepest':>9s}  "
          f"{'fit s, sklearn / steepest':>26s}")
    for data_set, (load, name) in DATA_SETS.items():
        X, y = load()
        theirs, their_time = mean_score(neural_network, name, X, y)
        ours, our_time = mean_score(steepest_sklearn, name, X, y)
        kind = "accuracy" if name == "MLPClassifier" else "R²"
        print(f"{data_set:16s} {kind:>8s} {theirs:9.4f} {ours:9.4f}  "
              f"{their_time:12.1f} / {our_time:.1f}")


if __name__ == "__main__":
    main()
