"""The seam between the models and the kernels: a device name -> a kernel set.

This is the only module that decides where work runs.  A ``Backend`` offers the kernel
functions (all with the signatures of ``steepest.kernels.reference``) and the two copies a
model needs: host arrays to the backend's memory, and parameters back to the host.

"cuda" runs ``steepest.kernels.cuda`` on a real GPU or on numba-cuda's simulator
(NUMBA_ENABLE_CUDASIM=1).  "auto" takes the GPU only when a real one is present, never the
simulator (which is for tests, and slow), and finds that out without importing numba.cuda
(``steepest.kernels._cuda`` asks the driver library), so CPU work never loads numba-cuda.
"""

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import numpy as np

DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class Backend:
    name: str                    # the device that actually runs: "cpu" or "cuda"
    kernels: ModuleType          # same public names as steepest.kernels.reference
    to_device: Callable          # host ndarray -> array the kernels accept
    to_host: Callable            # (host ndarray out, backend array) -> None
    to_device_into: Callable     # (backend array out, host ndarray) -> None: copy in place
    # whether the kernels work on the host's NumPy arrays (to_device is the identity)
    host_memory: bool
    # (rank of this process on its node) -> the GPU it made current for this process
    # (rank % GPUs), None where there is no device to choose (the CPU); see distributed
    place: Callable
    sparse_rows: bool            # whether the kernels take ``kernels.rows.SparseRows`` as X
    # whether a NaN or inf input always makes its row's outputs and loss NaN (the CPU's, see
    # cpu/_fused.forward_logits): inference then checks X only when an output is not finite,
    # instead of a pass over X before it
    bad_inputs_show: bool
    # (sizes, batch_size or None for full batch, rows, plain SGD?) -> "path: why", the
    # kernels an epoch runs on (CPU: fused or tiled, ``kernels.cpu.paths``; CUDA: one-block or
    # tiled launches, ``kernels.cuda.loops.launch_plan``), for a user to see
    training_path: Callable
    # (sizes, batch_size or None, rows) -> (rows, batch_size or None) of the smallest epoch
    # that runs the same kernels and path: what fit's warm-up trains, so that epoch 1 does
    # not compile
    warm_up_shape: Callable
    # (grads, params, sizes, activations, loss, X, Y, batch_size or None, rows, plain_sgd)
    # -> loss: ``network_gradient`` by the code that runs epochs of ``rows`` in batches of
    # ``batch_size`` by plain SGD or another optimiser: fit's gradient probe, so that it
    # compiles nothing of its own
    gradient_for_epochs: Callable
    # the same for one network of a sweep, by the code the sweep kernels train it with
    gradient_for_sweeps: Callable
    # (work, items) -> [work(item) for item in items]: a sweep's per-network checks, shared
    # among Python threads where the kernels run on the host and release the GIL (the CPU,
    # ``kernels.cpu.spans.each_in_threads``), else one after another
    each_item: Callable


def _identity(array):
    return array


def _copy_into(out, array):
    if out is not array:
        np.copyto(out, array)


def _no_device(local_rank):
    return None


def _one_after_another(work, items):
    return [work(item) for item in items]


def _cpu_training_path(sizes, batch_size, n_samples, plain_sgd):
    from ..kernels.cpu.paths import training_path

    plan = training_path(sizes, batch_size, n_samples)
    return f"{plan.path}: {plan.reason}"


def _cpu_warm_up_shape(sizes, batch_size, n_samples):
    from ..kernels.cpu.paths import warm_up_shape

    return warm_up_shape(sizes, batch_size, n_samples)


def _cpu_backend():
    from ..kernels import cpu
    from ..kernels.cpu.network import network_gradient_for_epochs, network_gradient_for_sweeps
    from ..kernels.cpu.spans import each_in_threads

    return Backend("cpu", cpu, _identity, _copy_into, _copy_into, host_memory=True,
                   place=_no_device, sparse_rows=True, bad_inputs_show=True,
                   training_path=_cpu_training_path, warm_up_shape=_cpu_warm_up_shape,
                   gradient_for_epochs=network_gradient_for_epochs,
                   gradient_for_sweeps=network_gradient_for_sweeps,
                   each_item=each_in_threads)


def _cuda_to_device(array):
    """A device copy; ``SparseRows`` expanded to dense rows first (the CUDA kernels read
    dense rows only)."""
    from ..kernels import _cuda
    from ..kernels.rows import to_dense

    return _cuda.load().to_device(np.ascontiguousarray(to_dense(array)))


def _cuda_to_host(out, array):
    array.copy_to_host(out)


def _cuda_to_device_into(out, array):
    out.copy_to_device(np.ascontiguousarray(array))


def _cuda_place(local_rank):
    """GPU ``local_rank % GPUs`` made current for this process (``_cuda.select_device``)."""
    from ..kernels import _cuda

    return _cuda.select_device(local_rank % _cuda.gpu_count())


def _cuda_training_path(sizes, batch_size, n_samples, plain_sgd):
    if batch_size is None or batch_size >= n_samples:
        return "tiled: full batch, one gradient over all rows per step"
    if not plain_sgd:
        return "tiled: other optimisers than plain SGD take the tiled launches"
    from ..kernels.cuda.loops import launch_plan

    plan = launch_plan(sizes, batch_size, n_samples)
    return f"{plan['path']}: {plan['reason']}"


def _cuda_warm_up_shape(sizes, batch_size, n_samples):
    # the launches depend on the batch (``launch_plan``), not on the rows; a full batch
    # compiles the same kernels on any rows
    if batch_size is None or batch_size >= n_samples:
        return min(n_samples, 64), None
    return min(n_samples, 2 * batch_size), batch_size


def _cuda_gradient_for_epochs(grads, params, sizes, activations, loss, X, Y, batch_size,
                              n_samples, plain_sgd):
    # one gradient kernel serves the epochs of every launch plan
    from ..kernels import cuda

    return cuda.network_gradient(grads, params, sizes, activations, loss, X, Y)


def _cuda_backend():
    from ..kernels import cuda

    return Backend("cuda", cuda, _cuda_to_device, _cuda_to_host, _cuda_to_device_into,
                   host_memory=False, place=_cuda_place, sparse_rows=False,
                   bad_inputs_show=False, training_path=_cuda_training_path,
                   warm_up_shape=_cuda_warm_up_shape,
                   gradient_for_epochs=_cuda_gradient_for_epochs,
                   gradient_for_sweeps=_cuda_gradient_for_epochs,
                   each_item=_one_after_another)


def get_backend(device="auto"):
    """The kernel set for ``device``: "cpu", "cuda", or "auto" (a real GPU if present, else CPU).

    Raises
    ------
    ValueError
        ``device`` is not one of "auto", "cpu", "cuda", or "cuda" is asked for where neither
        a GPU (with numba-cuda) nor numba-cuda's simulator is available.
    """
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(map(repr, DEVICES))}; got {device!r}")
    from ..kernels import _cuda  # numba-free checks

    if device == "cuda":
        reason = _cuda.unavailable_reason()
        if reason is not None:
            raise ValueError(f"device='cuda' is not available: {reason}")
        return _cuda_backend()
    if device == "auto" and _cuda.real_gpu_present():
        return _cuda_backend()
    return _cpu_backend()
