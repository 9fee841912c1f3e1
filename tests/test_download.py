"""The downloader and the registry against a real HTTP server on 127.0.0.1.

The server (http.server in a thread, port 0) serves files from the test's temporary
directory; ``/drop/<name>`` announces the full Content-Length, sends half the body and
closes the connection.  No test here reaches beyond this machine.
"""

import gzip
import hashlib
import http.server
import os
import socket
import threading

import numpy as np
import pytest

from steepest.data import registry
from steepest.data.download import ChecksumError, DownloadError, cache_dir, fetch
from steepest.data.registry import IDXDataset, IDXFile, load_dataset, register_dataset


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass

    def do_GET(self):
        self.server.requests.append(self.path)
        if self.path.startswith("/drop/"):
            with open(os.path.join(self.directory, self.path[len("/drop/"):]), "rb") as handle:
                body = handle.read()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True  # the rest never comes
            return
        super().do_GET()


@pytest.fixture
def server(tmp_path, monkeypatch):
    """(base URL, directory served, list of requested paths)."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    served = tmp_path / "served"
    served.mkdir()

    def handler(*args, **kwargs):
        return _Handler(*args, directory=str(served), **kwargs)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", served, httpd.requests
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _sha(data):
    return hashlib.sha256(data).hexdigest()


def _leftovers(directory):
    return sorted(os.listdir(directory)) if os.path.isdir(directory) else []


def test_good_file_is_downloaded_verified_and_decompressed(server, tmp_path):
    base, served, requests = server
    content = np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
    archive = gzip.compress(content)
    (served / "blob.gz").write_bytes(archive)
    target = tmp_path / "cache" / "sub" / "blob"
    path = fetch(f"{base}/blob.gz", target, sha256=_sha(content), archive_sha256=_sha(archive),
                 gunzip=True, verbose=0)
    assert path == str(target)
    assert target.read_bytes() == content
    assert _leftovers(target.parent) == ["blob"]  # no temporary file left behind
    # a second call finds the file and does not download again
    fetch(f"{base}/blob.gz", target, sha256=_sha(content), gunzip=True, verbose=0)
    assert requests == ["/blob.gz"]


def test_progress_bar_is_silent_when_output_is_not_a_terminal(server, tmp_path, capsys):
    base, served, _ = server
    content = os.urandom(100_000)
    (served / "blob.bin").write_bytes(content)
    fetch(f"{base}/blob.bin", tmp_path / "blob.bin", sha256=_sha(content), verbose=1)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""  # captured streams are not terminals
    assert (tmp_path / "blob.bin").read_bytes() == content


def test_plain_file_without_gunzip(server, tmp_path):
    base, served, _ = server
    content = b"steepest" * 1000
    (served / "plain.bin").write_bytes(content)
    target = tmp_path / "plain.bin"
    fetch(f"{base}/plain.bin", target, sha256=_sha(content), verbose=0)
    assert target.read_bytes() == content


@pytest.mark.parametrize("which", ["archive", "uncompressed"])
def test_corrupted_file_is_refused_and_nothing_is_kept(server, tmp_path, which):
    base, served, _ = server
    content = bytes(range(256)) * 100
    archive = gzip.compress(content)
    (served / "blob.gz").write_bytes(archive)
    wrong = _sha(b"something else")
    expected = {"archive_sha256": wrong} if which == "archive" else {"sha256": wrong}
    cache = tmp_path / "cache"
    with pytest.raises(ChecksumError, match="SHA-256 mismatch") as info:
        fetch(f"{base}/blob.gz", cache / "blob", gunzip=True, verbose=0, **expected)
    assert wrong in str(info.value) and f"{base}/blob.gz" in str(info.value)
    assert _leftovers(cache) == []


def test_damaged_gzip_stream_is_refused(server, tmp_path):
    base, served, _ = server
    archive = bytearray(gzip.compress(bytes(range(256)) * 400))
    archive[len(archive) // 2:] = archive[len(archive) // 2:][::-1]  # scramble the back half
    archive = bytes(archive)
    (served / "bad.gz").write_bytes(archive)
    cache = tmp_path / "cache"
    with pytest.raises(ChecksumError, match="gzip"):
        fetch(f"{base}/bad.gz", cache / "bad", archive_sha256=_sha(archive), gunzip=True,
              verbose=0)
    assert _leftovers(cache) == []


def test_dropped_connection_is_an_error_and_leaves_nothing(server, tmp_path):
    base, served, requests = server
    content = os.urandom(200_000)
    (served / "big.bin").write_bytes(content)
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError, match="connection dropped") as info:
        fetch(f"{base}/drop/big.bin", cache / "big.bin", sha256=_sha(content), verbose=0)
    assert not isinstance(info.value, ChecksumError)
    assert f"{base}/drop/big.bin" in str(info.value)
    assert "200000" in str(info.value)  # how much was announced
    assert _leftovers(cache) == []
    assert requests == ["/drop/big.bin"]


def test_next_mirror_is_tried_after_a_failure(server, tmp_path):
    base, served, requests = server
    content = b"mirror" * 500
    (served / "file.bin").write_bytes(content)
    target = tmp_path / "file.bin"
    fetch([f"{base}/missing/file.bin", f"{base}/file.bin"], target, sha256=_sha(content),
          verbose=0)
    assert target.read_bytes() == content
    assert requests == ["/missing/file.bin", "/file.bin"]


def _closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_offline_error_names_the_url_and_the_directory(tmp_path, monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(var, raising=False)
    url = f"http://127.0.0.1:{_closed_port()}/data/train-images-idx3-ubyte.gz"
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError) as info:
        fetch(url, cache / "train-images-idx3-ubyte", sha256="0" * 64, gunzip=True,
              timeout=5, verbose=0)
    message = str(info.value)
    assert url in message
    assert str(cache) in message
    assert "train-images-idx3-ubyte.gz" in message and "by other means" in message
    assert _leftovers(cache) == []


def test_unverified_download_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unverified"):
        fetch("http://127.0.0.1:9/x", tmp_path / "x")


def test_cache_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("STEEPEST_DATA", str(tmp_path / "mine"))
    assert cache_dir() == str(tmp_path / "mine")
    monkeypatch.delenv("STEEPEST_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if os.name == "posix" and not os.uname().sysname == "Darwin":
        assert cache_dir() == str(tmp_path / "xdg" / "steepest")


# ---------------------------------------------------------------- the registry, served locally
def _idx(array):
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def _tiny_dataset(served, rng, n_train=40, n_test=12):
    """Write a tiny IDX data set (gzipped) into ``served``; returns (spec, arrays)."""
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
              "train-labels-idx1-ubyte": rng.integers(0, 10, n_train),
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
              "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test)}
    files = {}
    for name, array in arrays.items():
        raw = _idx(array)
        archive = gzip.compress(raw)
        (served / (name + ".gz")).write_bytes(archive)
        files[name] = IDXFile(name, sha256=_sha(raw), archive_sha256=_sha(archive))
    spec = IDXDataset(name="tiny_test_set", description="test", homepage="", license="",
                      classes=tuple("abcdefghij"), n_train=n_train, n_test=n_test,
                      train_images=files["train-images-idx3-ubyte"],
                      train_labels=files["train-labels-idx1-ubyte"],
                      test_images=files["t10k-images-idx3-ubyte"],
                      test_labels=files["t10k-labels-idx1-ubyte"],
                      mirrors=("http://127.0.0.1:9/never-used/",))
    return spec, arrays


@pytest.fixture
def tiny(server, monkeypatch):
    base, served, requests = server
    monkeypatch.setattr(registry, "DATASETS", dict(registry.DATASETS))
    spec, arrays = _tiny_dataset(served, np.random.default_rng(1))
    register_dataset(spec)
    return base, served, requests, spec, arrays


def test_registry_downloads_through_the_base_url_override(tiny, tmp_path, monkeypatch):
    base, _, requests, spec, arrays = tiny
    monkeypatch.setenv("STEEPEST_DATA", str(tmp_path / "cache"))
    X, y, Xt, yt = load_dataset(spec.name, base_url=base, verbose=0)
    assert X.dtype == np.float32 and X.shape == (40, 784) and Xt.shape == (12, 784)
    assert X.min() >= 0 and X.max() <= 1
    np.testing.assert_array_equal(np.rint(X * 255),
                                  arrays["train-images-idx3-ubyte"].reshape(40, -1))
    np.testing.assert_array_equal(y, arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(yt, arrays["t10k-labels-idx1-ubyte"])
    stored = tmp_path / "cache" / spec.name
    assert sorted(os.listdir(stored)) == sorted(arrays)  # decompressed, nothing else
    assert len(requests) == 4
    # cached: a second load makes no request
    load_dataset(spec.name, base_url=base, verbose=0)
    assert len(requests) == 4


def test_registry_base_url_from_environment(tiny, tmp_path, monkeypatch):
    base, _, requests, spec, _ = tiny
    monkeypatch.setenv("STEEPEST_DATA_URL", base)
    X, *_ = load_dataset(spec.name, directory=tmp_path / "here", verbose=0)
    assert X.shape == (40, 784)
    assert sorted(requests) == sorted("/" + f.archive for f in spec.files.values())


def test_registry_refuses_a_tampered_mirror_and_keeps_nothing(tiny, tmp_path):
    base, served, _, spec, _ = tiny
    path = served / spec.test_labels.archive
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-1] + b"\x09"))
    with pytest.raises(ChecksumError):
        load_dataset(spec.name, directory=tmp_path / "d", base_url=base, verbose=0)
    assert spec.test_labels.name not in os.listdir(tmp_path / "d")


def test_real_fashion_mnist_checksums_reject_other_files(server, tmp_path):
    """The real registry entry, pointed at the local server: the published checksums hold."""
    base, served, requests = server
    _tiny_dataset(served, np.random.default_rng(2))
    with pytest.raises(ChecksumError, match="3aede38d"):
        load_dataset("fashion_mnist", directory=tmp_path / "fm", base_url=base, verbose=0)
    assert requests == ["/train-images-idx3-ubyte.gz"]
    assert _leftovers(tmp_path / "fm") == []


def test_download_dataset_fetches_mnist_into_a_named_directory_on_request(server, tmp_path):
    """Loading never downloads MNIST (it ships); ``download_dataset`` does, verified."""
    from importlib import resources

    from steepest.data.idx import IDXError
    from steepest.data.registry import download_dataset

    base, served, requests = server
    shipped = resources.files("steepest.data") / "mnist"
    spec = registry.DATASETS["mnist"]
    target = tmp_path / "mine"
    with pytest.raises(IDXError, match="not downloaded when loading"):
        load_dataset("mnist", directory=target, base_url=base, verbose=0)
    assert requests == [] and not target.exists()
    for file in spec.files.values():
        (served / file.archive).write_bytes((shipped / file.archive).read_bytes())
    assert download_dataset("mnist", target, base_url=base, verbose=0) == str(target)
    assert sorted(os.listdir(target)) == sorted(f.name for f in spec.files.values())
    X, y, Xt, yt = load_dataset("mnist", directory=target, verbose=0)
    assert X.shape == (60000, 784) and Xt.shape == (10000, 784)
