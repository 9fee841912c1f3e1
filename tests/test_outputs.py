"""How a network reads its outputs: multi-label, binary and regression targets, predictions,
probabilities and accuracy (``steepest.models.outputs``)."""

import numpy as np
import pytest
from helpers import assert_close

import steepest


def multilabel_data(rng, n=300, d=6, k=4):
    """Multi-hot targets: label j is on where a fixed linear function of x is positive."""
    X = rng.standard_normal((n, d)).astype(np.float32)
    Y = (X @ rng.standard_normal((d, k)) > 0.3).astype(np.float32)
    assert not np.all(Y.sum(axis=1) == 1)  # really multi-label, not one-hot
    return X, Y


# ---------------------------------------------------------------- multi-label
def test_multilabel_targets_give_per_label_predictions_and_accuracy(rng):
    X, Y = multilabel_data(rng)
    net = steepest.Network([6, 16, 4], loss="binary_cross_entropy", seed=0)
    assert net.multilabel is None
    hist = net.fit(X, Y, epochs=30, batch_size=10, learning_rate=0.5, validation_data=(X, Y))
    assert net.multilabel is True
    out = net.forward(X)
    predicted = net.predict(X)
    np.testing.assert_array_equal(predicted, (out > 0.5).astype(np.int64))
    assert predicted.shape == Y.shape
    per_label = float(np.mean(predicted == Y))
    result = net.evaluate(X, Y)
    assert result["accuracy"] == pytest.approx(per_label)
    assert result["subset_accuracy"] == pytest.approx(np.mean((predicted == Y).all(axis=1)))
    assert per_label > 0.9 and result["accuracy"] > result["subset_accuracy"]
    assert hist["val_accuracy"][-1] == pytest.approx(per_label)
    assert hist["accuracy"][-1] == pytest.approx(per_label)  # the training rows are X
    assert_close(net.predict_proba(X), out)  # per-label probabilities


def test_multilabel_is_kept_by_save_load_and_pickle(rng, tmp_path):
    import pickle

    X, Y = multilabel_data(rng, n=60)
    net = steepest.Network([6, 5, 4], loss="binary_cross_entropy", seed=0)
    net.fit(X, Y, epochs=1, learning_rate=0.1)
    net.save(tmp_path / "net.npz")
    for other in (steepest.Network.load(tmp_path / "net.npz"), pickle.loads(pickle.dumps(net))):
        assert other.multilabel is True
        np.testing.assert_array_equal(other.predict(X), net.predict(X))


def test_multilabel_can_be_set_and_is_refused_where_it_cannot_mean_anything(rng):
    X, Y = multilabel_data(rng, n=40)
    net = steepest.Network([6, 5, 4], multilabel=True, seed=0)
    assert net.predict(X).shape == (40, 4)
    with pytest.raises(ValueError, match="multi-label network takes 0/1 targets"):
        net.evaluate(X, np.zeros(40, np.int64))
    # a network told it is not multi-label reads multi-hot rows by their argmax
    single = steepest.Network([6, 5, 4], multilabel=False, seed=0)
    single.fit(X, Y, epochs=1, learning_rate=0.1)
    assert single.multilabel is False and single.predict(X).shape == (40,)
    with pytest.raises(ValueError, match="multilabel=True needs"):
        steepest.Network([6, 4], output="softmax", loss="cross_entropy", multilabel=True)
    with pytest.raises(ValueError, match="multilabel=True needs"):
        steepest.Network([6, 1], multilabel=True)
    with pytest.raises(TypeError, match="multilabel must be"):
        steepest.Network([6, 4], multilabel="yes")


def test_one_hot_targets_stay_multiclass(rng):
    X = rng.standard_normal((50, 6)).astype(np.float32)
    labels = rng.integers(0, 4, 50)
    net = steepest.Network([6, 5, 4], loss="binary_cross_entropy", seed=0)
    net.fit(X, np.eye(4, dtype=np.float32)[labels], epochs=1, learning_rate=0.1)
    assert net.multilabel is None and net.predict(X).shape == (50,)
    assert net.evaluate(X, labels)["accuracy"] == np.mean(net.predict(X) == labels)


# ---------------------------------------------------------------- regression targets
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.float64])
def test_an_identity_output_takes_numeric_targets_of_any_dtype_and_shape(rng, dtype):
    X = rng.standard_normal((40, 3)).astype(np.float32)
    target = rng.integers(0, 20, 40).astype(dtype)
    nets = [steepest.Network([3, 4, 1], output="identity", seed=0) for _ in range(3)]
    for net, y in zip(nets, (target, target.reshape(-1, 1), target.astype(np.float32))):
        net.fit(X, y, epochs=2, batch_size=8, learning_rate=1e-3)
    for net in nets[1:]:
        np.testing.assert_array_equal(net._params, nets[0]._params)
    result = nets[0].evaluate(X, target)
    assert "accuracy" not in result and np.isfinite(result["loss"])


# ---------------------------------------------------------------- one output
def binary_data(rng, n=80):
    X = rng.standard_normal((n, 3)).astype(np.float32)
    return X, (X[:, 0] - X[:, 1] > 0).astype(np.int64)


@pytest.mark.parametrize("encode", [lambda y: y.astype(np.float32), lambda y: y.astype(bool),
                                    lambda y: 2 * y - 1, lambda y: (2 * y - 1.0)[:, None]],
                         ids=["float 0/1", "bool", "int -1/+1", "float -1/+1 column"])
def test_one_output_classifier_reads_every_label_encoding(rng, encode):
    X, y = binary_data(rng)
    reference = steepest.Network([3, 4, 1], seed=0)
    reference.fit(X, y, epochs=3, batch_size=8, learning_rate=1.0)
    net = steepest.Network([3, 4, 1], seed=0)
    net.fit(X, encode(y), epochs=3, batch_size=8, learning_rate=1.0)
    np.testing.assert_array_equal(net._params, reference._params)
    result = net.evaluate(X, encode(y))
    assert result == reference.evaluate(X, y) and "accuracy" in result


def test_tanh_output_reads_labels_about_zero(rng):
    X, y = binary_data(rng)
    net = steepest.Network([3, 4, 1], activation="tanh", output="tanh", seed=0)
    net.fit(X, 2 * y - 1, epochs=20, batch_size=8, learning_rate=0.1)
    out = net.forward(X)[:, 0]
    np.testing.assert_array_equal(net.predict(X), (out > 0).astype(np.int64))
    assert out.min() < -0.5  # trained towards -1 for label 0, not towards 0
    assert net.evaluate(X, y)["accuracy"] == np.mean(net.predict(X) == y) > 0.9
    same = steepest.Network([3, 4, 1], activation="tanh", output="tanh", seed=0)
    same.fit(X, y, epochs=20, batch_size=8, learning_rate=0.1)  # 0/1: the same two classes
    np.testing.assert_array_equal(same._params, net._params)


def test_one_output_soft_targets_train_without_accuracy_and_bad_labels_are_refused(rng):
    X, y = binary_data(rng, n=20)
    net = steepest.Network([3, 1], seed=0)
    soft = np.linspace(0.1, 0.9, 20)
    assert "accuracy" not in net.evaluate(X, soft)
    with pytest.raises(ValueError, match="must be 0 and 1"):
        net.fit(X, np.arange(20) % 3)


# ---------------------------------------------------------------- probabilities
@pytest.mark.parametrize("output,loss,width", [
    ("sigmoid", "mse", 4), ("tanh", "mse", 4), ("relu", "mse", 4),
    ("softmax", "cross_entropy", 4), ("sigmoid", "mse", 1), ("tanh", "mse", 1)])
def test_predict_proba_rows_sum_to_one_and_agree_with_predict(rng, output, loss, width):
    X = rng.standard_normal((50, 5)).astype(np.float32)
    net = steepest.Network([5, 6, width], activation="tanh", output=output, loss=loss, seed=1)
    proba = net.predict_proba(X)
    assert proba.shape == (50, max(width, 2)) and proba.dtype == np.float32
    assert_close(proba.sum(axis=1), np.ones(50), rtol=1e-6)
    assert proba.min() >= 0
    np.testing.assert_array_equal(proba.argmax(axis=1), net.predict(X))


def test_predict_proba_of_an_identity_output_is_refused(rng):
    net = steepest.Network([3, 1], output="identity")
    with pytest.raises(ValueError, match="values, not probabilities.*forward"):
        net.predict_proba(np.zeros((2, 3), np.float32))


# ---------------------------------------------------------------- probability losses
@pytest.mark.parametrize("loss,width", [("cross_entropy", 3), ("binary_cross_entropy", 3),
                                        ("binary_cross_entropy", 1)])
def test_cross_entropy_targets_outside_zero_one_are_refused(rng, loss, width):
    X = rng.standard_normal((10, 2)).astype(np.float32)
    net = steepest.Network([2, width], loss=loss, seed=0)
    before = net._params.copy()
    for bad in (np.full((10, width), 2.0), np.full((10, width), -0.5)):
        with pytest.raises(ValueError, match=f"loss '{loss}' needs targets in \\[0, 1\\]"):
            net.fit(X, bad)
        with pytest.raises(ValueError, match="needs targets in"):
            net.evaluate(X, bad)
    np.testing.assert_array_equal(net._params, before)
