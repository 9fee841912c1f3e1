"""The data set registry (no network) and the reproducible validation split."""

import gzip
import hashlib
import os
import shutil

import numpy as np
import pytest

import steepest
from steepest.data import registry
from steepest.data.idx import IDXError
from steepest.data.registry import (
    DATASETS,
    IDXDataset,
    IDXFile,
    dataset_dir,
    get_dataset_spec,
    load_dataset,
    register_dataset,
    train_validation_split,
    verify_dataset,
)


def test_registry_lists_the_three_data_sets_with_checksums():
    assert {"mnist", "fashion_mnist", "kmnist"} <= set(DATASETS)
    for name in ("fashion_mnist", "kmnist"):
        spec = DATASETS[name]
        assert spec.shipped is None and spec.mirrors
        for file in spec.files.values():
            digest = file.sha256 or file.archive_sha256
            assert len(digest) == 64 and int(digest, 16) >= 0
    assert get_dataset_spec("Fashion-MNIST") is DATASETS["fashion_mnist"]
    with pytest.raises(ValueError, match="unknown data set 'cifar'.*'kmnist'"):
        get_dataset_spec("cifar")


def test_shipped_mnist_matches_the_published_uncompressed_checksums():
    digests = verify_dataset("mnist")
    spec = DATASETS["mnist"]
    assert digests == {f.name: f.sha256 for f in spec.files.values()}


def test_load_dataset_mnist_is_load_mnist():
    X, y, Xt, yt = load_dataset("mnist", verbose=0)
    X2, y2, Xt2, yt2 = steepest.load_mnist()
    assert X.shape == (60000, 784) and Xt.shape == (10000, 784)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    np.testing.assert_array_equal(Xt, Xt2)
    np.testing.assert_array_equal(yt, yt2)


def test_public_names_are_lazy_and_reachable():
    for name in ("load_dataset", "load_fashion_mnist", "load_kmnist", "train_validation_split",
                 "DownloadError", "ChecksumError"):
        assert getattr(steepest, name) is not None


def test_download_false_names_the_directory(tmp_path):
    with pytest.raises(IDXError, match="download=False") as info:
        load_dataset("kmnist", directory=tmp_path, download=False)
    assert str(tmp_path) in str(info.value)


def test_cache_directory_of_a_downloaded_set(monkeypatch, tmp_path):
    monkeypatch.setenv("STEEPEST_DATA", str(tmp_path))
    assert dataset_dir("fashion-mnist") == os.path.join(str(tmp_path), "fashion_mnist")
    assert dataset_dir("kmnist", tmp_path / "x") == str(tmp_path / "x")


def test_hand_placed_files_are_used_and_checked_for_shape(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "DATASETS", dict(registry.DATASETS))
    rng = np.random.default_rng(3)

    def idx(array):
        return (bytes([0, 0, 8, array.ndim]) + np.array(array.shape, ">u4").tobytes()
                + array.astype(np.uint8).tobytes())

    raw = {"train-images-idx3-ubyte": idx(rng.integers(0, 256, (6, 28, 28))),
           "train-labels-idx1-ubyte": idx(rng.integers(0, 3, 6)),
           "t10k-images-idx3-ubyte": idx(rng.integers(0, 256, (4, 28, 28))),
           "t10k-labels-idx1-ubyte": idx(rng.integers(0, 3, 4))}
    for name, data in raw.items():  # one archive, the others uncompressed
        if name.startswith("t10k-images"):
            (tmp_path / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (tmp_path / name).write_bytes(data)
    files = {n: IDXFile(n, sha256=hashlib.sha256(d).hexdigest()) for n, d in raw.items()}
    spec = register_dataset(IDXDataset(
        "three", "", "", "", classes=("a", "b", "c"), n_train=6, n_test=4,
        train_images=files["train-images-idx3-ubyte"],
        train_labels=files["train-labels-idx1-ubyte"],
        test_images=files["t10k-images-idx3-ubyte"], test_labels=files["t10k-labels-idx1-ubyte"]))
    X, y, Xt, yt = load_dataset("three", directory=tmp_path, download=False)
    assert X.shape == (6, 784) and Xt.shape == (4, 784) and y.max() < 3
    assert verify_dataset("three", tmp_path) == {n: f.sha256 for n, f in files.items()}
    # a set that claims more samples than its own (cached) files hold is refused; a directory
    # the user names may hold any number (a subset), so the same files load from there
    register_dataset(IDXDataset(**{**spec.__dict__, "n_train": 7}))
    assert load_dataset("three", directory=tmp_path, download=False)[0].shape == (6, 784)
    monkeypatch.setenv("STEEPEST_DATA", str(tmp_path / "cache"))
    (tmp_path / "cache" / "three").mkdir(parents=True)
    for name in os.listdir(tmp_path):
        if name != "cache":
            shutil.copy(tmp_path / name, tmp_path / "cache" / "three" / name)
    with pytest.raises(IDXError, match="6 images and 6 labels; three has 7"):
        load_dataset("three", download=False)


def test_register_refuses_a_download_without_checksum():
    with pytest.raises(ValueError, match="no checksum"):
        register_dataset(IDXDataset("x", "", "", "", ("a",), 1, 1,
                                    train_images=IDXFile("a"), train_labels=IDXFile("b"),
                                    test_images=IDXFile("c"), test_labels=IDXFile("d")))


# ---------------------------------------------------------------- train_validation_split
def test_split_is_reproducible_disjoint_and_complete():
    rng = np.random.default_rng(0)
    X = np.arange(103 * 3).reshape(103, 3).astype(np.float32)
    y = rng.integers(0, 5, 103)
    Xa, ya, Xv, yv = train_validation_split(X, y, 0.2, seed=7)
    Xb, yb, Xw, yw = train_validation_split(X, y, 0.2, seed=7)
    np.testing.assert_array_equal(Xa, Xb)
    np.testing.assert_array_equal(Xv, Xw)
    assert Xv.shape == (21, 3) and Xa.shape == (82, 3)
    rows = np.concatenate([Xa[:, 0], Xv[:, 0]]) // 3
    assert sorted(rows.astype(int)) == list(range(103))  # each row exactly once
    np.testing.assert_array_equal(ya, y[(Xa[:, 0] // 3).astype(int)])  # pairs kept together
    np.testing.assert_array_equal(yv, y[(Xv[:, 0] // 3).astype(int)])
    _, _, Xo, _ = train_validation_split(X, y, 0.2, seed=8)
    assert not np.array_equal(Xo, Xv)


@pytest.mark.parametrize("fraction", [np.float32(0.2), np.float64(0.2), np.int64(0) + 0.2])
def test_split_takes_every_real_number_type(fraction):
    X, y = np.arange(20.0).reshape(10, 2), np.arange(10)
    expected = train_validation_split(X, y, 0.2, seed=3)
    for got, want in zip(train_validation_split(X, y, fraction, seed=3), expected):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5, "0.2", True, np.nan])
def test_split_rejects_bad_fractions(fraction):
    with pytest.raises(ValueError, match="validation_fraction"):
        train_validation_split(np.zeros((10, 2)), np.zeros(10), fraction)


def test_split_rejects_too_few_samples_and_mismatched_rows():
    with pytest.raises(ValueError, match="at least one"):
        train_validation_split(np.zeros((3, 2)), np.zeros(3), 0.1)
    with pytest.raises(ValueError, match="same number of rows"):
        train_validation_split(np.zeros((3, 2)), np.zeros(4), 0.5)
