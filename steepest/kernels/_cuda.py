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
  launch), ``cuda.local.array``, ``cuda.to_device`` and ``cuda.device_array``;
- the shared-memory opt-in (``raise_dynamic_shared_memory``), which reaches below numba-cuda's
  public API to the compiled kernel's driver handle, and the device attribute read by
  ``shared_memory_opt_in_bytes``.

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
    """A real NVIDIA GPU is usable through numba-cuda (never true under the simulator).
    The driver's count first: without a GPU it is two file checks, where the package search
    costs 0.2 ms, paid by every ``Network`` made (16 of them in a 16-network sweep)."""
    return not simulator_enabled() and driver_gpu_count() > 0 and numba_cuda_installed()


def unavailable_reason():
    """Why ``device="cuda"`` cannot run here, or None when it can (GPU or simulator)."""
    if not numba_cuda_installed():
        return f"numba-cuda is not installed; {INSTALL_HINT}"
    if simulator_enabled():
        return None
    if driver_gpu_count() == 0:
        return f"no NVIDIA GPU or driver was found; {INSTALL_HINT}"
    return None


# ------------------------------------------------------------- one GPU per process
# Distributed training (steepest.distributed) gives each rank of a node its own GPU.
_selected = None  # the GPU select_device made current in this process, else None


def gpu_count():
    """The GPUs a process may choose from: the driver's count (which honours
    CUDA_VISIBLE_DEVICES) on a real GPU; 1 on the simulator, which has one device."""
    if simulator_enabled():
        return 1
    return max(1, driver_gpu_count())


def select_device(index):
    """Make GPU ``index`` (0 ≤ index < ``gpu_count()``) the current device of this process
    (numba's ``cuda.select_device``) and return ``index``.

    Must come before any CUDA work in the process's thread: numba binds the thread to the
    first device it uses (an earlier ``predict``, or ``fit`` without ``comm``, on the
    default GPU 0), and cannot switch it afterwards; asking for another GPU then raises a
    RuntimeError that says so.  Choosing the same GPU again does nothing.  On the simulator
    only index 0 exists, and nothing is switched.
    """
    global _selected
    if isinstance(index, bool) or not isinstance(index, int):
        raise TypeError(f"index must be an integer; got {index!r}")
    count = gpu_count()
    if not 0 <= index < count:
        raise ValueError(f"index must be in 0..{count - 1} ({count} GPU(s)); got {index}")
    if _selected == index:
        return index
    cuda = load()
    try:
        cuda.select_device(index)
    except RuntimeError as error:  # numba: "Cannot switch CUDA-context."
        raise RuntimeError(
            f"cannot make GPU {index} current for this process: this thread already works "
            f"on another GPU ({error}); choose the GPU before any CUDA work in the process "
            f"(fit(comm=...) with device='cuda' does, unless the network predicted or "
            f"trained on the GPU before)") from error
    _selected = index
    return index


def selected_device():
    """The GPU ``select_device`` made current in this process, or None."""
    return _selected


# ------------------------------------------------------------- the shared-memory opt-in
# A kernel may use up to 48 KB of dynamic shared memory per block unless its own limit is
# raised through the driver (cuFuncSetAttribute with MAX_DYNAMIC_SHARED_SIZE_BYTES), up to
# the device's opt-in maximum: 227 KB on Hopper (H100/H200), 163 KB on A100, 99 KB on Ada.
# numba-cuda has no public API for it (NVIDIA/numba-cuda#94), so the two functions below are
# the only place steepest touches numba-cuda's driver layer.


@functools.cache
def shared_memory_opt_in_bytes(device_id=None):
    """The device's opt-in maximum of dynamic shared memory per block, in bytes (the current
    device when ``device_id`` is None); None on the simulator, which has no such limit."""
    if simulator_enabled():
        return None
    cuda = load()
    device = cuda.get_current_device() if device_id is None else cuda.gpus[device_id]
    return int(device.MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)


def raise_dynamic_shared_memory(kernel, args, nbytes):
    """Let ``kernel`` (a ``cuda.jit`` dispatcher) launch with ``nbytes`` of dynamic shared
    memory when called with ``args``: raises the limit of the compiled specialisation those
    arguments select, on the current device.  True when the driver accepted it; False on the
    simulator or when the driver refused (the caller then launches within 48 KB)."""
    if simulator_enabled():
        return False
    from numba.cuda.cudadrv import driver as cuda_driver

    try:
        compiled = kernel.compile(tuple(kernel.typeof_pyval(arg) for arg in args))
        function = compiled._codelibrary.get_cufunc()
        attribute = cuda_driver.binding.CUfunction_attribute \
            .CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
        cuda_driver.driver.cuKernelSetAttribute(attribute, int(nbytes), function.handle,
                                                function.device.id)
    except Exception:  # any refusal (old driver, numba-cuda internals moved): stay at 48 KB
        return False
    return True
