"""The IDX reader and the shipped MNIST."""

import gzip
import hashlib
import struct
from importlib import resources

import numpy as np
import pytest

import steepest
from steepest.data import IDXError, read_idx

SHIPPED = resources.files("steepest.data") / "mnist"


def write_idx(path, array, compress=False, magic_type=0x08):
    raw = bytes([0, 0, magic_type, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    raw += array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


def test_shipped_files_match_their_checksums():
    for line in (SHIPPED / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        assert hashlib.sha256((SHIPPED / name).read_bytes()).hexdigest() == digest, name
    for line in (SHIPPED / "SHA256SUMS.raw").read_text().splitlines():
        digest, name = line.split()
        raw = gzip.decompress((SHIPPED / (name + ".gz")).read_bytes())
        assert hashlib.sha256(raw).hexdigest() == digest, name


@pytest.mark.parametrize("compress", [False, True])
def test_round_trip(tmp_path, compress):
    array = np.random.default_rng(0).integers(0, 256, (7, 5, 3))
    back = read_idx(write_idx(tmp_path / "a.idx", array, compress), expected_ndim=3)
    assert np.array_equal(back, array)


def test_errors_name_the_file(tmp_path):
    good = write_idx(tmp_path / "x", np.ones((4, 2, 2)))
    raw = good.read_bytes()
    cases = {
        "missing": (None, "not found"),
        "magic": (b"\x08\x03" + raw[2:], "wrong magic"),
        "dtype": (raw[:2] + b"\x0d" + raw[3:], "not supported"),
        "short": (raw[:-3], "truncated"),
        "long": (raw + b"\0", "longer than its header"),
        "header": (raw[:6], "truncated header"),
        "gz": (gzip.compress(raw)[:-10], "gzip"),
    }
    for name, (content, match) in cases.items():
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content)
        with pytest.raises(IDXError, match=match) as err:
            read_idx(path, expected_ndim=3)
        assert str(path) in str(err.value)
    with pytest.raises(IDXError, match="expected 1 dimensions"):
        read_idx(good, expected_ndim=1)


def test_load_mnist_from_directory_and_env(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    for prefix, n in (("train", 5), ("t10k", 3)):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n), True)
    X, y, Xt, yt = steepest.load_mnist(tmp_path)
    assert X.shape == (5, 784) and Xt.shape == (3, 784) and y.shape == (5,)
    assert X.dtype == np.float32 and 0 <= X.min() and X.max() <= 1
    monkeypatch.setenv("STEEPEST_MNIST_DIR", str(tmp_path))
    assert steepest.load_mnist()[0].shape == (5, 784)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(4))
    with pytest.raises(IDXError, match="3 images but 4 labels"):
        steepest.load_mnist(tmp_path)


def test_shipped_mnist():
    X, y, Xt, yt = steepest.load_mnist()
    assert X.shape == (60000, 784) and Xt.shape == (10000, 784)
    assert X.dtype == np.float32 and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    assert np.array_equal(np.bincount(yt), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
    assert list(y[:10]) == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
