"""The public model API: construction, training dispatch, evaluation, determinism, files."""

import numpy as np
import pytest
from helpers import assert_close

import steepest
from steepest.kernels import codes, reference


def toy_data(rng, n=64, n_in=6, n_classes=3):
    X = rng.standard_normal((n, n_in)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0.5)
    return X, np.minimum(y, n_classes - 1)


def test_n_parameters_of_the_tutorial_networks():
    assert steepest.Network([784, 16, 16, 10]).n_parameters == 13002
    assert steepest.Network([784, 30, 10]).n_parameters == 23860


def test_weights_and_biases_shapes_and_dtype():
    net = steepest.Network([5, 4, 3], seed=1)
    assert [W.shape for W in net.weights] == [(4, 5), (3, 4)]
    assert [b.shape for b in net.biases] == [(4,), (3,)]
    assert all(a.dtype == np.float32 for a in net.weights + net.biases)


def test_output_defaults_follow_the_loss():
    assert steepest.Network([3, 2], loss="mse").output == "sigmoid"
    assert steepest.Network([3, 2], loss="cross_entropy").output == "softmax"


def test_fit_matches_reference_minibatch_epoch(rng):
    # from_params → fit(shuffle=False) runs exactly the documented algorithm
    X, y = toy_data(rng, n=23)
    net = steepest.Network([6, 5, 3], activation="tanh", loss="cross_entropy", seed=3)
    start = net._params.astype(np.float64)
    net.fit(X, y, epochs=1, batch_size=4, learning_rate=0.2, shuffle=False)
    sizes = np.array([6, 5, 3])
    acts = np.array([codes.TANH, codes.SOFTMAX])
    reference.sgd_epoch_minibatch(start, sizes, acts, codes.CROSS_ENTROPY, X, np.eye(3)[y],
                                  np.arange(23), 4, 0.2)
    assert_close(net._params, start, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("batch_size", [1, 7, None, 1000])
def test_fit_is_deterministic_from_params(rng, batch_size):
    X, y = toy_data(rng)
    base = steepest.Network([6, 8, 3], seed=5)
    runs = []
    for _ in range(2):
        net = steepest.Network.from_params([W.copy() for W in base.weights],
                                           [b.copy() for b in base.biases], seed=11)
        net.fit(X, y, epochs=3, batch_size=batch_size, learning_rate=0.5, shuffle=True)
        runs.append(net._params.copy())
    assert np.array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], base._params)


def test_same_seed_same_weights_and_training():
    X = np.random.default_rng(0).random((50, 4)).astype(np.float32)
    y = np.arange(50) % 2
    a, b = steepest.Network([4, 3, 2], seed=9), steepest.Network([4, 3, 2], seed=9)
    assert np.array_equal(a._params, b._params)
    a.fit(X, y, epochs=2, batch_size=5, learning_rate=1.0)
    b.fit(X, y, epochs=2, batch_size=5, learning_rate=1.0)
    assert np.array_equal(a._params, b._params)


def test_full_batch_is_one_step_per_epoch(rng):
    X, y = toy_data(rng, n=30)
    net = steepest.Network([6, 4, 3], seed=2)
    start = net._params.astype(np.float64)
    net.fit(X, y, epochs=1, batch_size=None, learning_rate=0.5)
    reference.gd_step_full_batch(start, np.array([6, 4, 3]), np.array([1, 1]), codes.MSE, X,
                                 np.eye(3)[y], 0.5)
    assert_close(net._params, start, rtol=1e-4, atol=1e-5)


def test_training_lowers_the_loss_and_history_records_it(rng):
    X, y = toy_data(rng, n=200)
    net = steepest.Network([6, 10, 3], activation="relu", loss="cross_entropy", seed=0)
    before = net.evaluate(X, y)
    hist = net.fit(X, y, epochs=5, batch_size=10, learning_rate=0.1, validation_data=(X, y))
    after = net.evaluate(X, y)
    assert after["loss"] < before["loss"]
    assert len(hist) == 5 and hist["epoch"] == [1, 2, 3, 4, 5]
    assert hist["val_loss"][-1] == pytest.approx(after["loss"], rel=1e-5)
    assert hist["val_accuracy"][-1] == after["accuracy"]
    assert all(s > 0 for s in hist["samples_per_s"])
    assert hist.device == "cpu" and hist.to_dict()["device"] == "cpu"


def test_evaluate_predict_and_forward_agree(rng):
    X, y = toy_data(rng, n=40)
    net = steepest.Network([6, 5, 3], seed=4)
    out = net.forward(X)
    assert out.shape == (40, 3) and out.dtype == np.float32
    # sigmoid outputs are not a distribution: predict_proba rescales them to one
    assert_close(net.predict_proba(X), out / out.sum(axis=1, keepdims=True), rtol=1e-6)
    assert np.array_equal(net.predict(X), out.argmax(axis=1))
    result = net.evaluate(X, y)
    Y = np.eye(3)[y]
    assert result["loss"] == pytest.approx(reference.mse_loss(out.astype(np.float64), Y), rel=1e-5)
    assert result["accuracy"] == pytest.approx(np.mean(out.argmax(axis=1) == y))


def test_float_targets_and_regression(rng):
    X = rng.standard_normal((100, 3)).astype(np.float32)
    target = X @ np.array([1.0, -2.0, 0.5], np.float32) + 0.3
    net = steepest.Network([3, 1], output="identity", loss="mse", seed=0)
    net.fit(X, target, epochs=50, batch_size=10, learning_rate=0.05)
    result = net.evaluate(X, target)
    assert "accuracy" not in result and result["loss"] < 1e-3
    assert net.predict(X).shape == (100,)
    assert_close(net.weights[0][0], [1.0, -2.0, 0.5], rtol=0, atol=0.02)


def test_divergence_is_caught_and_weights_restored(rng):
    X, y = toy_data(rng, n=100)
    net = steepest.Network([6, 8, 3], activation="relu", output="identity", loss="mse", seed=0)
    net.fit(X, y, epochs=1, batch_size=10, learning_rate=0.01)
    good = net._params.copy()
    # epochs are counted by the network: the second call's first epoch is epoch 2
    with pytest.raises(steepest.DivergenceError, match=r"epoch 2.*learning_rate=1000000.0") as err:
        net.fit(X, y, epochs=3, batch_size=10, learning_rate=1e6)
    assert err.value.epoch == 2 and err.value.learning_rate == 1e6
    assert np.array_equal(net._params, good) and net.epochs_trained == 1


def test_save_load_round_trip_is_exact(tmp_path, rng):
    X, y = toy_data(rng)
    net = steepest.Network([6, 7, 3], activation="tanh", loss="cross_entropy", seed=8)
    net.fit(X, y, epochs=1, batch_size=8, learning_rate=0.1)
    path = tmp_path / "m.npz"
    net.save(path)
    back = steepest.Network.load(path)
    assert back.sizes == net.sizes and (back.activation, back.output, back.loss) == \
        ("tanh", "softmax", "cross_entropy")
    assert np.array_equal(back._params, net._params)
    assert np.array_equal(back.forward(X), net.forward(X))
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]  # no temporary left behind


def test_load_refuses_non_checkpoints(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="bad.npz"):
        steepest.Network.load(bad)
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(3))
    with pytest.raises(ValueError, match="not a steepest checkpoint"):
        steepest.Network.load(other)


def test_from_params_checks_shapes():
    with pytest.raises(ValueError, match=r"weights\[1\] must have shape \(out, 4\)"):
        steepest.Network.from_params([np.zeros((4, 3)), np.zeros((2, 5))],
                                     [np.zeros(4), np.zeros(2)])
    with pytest.raises(ValueError, match=r"biases\[0\]"):
        steepest.Network.from_params([np.zeros((4, 3))], [np.zeros(3)])


def test_integer_and_non_contiguous_inputs_are_converted(rng):
    X = rng.integers(0, 3, (20, 12))
    net = steepest.Network([6, 3, 2], seed=0)
    out = net.forward(X[:, ::2])  # a strided view of integers
    copied = np.ascontiguousarray(X[:, ::2], dtype=np.float32)
    assert_close(out, net.forward(copied), rtol=0, atol=0)


@pytest.mark.parametrize("optimizer", ["momentum", "adagrad", "rmsprop", "adam"])
def test_fit_with_an_optimizer_matches_the_reference_loop(rng, optimizer):
    from steepest.models.optimizers import get_optimizer

    X, y = toy_data(rng, n=21)
    net = steepest.Network([6, 5, 3], activation="tanh", loss="cross_entropy", seed=3)
    params = net._params.astype(np.float64)
    opt = get_optimizer(optimizer, 0.05)
    state = np.zeros((opt.n_state_slots, params.size))
    step = np.zeros(1, np.int64)
    net.fit(X, y, epochs=1, batch_size=4, learning_rate=0.05, shuffle=False, optimizer=optimizer)
    net.fit(X, y, epochs=1, batch_size=4, learning_rate=0.05, shuffle=False, optimizer=optimizer)
    for _ in range(2):  # the optimiser's state carries over between fit calls
        reference.optimizer_epoch_minibatch(params, state, step, np.array([6, 5, 3]),
                                            np.array([codes.TANH, codes.SOFTMAX]),
                                            codes.CROSS_ENTROPY, opt.code,
                                            opt.hyper().astype(np.float64), X, np.eye(3)[y],
                                            np.arange(21), 4)
    assert step[0] == 12
    assert_close(net._params, params, rtol=1e-4, atol=1e-5)


def test_sgd_fast_path_equals_the_general_optimizer_loop(rng):
    from steepest.models.optimizers import SGD

    X, y = toy_data(rng, n=30)
    fast = steepest.Network([6, 5, 3], seed=1)
    general = steepest.Network([6, 5, 3], seed=1)
    fast.fit(X, y, epochs=2, batch_size=4, learning_rate=0.2)
    # weight decay 1e-30 is 0 in effect but takes the general optimizer loop
    general.fit(X, y, epochs=2, batch_size=4, optimizer=SGD(learning_rate=0.2, weight_decay=1e-30))
    assert_close(general._params, fast._params, rtol=1e-5, atol=1e-6)


def test_optimizer_object_and_learning_rate_conflict_is_refused():
    from steepest.models.optimizers import Adam

    net = steepest.Network([2, 2], seed=0)
    with pytest.raises(ValueError, match="conflicts with"):
        net.fit(np.zeros((3, 2)), [0, 1, 0], optimizer=Adam(learning_rate=0.01), learning_rate=0.1)


def test_pickle_round_trip_keeps_weights_and_shuffling_state(rng):
    import pickle

    X, y = toy_data(rng, n=20)
    net = steepest.Network([6, 4, 3], seed=0)
    net.fit(X, y, epochs=1, batch_size=5, learning_rate=0.3, optimizer="adam")
    copy = pickle.loads(pickle.dumps(net))
    for model in (net, copy):
        model.fit(X, y, epochs=2, batch_size=5, learning_rate=0.3, optimizer="adam")
    assert np.array_equal(net._params, copy._params) and copy.backend_device == "cpu"
