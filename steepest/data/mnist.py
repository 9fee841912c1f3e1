"""MNIST, loaded from the copy shipped inside the package or from a directory of IDX files."""

import os
from importlib import resources

import numpy as np

from .idx import IDXError, read_idx

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
ENV_VAR = "STEEPEST_MNIST_DIR"


def _default_dir():
    return os.environ.get(ENV_VAR) or str(resources.files("steepest.data") / "mnist")


def _find(directory, stem):
    for name in (stem + ".gz", stem):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return path
    raise IDXError(f"MNIST file {stem}(.gz) not found in {directory}")


def _load_pair(directory, images_stem, labels_stem):
    images_path = _find(directory, images_stem)
    images = read_idx(images_path, expected_ndim=3)
    labels = read_idx(_find(directory, labels_stem), expected_ndim=1)
    if images.shape[0] != labels.shape[0]:
        raise IDXError(f"{images_path}: {images.shape[0]} images but {labels.shape[0]} labels")
    if labels.size and labels.max() > 9:
        raise IDXError(f"{directory}/{labels_stem}: label {labels.max()} outside 0..9")
    X = images.reshape(images.shape[0], -1).astype(np.float32)
    X *= np.float32(1.0 / 255.0)
    return X, labels.astype(np.int64)


def load_mnist(directory: str | os.PathLike | None = None,
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Load MNIST as float32 pixels in [0, 1] and integer labels.

    Parameters
    ----------
    directory : str or os.PathLike, optional
        A directory holding the four IDX files (``train-images-idx3-ubyte`` … each raw or
        ``.gz``).  Defaults to ``$STEEPEST_MNIST_DIR`` when set, else the copy shipped with
        the package.

    Returns
    -------
    X_train : float32 (60000, 784)
    y_train : int64 (60000,)
    X_test : float32 (10000, 784)
    y_test : int64 (10000,)

    Raises
    ------
    IDXError
        A file is missing, truncated, has the wrong magic, or images and labels disagree.
    """
    directory = os.fspath(directory) if directory is not None else _default_dir()
    X, y = _load_pair(directory, FILES["train_images"], FILES["train_labels"])
    Xt, yt = _load_pair(directory, FILES["test_images"], FILES["test_labels"])
    return X, y, Xt, yt
