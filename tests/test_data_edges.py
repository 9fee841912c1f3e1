"""Edge cases of the data layer (issue 18): one MNIST loader, and IDX headers that lie.

``load_mnist(d)`` and ``load_dataset("mnist", d)`` must be the same loader: the same place to
look, the same file when raw and ``.gz`` both exist, the same idea of a valid set, and the
same "not found" for a missing file in a directory the user named, which is never created
and never downloaded into.  No test here reaches the network: ``$STEEPEST_DATA_URL`` points at
a closed local port, so a download attempt fails at once instead of passing unnoticed.
"""

import gzip
import os
import socket

import numpy as np
import pytest

import steepest
from steepest.data import IDXError, read_idx
from steepest.data.registry import load_dataset

NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _idx(array):
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def write_set(directory, rng, n_train=5, n_test=3, image_shape=(28, 28), compress=()):
    """A small MNIST-like set of IDX files in ``directory``; names in ``compress`` get .gz."""
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {NAMES[0]: rng.integers(0, 256, (n_train, *image_shape)),
              NAMES[1]: rng.integers(0, 10, n_train),
              NAMES[2]: rng.integers(0, 256, (n_test, *image_shape)),
              NAMES[3]: rng.integers(0, 10, n_test)}
    for name, array in arrays.items():
        if name in compress:
            (directory / (name + ".gz")).write_bytes(gzip.compress(_idx(array)))
        else:
            (directory / name).write_bytes(_idx(array))
    return arrays


def _closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Any download attempt fails fast (connection refused) rather than reaching a mirror."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("STEEPEST_DATA_URL", f"http://127.0.0.1:{_closed_port()}/")
    monkeypatch.delenv("STEEPEST_MNIST_DIR", raising=False)


LOADERS = {
    "load_mnist": lambda directory=None: steepest.load_mnist(directory),
    "load_dataset": lambda directory=None: load_dataset("mnist", directory, verbose=0),
}


# ---------------------------------------------------------------- (d) a file that is missing
@pytest.mark.parametrize("loader", LOADERS)
def test_a_typo_in_the_mnist_dir_is_not_found_and_never_created(loader, tmp_path, monkeypatch):
    typo = tmp_path / "mnsit"
    monkeypatch.setenv("STEEPEST_MNIST_DIR", str(typo))
    with pytest.raises(IDXError, match="not found") as info:
        LOADERS[loader]()
    message = str(info.value)
    assert str(typo) in message and "STEEPEST_MNIST_DIR" in message
    assert "does not exist" in message
    assert not typo.exists()


@pytest.mark.parametrize("loader", LOADERS)
def test_a_missing_file_in_a_given_directory_is_named_and_not_downloaded(loader, tmp_path, rng):
    write_set(tmp_path, rng)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(IDXError, match="not found") as info:
        LOADERS[loader](tmp_path)
    assert str(tmp_path) in str(info.value) and "t10k-labels-idx1-ubyte" in str(info.value)
    assert sorted(os.listdir(tmp_path)) == before  # no partial download left behind


# ---------------------------------------------------------------- (a) where to look
def test_both_loaders_follow_the_environment_and_the_argument_alike(tmp_path, rng, monkeypatch):
    arrays = write_set(tmp_path / "env", rng, compress=NAMES[1:2])
    write_set(tmp_path / "arg", rng, n_train=4, n_test=2)
    monkeypatch.setenv("STEEPEST_MNIST_DIR", str(tmp_path / "env"))
    for loaded in (steepest.load_mnist(), load_dataset("mnist", verbose=0)):
        np.testing.assert_array_equal(loaded[1], arrays[NAMES[1]])
        np.testing.assert_array_equal(loaded[3], arrays[NAMES[3]])
    # an explicit directory wins over the environment, for both
    for loaded in (steepest.load_mnist(tmp_path / "arg"),
                   load_dataset("mnist", tmp_path / "arg", verbose=0)):
        assert loaded[0].shape == (4, 784) and loaded[2].shape == (2, 784)


# ---------------------------------------------------------------- (b) raw and .gz both there
@pytest.mark.parametrize("loader", LOADERS)
def test_the_uncompressed_file_wins_over_its_archive(loader, tmp_path, rng):
    arrays = write_set(tmp_path, rng)
    stale = rng.integers(0, 10, 3)  # an archive with other labels next to the raw file
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx(stale)))
    y_test = LOADERS[loader](tmp_path)[3]
    np.testing.assert_array_equal(y_test, arrays["t10k-labels-idx1-ubyte"])


# ---------------------------------------------------------------- (c) what a valid set is
@pytest.mark.parametrize("loader", LOADERS)
def test_a_small_consistent_set_in_a_given_directory_loads(loader, tmp_path, rng):
    arrays = write_set(tmp_path, rng, n_train=6, n_test=2, compress=NAMES[2:3])
    X, y, Xt, yt = LOADERS[loader](tmp_path)
    assert X.shape == (6, 784) and Xt.shape == (2, 784)
    assert X.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(np.rint(Xt * 255), arrays[NAMES[2]].reshape(2, -1))


@pytest.mark.parametrize("loader", LOADERS)
def test_images_that_are_not_28_by_28_are_refused(loader, tmp_path, rng):
    write_set(tmp_path, rng, image_shape=(14, 14))
    with pytest.raises(IDXError, match=r"\(14, 14\).*\(28, 28\)") as info:
        LOADERS[loader](tmp_path)
    assert "train-images-idx3-ubyte" in str(info.value)


@pytest.mark.parametrize("loader", LOADERS)
def test_images_and_labels_must_agree_in_number(loader, tmp_path, rng):
    write_set(tmp_path, rng, n_train=5)
    (tmp_path / NAMES[1]).write_bytes(_idx(rng.integers(0, 10, 4)))
    with pytest.raises(IDXError, match="5 images but 4 labels"):
        LOADERS[loader](tmp_path)


@pytest.mark.parametrize("loader", LOADERS)
def test_labels_outside_the_classes_are_refused(loader, tmp_path, rng):
    write_set(tmp_path, rng)
    (tmp_path / NAMES[3]).write_bytes(_idx(np.array([1, 10, 2])))
    with pytest.raises(IDXError, match=r"label 10 outside 0\.\.9"):
        LOADERS[loader](tmp_path)


# ---------------------------------------------------------------- read_idx: headers that lie
def test_dimensions_whose_product_overflows_are_an_idx_error(tmp_path):
    # 65536**4 = 2**64 wraps to 0 in int64 arithmetic: it "matched" an empty body before
    path = tmp_path / "huge"
    path.write_bytes(bytes([0, 0, 0x08, 4]) + np.array([65536] * 4, ">u4").tobytes())
    with pytest.raises(IDXError, match="truncated") as info:
        read_idx(path)
    message = str(info.value)
    assert str(path) in message and str(2 ** 64) in message and "found 0" in message


def test_dimensions_that_overflow_to_the_body_size_are_an_idx_error(tmp_path):
    # 5581 * 989540 * 3340214413 = 2**64 + 4: an int64 product wraps to exactly the 4 bytes
    # of body, so the size check passed and reshape failed without naming the file
    dims = [5581, 989540, 3340214413]
    path = tmp_path / "wraps"
    path.write_bytes(bytes([0, 0, 0x08, len(dims)]) + np.array(dims, ">u4").tobytes()
                     + bytes(4))
    with pytest.raises(IDXError, match="truncated") as info:
        read_idx(path, expected_ndim=3)
    message = str(info.value)
    assert str(path) in message and str(2 ** 64 + 4) in message and "found 4" in message


def test_a_directory_is_an_idx_error_naming_it(tmp_path):
    with pytest.raises(IDXError, match="directory") as info:
        read_idx(tmp_path)
    assert str(tmp_path) in str(info.value)
    assert isinstance(info.value, ValueError)  # IDXError stays a ValueError


def test_a_file_given_as_the_directory_is_named_as_such(tmp_path):
    not_a_dir = tmp_path / "train-images-idx3-ubyte"
    not_a_dir.write_bytes(b"")
    with pytest.raises(IDXError, match="that is not a directory") as info:
        steepest.load_mnist(not_a_dir)
    assert str(not_a_dir) in str(info.value)


def test_an_incomplete_shipped_copy_is_reported_and_never_downloaded_into(monkeypatch):
    """The package directory is no download target: a missing shipped file says reinstall."""
    from steepest.data import registry

    spec = registry.IDXDataset(**{**registry.DATASETS["mnist"].__dict__,
                                  "shipped": "no-such-copy"})
    monkeypatch.setattr(registry, "DATASETS", {**registry.DATASETS, "mnist": spec})
    missing = registry.dataset_dir("mnist")
    with pytest.raises(IDXError, match="reinstall steepest") as info:
        load_dataset("mnist", verbose=0)
    assert missing in str(info.value)
    assert not os.path.exists(missing)
