"""A registry of IDX image data sets (MNIST and its drop-in relatives) and their loaders.

MNIST ships inside the package and a load never downloads it (``load_mnist`` is
``load_dataset("mnist")``: one loader, whose rules ``load_dataset`` documents).
Fashion-MNIST and KMNIST are downloaded on first use from their public mirrors into the cache
(``$STEEPEST_DATA``, else the user cache directory, see ``steepest.data.download.cache_dir``),
verified by SHA-256, and read with ``steepest.data.idx.read_idx``.  ``train_validation_split``
splits off a validation set reproducibly.

Checksums.  Each file records the SHA-256 of its uncompressed IDX content where a public
source publishes it (MNIST), and the SHA-256 of the ``.gz`` archive the mirrors serve where
that is what is published (Fashion-MNIST, KMNIST: the values used by torchvision and
TensorFlow Datasets).  A download must match every checksum recorded for it.

Not here: the HTTP machinery (``download``), or any data set that is not IDX.
"""

import gzip
import hashlib
import os
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from ..models.validation import check_fraction
from .download import ChecksumError, DownloadError, cache_dir, fetch, sha256_of
from .idx import IDXError, read_idx

# (X_train, y_train, X_test, y_test), or (X_train, y_train, X_val, y_val) for a split
Splits = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

URL_ENV_VAR = "STEEPEST_DATA_URL"


@dataclass(frozen=True)
class IDXFile:
    """One file of a data set: its name once decompressed, its archive name, its checksums."""
    name: str                          # "train-images-idx3-ubyte"
    sha256: str = None                 # of the uncompressed file, where published
    archive_sha256: str = None         # of ``name + ".gz"`` as the mirrors serve it

    @property
    def archive(self):
        return self.name + ".gz"


@dataclass(frozen=True)
class IDXDataset:
    """An image classification data set stored as four IDX files.

    ``mirrors`` are base URLs (tried in order) under which the four ``.gz`` archives live;
    ``shipped`` names the package directory holding a copy, for data that needs no download;
    ``env_var`` names an environment variable that points the loaders at another directory.
    """
    name: str
    description: str
    homepage: str
    license: str
    classes: tuple
    n_train: int
    n_test: int
    image_shape: tuple = (28, 28)
    train_images: IDXFile = None
    train_labels: IDXFile = None
    test_images: IDXFile = None
    test_labels: IDXFile = None
    mirrors: tuple = field(default=())
    shipped: str = None
    env_var: str = None

    @property
    def files(self):
        return {"train_images": self.train_images, "train_labels": self.train_labels,
                "test_images": self.test_images, "test_labels": self.test_labels}


DATASETS = {}


def register_dataset(spec):
    """Add (or replace) ``spec`` in the registry under ``spec.name``; returns ``spec``."""
    if not isinstance(spec, IDXDataset):
        raise TypeError(f"spec must be an IDXDataset; got {type(spec).__name__}")
    for role, file in spec.files.items():
        if not isinstance(file, IDXFile):
            raise ValueError(f"data set {spec.name!r}: {role} must be an IDXFile")
        if spec.shipped is None and file.sha256 is None and file.archive_sha256 is None:
            raise ValueError(f"data set {spec.name!r}: {file.name} has no checksum; "
                             f"downloads are never accepted unverified")
    DATASETS[spec.name] = spec
    return spec


register_dataset(IDXDataset(
    name="mnist",
    description="handwritten digits 0-9 (LeCun, Cortes and Burges)",
    homepage="http://yann.lecun.com/exdb/mnist/",
    license="CC BY-SA 3.0",
    classes=tuple(str(d) for d in range(10)),
    n_train=60000, n_test=10000,
    # SHA-256 of the uncompressed files, as published with several MNIST loaders; the copy
    # shipped in steepest/data/mnist decompresses to exactly these (a test checks).
    train_images=IDXFile("train-images-idx3-ubyte",
                         "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    train_labels=IDXFile("train-labels-idx1-ubyte",
                         "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    test_images=IDXFile("t10k-images-idx3-ubyte",
                        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    test_labels=IDXFile("t10k-labels-idx1-ubyte",
                        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
    mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/",
             "https://storage.googleapis.com/cvdf-datasets/mnist/"),
    shipped="mnist",
    env_var="STEEPEST_MNIST_DIR",
))

register_dataset(IDXDataset(
    name="fashion_mnist",
    description="Zalando article images in 10 classes (Xiao, Rasul and Vollgraf, 2017)",
    homepage="https://github.com/zalandoresearch/fashion-mnist",
    license="MIT",
    classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
             "Sneaker", "Bag", "Ankle boot"),
    n_train=60000, n_test=10000,
    # SHA-256 of the .gz archives (torchvision, TensorFlow Datasets); no public source
    # publishes the uncompressed files' SHA-256.
    train_images=IDXFile("train-images-idx3-ubyte", archive_sha256=(
        "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84")),
    train_labels=IDXFile("train-labels-idx1-ubyte", archive_sha256=(
        "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845")),
    test_images=IDXFile("t10k-images-idx3-ubyte", archive_sha256=(
        "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073")),
    test_labels=IDXFile("t10k-labels-idx1-ubyte", archive_sha256=(
        "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5")),
    mirrors=("https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
             "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"),
))

register_dataset(IDXDataset(
    name="kmnist",
    description="Kuzushiji-MNIST: cursive Japanese hiragana in 10 classes (Clanuwat et al., 2018)",
    homepage="https://github.com/rois-codh/kmnist",
    license="CC BY-SA 4.0",
    classes=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
    n_train=60000, n_test=10000,
    # SHA-256 of the .gz archives (torchvision); the uncompressed SHA-256 is not published.
    train_images=IDXFile("train-images-idx3-ubyte", archive_sha256=(
        "51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4")),
    train_labels=IDXFile("train-labels-idx1-ubyte", archive_sha256=(
        "e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17")),
    test_images=IDXFile("t10k-images-idx3-ubyte", archive_sha256=(
        "edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5")),
    test_labels=IDXFile("t10k-labels-idx1-ubyte", archive_sha256=(
        "20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c")),
    mirrors=("https://codh.rois.ac.jp/kmnist/dataset/kmnist/",
             "http://codh.rois.ac.jp/kmnist/dataset/kmnist/"),
))


def get_dataset_spec(name):
    """The registered ``IDXDataset`` called ``name`` ("fashion-mnist" = "fashion_mnist")."""
    key = name.lower().replace("-", "_") if isinstance(name, str) else name
    if key not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; expected one of "
                         f"{', '.join(map(repr, DATASETS))}")
    return DATASETS[key]


def _shipped_dir(spec):
    from importlib import resources

    return str(resources.files("steepest.data") / spec.shipped)


# The loading rules, one set for every data set and both MNIST entry points (load_mnist is
# load_dataset("mnist")).  A directory is either the data set's own place (the shipped copy,
# or the cache of a downloaded set), whose files must hold the registered sample counts, or
# one the user named (argument or environment variable), which may hold a subset and, for a
# shipped set, is never created or downloaded into.  See _locate, _existing, _path_of and
# _read_pair.

@dataclass(frozen=True)
class _Location:
    """A directory to read a data set from, and who chose it."""
    path: str
    named_by: str = None  # "the directory argument" or "$VAR"; None: the set's own place

    @property
    def own(self):
        return self.named_by is None


def _locate(spec, directory):
    """Where to look, first that applies: the argument, ``spec.env_var``, shipped, cache."""
    if directory is not None:
        return _Location(os.fspath(directory), "the directory argument")
    override = os.environ.get(spec.env_var) if spec.env_var else None
    if override:  # set but empty counts as unset, as for $STEEPEST_DATA
        return _Location(os.path.expanduser(override), f"${spec.env_var}")
    if spec.shipped is not None:
        return _Location(_shipped_dir(spec))
    return _Location(os.path.join(cache_dir(), spec.name))


def dataset_dir(name, directory=None):
    """Where the files of data set ``name`` are (or will be) kept.

    ``directory`` when given; else the directory in the set's environment variable
    (``$STEEPEST_MNIST_DIR`` for MNIST) when set; else the shipped copy for a shipped data
    set; else ``cache_dir()/<name>``.
    """
    return _locate(get_dataset_spec(name), directory).path


def _existing(directory, file):
    """Path of ``file`` in ``directory``, or None: the uncompressed file wins over its .gz.

    Uncompressed first everywhere (load, verify, download) because that is what a download
    stores, so a cache and a hand-filled directory read alike.
    """
    for candidate in (file.name, file.archive):
        path = os.path.join(directory, candidate)
        if os.path.exists(path):
            return path
    return None


def _not_found(spec, file, location, why=""):
    notes = [] if location.own else [f"from {location.named_by}"]
    if not os.path.exists(location.path):
        notes.append("the directory does not exist")
    elif not os.path.isdir(location.path):
        notes.append("that is not a directory")
    where = location.path + (f" ({'; '.join(notes)})" if notes else "")
    return IDXError(f"{spec.name}: {file.name} (or {file.archive}) not found in {where}{why}")


def _why_not_downloaded(spec, location):
    """The end of the "not found" message: why a load did not fetch the file."""
    if spec.shipped is None:
        return " and download=False"
    if location.own:
        return "; the copy shipped with steepest is incomplete: reinstall steepest"
    # a shipped set never needs the network, so a missing file here is a wrong path (a
    # typo): say so rather than create the directory and download into it
    return (f"; {spec.name} ships with steepest and is not downloaded when loading: check "
            f"the path, or fetch the files into it with "
            f"steepest.data.registry.download_dataset({spec.name!r}, directory)")


def _path_of(spec, file, location, download, base_url, verbose):
    """Path of ``file`` at ``location``, downloading it (verified) there when allowed."""
    path = _existing(location.path, file)
    if path is not None:
        return path
    if not download:
        raise _not_found(spec, file, location, _why_not_downloaded(spec, location))
    mirrors = [base_url] if base_url else list(spec.mirrors)
    urls = [m.rstrip("/") + "/" + file.archive for m in mirrors]
    return fetch(urls, os.path.join(location.path, file.name), sha256=file.sha256,
                 archive_sha256=file.archive_sha256, gunzip=True, verbose=verbose)


def download_dataset(name, directory=None, base_url=None, verbose=1):
    """Download the four files of ``name`` into its directory if missing; returns it.

    This is the explicit request to download: it fetches even a shipped set (MNIST) into
    ``directory``, which ``load_dataset`` never does.
    """
    spec = get_dataset_spec(name)
    location = _locate(spec, directory)
    base_url = base_url or os.environ.get(URL_ENV_VAR) or None
    for file in spec.files.values():
        _path_of(spec, file, location, True, base_url, verbose)
    return location.path


def _read_pair(spec, images_path, labels_path, n_expected):
    """One split as (X, y); ``n_expected``: the sample count required, None for any."""
    images = read_idx(images_path, expected_ndim=1 + len(spec.image_shape))
    labels = read_idx(labels_path, expected_ndim=1)
    if images.shape[1:] != tuple(spec.image_shape):
        raise IDXError(f"{images_path}: images of shape {images.shape[1:]}, expected "
                       f"{tuple(spec.image_shape)} for {spec.name}")
    if images.shape[0] != labels.shape[0]:
        raise IDXError(f"{images_path}: {images.shape[0]} images but {labels.shape[0]} labels "
                       f"in {labels_path}")
    if n_expected is not None and images.shape[0] != n_expected:
        raise IDXError(f"{images_path}: {images.shape[0]} images and {labels.shape[0]} labels; "
                       f"{spec.name} has {n_expected}")
    if labels.size and labels.max() >= len(spec.classes):
        raise IDXError(f"{labels_path}: label {labels.max()} outside 0..{len(spec.classes) - 1}")
    X = images.reshape(images.shape[0], -1).astype(np.float32)
    X *= np.float32(1.0 / 255.0)
    return X, labels.astype(np.int64)


def load_dataset(name: str, directory: str | os.PathLike | None = None,
                 base_url: str | None = None, download: bool = True, verbose: int = 1,
                 ) -> Splits:
    """Load a registered IDX data set as float32 pixels in [0, 1] and integer labels.

    Parameters
    ----------
    name : str
        "mnist" (shipped with the package), "fashion_mnist" or "kmnist" (downloaded on first
        use), or any name added with ``register_dataset``.  See ``DATASETS``.
    directory : str or os.PathLike, optional
        A directory of the four IDX files (each raw or ``.gz``).  Without it: the directory
        in the set's environment variable (``$STEEPEST_MNIST_DIR`` for MNIST) when set, else
        the shipped copy (MNIST), else ``<cache>/<name>``, the cache being ``$STEEPEST_DATA``
        or the user cache directory (``~/.cache/steepest`` on Linux).
    base_url : str, optional
        Download from this base URL instead of the registered mirrors (``$STEEPEST_DATA_URL``
        does the same for every data set).  The checksums are checked all the same.
    download : bool
        Download missing files of a downloadable set (not MNIST, which ships: see below);
        False raises ``IDXError`` instead.
    verbose : int
        0: silent; 1: a progress bar while downloading (only when output is a terminal).

    Returns
    -------
    X_train : float32 (n_train, 784)
    y_train : int64 (n_train,)
    X_test : float32 (n_test, 784)
    y_test : int64 (n_test,)

    Raises
    ------
    DownloadError
        Offline or the mirrors failed; the message names the URL and the directory where the
        files may be put by hand.
    ChecksumError
        A downloaded file is not the published one; nothing was kept.
    IDXError
        A file is missing, damaged or has the wrong shape; the message names it.

    Rules (the same for ``load_mnist``, which is ``load_dataset("mnist")``):

    * When a file is there both uncompressed and as ``.gz``, the uncompressed one is read.
    * Every split must be consistent: images of ``image_shape`` (28x28), as many labels as
      images, labels within the classes.  The set's own files (the shipped copy, the cache)
      must also hold the registered number of samples; a directory you name (argument or
      environment variable) may hold any number, so a subset loads.
    * A shipped set is never downloaded when loading: a file missing from a directory you
      named is an ``IDXError`` naming the directory and the file, and the directory is not
      created.  ``download_dataset`` fetches on request.  A downloadable set's missing files
      are downloaded into the directory (created if needed) unless ``download=False``.
    * Downloads are verified by SHA-256; files already in place are read without re-hashing
      them (``verify_dataset`` checks them against the registry on request).
    """
    spec = get_dataset_spec(name)
    location = _locate(spec, directory)
    download = download and spec.shipped is None
    base_url = base_url or os.environ.get(URL_ENV_VAR) or None
    paths = {role: _path_of(spec, file, location, download, base_url, verbose)
             for role, file in spec.files.items()}
    n_train, n_test = (spec.n_train, spec.n_test) if location.own else (None, None)
    X, y = _read_pair(spec, paths["train_images"], paths["train_labels"], n_train)
    Xt, yt = _read_pair(spec, paths["test_images"], paths["test_labels"], n_test)
    return X, y, Xt, yt


def load_fashion_mnist(directory: str | os.PathLike | None = None, base_url: str | None = None,
                       download: bool = True, verbose: int = 1) -> Splits:
    """Fashion-MNIST (60000 + 10000 images of clothing, 10 classes); see ``load_dataset``."""
    return load_dataset("fashion_mnist", directory, base_url, download, verbose)


def load_kmnist(directory: str | os.PathLike | None = None, base_url: str | None = None,
                download: bool = True, verbose: int = 1) -> Splits:
    """Kuzushiji-MNIST (60000 + 10000 cursive hiragana, 10 classes); see ``load_dataset``."""
    return load_dataset("kmnist", directory, base_url, download, verbose)


def verify_dataset(name, directory=None):
    """Check every file of ``name`` in ``directory`` against the recorded checksums.

    Returns ``{file name: sha256 of the uncompressed file}``.  Raises ``ChecksumError`` on a
    mismatch and ``IDXError`` when a file is missing.  Looks where ``load_dataset`` looks
    and, like it, checks the uncompressed file when both it and its ``.gz`` are there.
    """
    spec = get_dataset_spec(name)
    location = _locate(spec, directory)
    digests = {}
    for file in spec.files.values():
        path = _existing(location.path, file)
        if path is None:
            raise _not_found(spec, file, location)
        if path == os.path.join(location.path, file.name):
            digest = sha256_of(path)
        else:
            if file.archive_sha256 is not None and sha256_of(path) != file.archive_sha256:
                raise ChecksumError(f"{path}: SHA-256 differs from the published "
                                    f"{file.archive_sha256}")
            with gzip.open(path, "rb") as handle:
                digest = hashlib.sha256(handle.read()).hexdigest()
        if file.sha256 is not None and digest != file.sha256:
            raise ChecksumError(f"{location.path}/{file.name}: SHA-256 of the uncompressed "
                                f"data is {digest}, expected {file.sha256}")
        digests[file.name] = digest
    return digests


def train_validation_split(X: ArrayLike, y: ArrayLike, validation_fraction: float = 0.1,
                           seed: int | None = None,
                           ) -> Splits:
    """Split (X, y) into a training and a validation part, reproducibly.

    Parameters
    ----------
    X : array (n, ...)
    y : array (n, ...)
    validation_fraction : float
        Share of the samples in the validation part, in (0, 1); rounded to a whole number of
        samples, at least one in each part.
    seed : int or numpy.random.Generator, optional
        The same seed gives the same split.

    Returns
    -------
    X_train, y_train, X_val, y_val
        In the order ``load_dataset`` uses; the rows are shuffled before the split.
    """
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim == 0 or y.ndim == 0 or X.shape[0] != y.shape[0]:
        raise ValueError(f"X and y must have the same number of rows; got shapes "
                         f"{X.shape} and {y.shape}")
    validation_fraction = check_fraction(validation_fraction, "validation_fraction")
    n = X.shape[0]
    n_val = int(round(validation_fraction * n))
    if n_val < 1 or n_val > n - 1:
        raise ValueError(f"validation_fraction={validation_fraction} of {n} samples leaves "
                         f"{n_val} for validation and {n - n_val} for training; each needs "
                         f"at least one")
    order = np.random.default_rng(seed).permutation(n)
    val, train = order[:n_val], order[n_val:]
    return X[train], y[train], X[val], y[val]


__all__ = ["IDXFile", "IDXDataset", "DATASETS", "register_dataset", "get_dataset_spec",
           "dataset_dir", "download_dataset", "load_dataset", "load_fashion_mnist",
           "load_kmnist", "verify_dataset", "train_validation_split", "DownloadError",
           "ChecksumError"]
