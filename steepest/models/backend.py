"""The seam between the models and the kernels: a device name -> a kernel set.

This is the only module that decides where work runs.  A ``Backend`` offers the kernel
functions (all with the signatures of ``steepest.kernels.reference``) and the two copies a
model needs: host arrays to the backend's memory, and parameters back to the host.
"""

from dataclasses import dataclass
from types import ModuleType
from typing import Callable

import numpy as np

DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class Backend:
    name: str                    # the device that actually runs: "cpu" or "cuda"
    kernels: ModuleType          # same public names as steepest.kernels.reference
    to_device: Callable          # host ndarray -> array the kernels accept
    to_host: Callable            # (host ndarray out, backend array) -> None


def _identity(array):
    return array


def _copy_into(out, array):
    if out is not array:
        np.copyto(out, array)


def _cpu_backend():
    from ..kernels import cpu

    return Backend("cpu", cpu, _identity, _copy_into)


def get_backend(device="auto"):
    """The kernel set for ``device``: "cpu", "cuda", or "auto" (the CPU in this build).

    Raises
    ------
    ValueError
        ``device`` is not one of "auto", "cpu", "cuda", or "cuda" is not available.
    """
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(map(repr, DEVICES))}; got {device!r}")
    if device == "cuda":
        raise ValueError("device='cuda': this build of steepest has no CUDA kernels yet; "
                         "use device='cpu' or device='auto'")
    return _cpu_backend()
