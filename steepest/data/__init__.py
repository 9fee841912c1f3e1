"""Data sets: the IDX reader and MNIST, shipped with the package so training runs offline."""

from .idx import IDXError, read_idx
from .mnist import load_mnist

__all__ = ["IDXError", "read_idx", "load_mnist"]
