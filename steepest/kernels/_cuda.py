"""The one place that imports ``numba.cuda``, and the numba-free checks that decide whether to.

Everything CUDA in steepest gets its ``cuda`` module from ``load()`` here, so that moving to
another ``cuda.jit`` provider (numba-cuda's successor numba-cuda-mlir, say) is an import
change in this file.  Importing this module does not import numba: the checks below look for
the driver library and the simulator switch with the standard library only, because CPU work
must never pay for (or depend on) numba-cuda.

What a move to numba-cuda-mlir (numba-cuda's maintained successor) would have to replace,
besides the import in ``load``:

- the simulator (``NUMBA_ENABLE_CUDASIM``): numba-cuda-mlir has none, and every CUDA test on a
  machine without a GPU runs on it (``simulator_enabled`` and ``tests/helpers.py``), so those
  tests would keep numba-cuda for the simulator or need a GPU;
- ``cuda.compile_ptx`` and the ``cuda.dispatcher`` type, which ``tests/test_cuda_ptx.py``
  uses to compile every kernel for sm_80 and sm_90 without a GPU;
- the kernel API the kernels use, all standard ``cuda.jit`` surface: ``cuda.jit`` (kernels
  and ``device=True`` functions), ``cuda.grid``, ``threadIdx``/``blockIdx``/``blockDim``,
  ``cuda.syncthreads``, ``cuda.shared.array`` (static, and dynamic with shape 0 sized at
  launch), ``cuda.local.array``, ``cuda.to_device`` and ``cuda.device_array``.

Not here: kernels (``steepest.kernels.cuda``) and the device choice (``steepest.models.backend``).
"""

import ctypes
import functools
import importlib.util
import os
import sys

INSTALL_HINT = ("install the CUDA extra with `pip install steepest[cuda]` (numba-cuda), and run "
                "on a machine with an NVIDIA GPU and driver, or set NUMBA_ENABLE_CUDASIM=1 "
                "before Python starts to use numba-cuda's simulator (correct but very slow)")


def load():
    """The ``numba.cuda`` module (imported on first call)."""
    from numba import cuda

    return cuda


def numba_cuda_installed():
    """Whether the numba-cuda package is importable, found without importing it."""
    try:
        return importlib.util.find_spec("numba_cuda") is not None
    except (ImportError, ValueError):
        return False


def simulator_enabled():
    """Whether numba.cuda is (or will be, once imported) numba-cuda's CPU simulator.

    numba reads NUMBA_ENABLE_CUDASIM when numba itself is imported, so once numba is loaded
    its config is the truth; before that, the environment variable is.
    """
    numba = sys.modules.get("numba")
    if numba is not None and hasattr(numba, "config"):
        return bool(getattr(numba.config, "ENABLE_CUDASIM", 0))
    value = os.environ.get("NUMBA_ENABLE_CUDASIM", "").strip()
    try:
        return int(value) != 0
    except ValueError:
        return False


@functools.lru_cache(maxsize=1)
def driver_gpu_count():
    """Number of CUDA devices the NVIDIA driver reports; 0 without a driver or a device.

    Asks the driver library (libcuda) directly through ctypes, so no numba import happens on
    machines without a GPU.  Device nodes are checked first so that the common no-GPU case
    costs no library search at all.
    """
    if sys.platform.startswith("linux"):
        if not (os.path.exists("/dev/nvidiactl") or os.path.exists("/dev/dxg")):  # dxg: WSL2
            return 0
        names = ("libcuda.so.1", "libcuda.so")
    elif sys.platform == "win32":
        names = ("nvcuda.dll",)
    else:
        return 0
    for name in names:
        try:
            driver = ctypes.CDLL(name)
        except OSError:
            continue
        try:
            if driver.cuInit(0) != 0:
                return 0
            count = ctypes.c_int(0)
            if driver.cuDeviceGetCount(ctypes.byref(count)) != 0:
                return 0
            return int(count.value)
        except AttributeError:
            return 0
    return 0


def real_gpu_present():
    """A real NVIDIA GPU is usable through numba-cuda (never true under the simulator)."""
    return not simulator_enabled() and numba_cuda_installed() and driver_gpu_count() > 0


def unavailable_reason():
    """Why ``device="cuda"`` cannot run here, or None when it can (GPU or simulator)."""
    if not numba_cuda_installed():
        return f"numba-cuda is not installed; {INSTALL_HINT}"
    if simulator_enabled():
        return None
    if driver_gpu_count() == 0:
        return f"no NVIDIA GPU or driver was found; {INSTALL_HINT}"
    return None
