"""MNIST, loaded from the copy shipped inside the package or from a directory of IDX files.

``load_mnist`` is ``load_dataset("mnist")``: one loader, one set of rules (where to look,
which file wins, what a valid set is, what a missing file means), kept in
``steepest.data.registry``.
"""

import os

import numpy as np

from .registry import DATASETS, load_dataset

_MNIST = DATASETS["mnist"]
FILES = {role: file.name for role, file in _MNIST.files.items()}
ENV_VAR = _MNIST.env_var  # "STEEPEST_MNIST_DIR"


def load_mnist(directory: str | os.PathLike | None = None,
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Load MNIST as float32 pixels in [0, 1] and integer labels.

    Parameters
    ----------
    directory : str or os.PathLike, optional
        A directory holding the four IDX files (``train-images-idx3-ubyte`` … each raw or
        ``.gz``; the raw file is read when both are there).  Defaults to
        ``$STEEPEST_MNIST_DIR`` when set, else the copy shipped with the package.  A
        directory you name may hold any number of 28x28 images with matching labels.

    Returns
    -------
    X_train : float32 (60000, 784)
    y_train : int64 (60000,)
    X_test : float32 (10000, 784)
    y_test : int64 (10000,)

    Raises
    ------
    IDXError
        A file is missing (the message names it and the directory; nothing is downloaded or
        created), truncated, has the wrong magic or shape, or images and labels disagree.

    The same as ``load_dataset("mnist", directory)``; see it for the rules.
    """
    return load_dataset("mnist", directory, download=False, verbose=0)
