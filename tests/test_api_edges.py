"""Details of the Python API a user meets first: imports, History as a mapping, schedule
callables in Keras's form, sparse input, and networks pickled on a GPU machine."""

import importlib
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

import steepest


def blobs(n=60, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = (rng.standard_normal((n, 3)) + 1.5 * y[:, None]).astype(np.float32)
    return X, y


# ---------------------------------------------------------------- imports
@pytest.mark.parametrize("name", sorted(steepest._MODULES))
def test_every_public_submodule_imports_the_usual_way(name):
    module = importlib.import_module(f"steepest.{name}")
    assert getattr(steepest, name) is module


def test_from_steepest_optimizers_import_adam_in_a_fresh_process():
    code = ("from steepest.optimizers import Adam, get_optimizer; import steepest; "
            "assert Adam is steepest.optimizers.Adam is get_optimizer('adam').__class__; "
            "print(Adam(learning_rate=0.01).learning_rate)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0.01"


# ---------------------------------------------------------------- History
def test_history_is_a_mapping_of_metric_lists():
    X, y = blobs()
    hist = steepest.Network([3, 4, 2], seed=0).fit(X, y, epochs=3, learning_rate=0.5)
    assert len(hist) == 3  # epochs, as before
    assert list(hist) == list(hist.keys()) == list(hist.history)
    assert dict(hist) == hist.history and dict(hist.items()) == hist.history
    assert hist.get("loss") == hist["loss"] and hist.get("val_loss") is None
    assert hist.get("val_loss", []) == [] and list(hist.values())[0] == hist[list(hist)[0]]
    assert "epoch" in hist and hist["epoch"] == [1, 2, 3]


# ---------------------------------------------------------------- schedules
def test_keras_style_and_one_argument_schedules_work():
    X, y = blobs()
    seen = []

    def keras(epoch, lr):
        seen.append(epoch)
        return lr * 0.5 ** (epoch - 1)

    rates = {}
    for name, schedule in (("three", lambda epoch, lr, history: lr * 0.5 ** (epoch - 1)),
                           ("keras", keras), ("one", lambda epoch: 0.8 * 0.5 ** (epoch - 1))):
        net = steepest.Network([3, 4, 2], seed=0)
        rates[name] = net.fit(X, y, epochs=3, learning_rate=0.8, lr_schedule=schedule)
    assert seen == [1, 2, 3]
    for name in ("keras", "one"):
        assert rates[name]["learning_rate"] == rates["three"]["learning_rate"] == [0.8, 0.4, 0.2]
        assert rates[name]["loss"] == rates["three"]["loss"]


def test_a_schedule_of_the_wrong_shape_is_refused_before_training():
    X, y = blobs()
    net = steepest.Network([3, 4, 2], seed=0)
    before = net._params.copy()
    with pytest.raises(TypeError, match="lr_schedule .* must take"):
        net.fit(X, y, epochs=2, lr_schedule=lambda: 0.1)
    with pytest.raises(TypeError, match="lr_schedule .* must take"):
        net.fit(X, y, epochs=2, lr_schedule=lambda a, b, c, d: 0.1)
    assert net.epochs_trained == 0 and np.array_equal(net._params, before)


# ---------------------------------------------------------------- sparse input
def test_sparse_matrices_and_arrays_train_like_their_dense_rows():
    """scipy.sparse inputs were refused until issue 14; now every kind trains and predicts
    as its dense rows do (tests/test_sparse_inputs.py holds the rest)."""
    sparse = pytest.importorskip("scipy.sparse")
    X, y = blobs()
    dense = steepest.Network([3, 4, 2], seed=0)
    dense.fit(X, y, epochs=2)
    for make in (sparse.csr_matrix, sparse.csr_array, sparse.coo_matrix):
        net = steepest.Network([3, 4, 2], seed=0)
        net.fit(make(X), y, epochs=2)
        np.testing.assert_array_equal(net._params, dense._params)
        np.testing.assert_array_equal(net.predict(make(X)), dense.predict(X))


# ---------------------------------------------------------------- pickling
def test_a_network_pickled_for_cuda_loads_on_the_cpu_without_a_gpu(monkeypatch):
    from steepest.kernels import _cuda

    X, y = blobs()
    net = steepest.Network([3, 4, 2], seed=0, device="cpu")
    net.fit(X, y, epochs=2, learning_rate=0.5)
    net.device = "cuda"  # as if built with device="cuda" on a GPU machine
    data = pickle.dumps(net)
    monkeypatch.setattr(_cuda, "unavailable_reason", lambda: "no CUDA GPU found")
    with pytest.warns(RuntimeWarning, match="pickled with device='cuda'.*runs on the CPU"):
        other = pickle.loads(data)
    assert other.device == "cpu" and other.backend_device == "cpu"
    np.testing.assert_array_equal(other.predict_proba(X), net.predict_proba(X))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a CPU network unpickles silently
        pickle.loads(pickle.dumps(other))


# ---------------------------------------------------------------- documentation
def test_the_network_docstring_names_every_loss_output_and_activation():
    from steepest.models.tables import HIDDEN_ACTIVATIONS, INITIALIZERS, LOSSES, OUTPUT_ACTIVATIONS

    doc = steepest.Network.__doc__
    for table in (LOSSES, OUTPUT_ACTIVATIONS, HIDDEN_ACTIVATIONS, INITIALIZERS):
        missing = [name for name in table if f'"{name}"' not in doc]
        assert not missing, f"help(steepest.Network) does not mention {missing}"
