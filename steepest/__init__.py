"""steepest: neural networks trained by gradient descent with Numba-compiled kernels.

    import steepest
    X, y, Xt, yt = steepest.load_mnist()
    net = steepest.Network([784, 30, 10], activation="sigmoid", loss="mse", seed=0)
    net.fit(X, y, epochs=1, batch_size=10, learning_rate=3.0)
    net.evaluate(Xt, yt)

Public names are imported on first use, so ``import steepest`` stays light: numba is loaded
only when a network or kernel is first touched, and numba.cuda never by this module.
"""

from importlib import import_module

__version__ = "0.1.0"

_LAZY = {
    "Network": "steepest.models.network",
    "DivergenceError": "steepest.models.network",
    "History": "steepest.models.history",
    "get_backend": "steepest.models.backend",
    "load_mnist": "steepest.data.mnist",
    "read_idx": "steepest.data.idx",
    "IDXError": "steepest.data.idx",
    "LinearRegression": "steepest.models.linear_regression",
    "Perceptron": "steepest.models.perceptron",
    "minimize": "steepest.models.descent",
    "Trajectory": "steepest.models.descent",
    "CheckpointError": "steepest.models.checkpoint",
    "load_dataset": "steepest.data.registry",
    "load_fashion_mnist": "steepest.data.registry",
    "load_kmnist": "steepest.data.registry",
    "train_validation_split": "steepest.data.registry",
    "DownloadError": "steepest.data.download",
    "ChecksumError": "steepest.data.download",
    "MLPClassifier": "steepest.sklearn",  # needs scikit-learn, imported only on first use
    "MLPRegressor": "steepest.sklearn",
    "Callback": "steepest.models.callbacks",
    "EarlyStopping": "steepest.models.callbacks",
    "Schedule": "steepest.models.schedules",
    "StepDecay": "steepest.models.schedules",
    "ExponentialDecay": "steepest.models.schedules",
    "InverseScaling": "steepest.models.schedules",
    "ReduceOnPlateau": "steepest.models.schedules",
    "Constant": "steepest.models.schedules",
    "TrainingWarning": "steepest.models.network",
    "ConvergenceWarning": "steepest.models.estimator",
    "DivergenceWarning": "steepest.models.descent",
    "sweep": "steepest.models.sweep",
    "SweepResult": "steepest.models.sweep",
}

# Public submodules, imported on first use as well (steepest.distributed imports mpi4py only
# when a communicator is used).
_MODULES = {"optimizers": "steepest.optimizers", "distributed": "steepest.distributed"}

__all__ = sorted(_LAZY) + sorted(_MODULES)


def __getattr__(name):
    if name in _MODULES:
        module = import_module(_MODULES[name])
        globals()[name] = module
        return module
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'steepest' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | set(_MODULES))
