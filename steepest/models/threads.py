"""How many CPU threads a call trains on: ``fit(threads=...)``.

Numba runs the parallel loops (the tiled passes of large batches and wide layers,
``kernels/cpu/paths.py``; inference on many rows; sweeps) on its own thread pool, whose
size is fixed at start-up (``NUMBA_NUM_THREADS``, by default the machine's cores).  A call
may use fewer: ``numba.set_num_threads`` for the call, restored after it.  Numba is imported
only when a limit is given, so ``import steepest`` stays light.
"""

import numbers
from contextlib import contextmanager


def check_threads(threads):
    """None, or an integer from 1 to the size of Numba's pool; a clear error otherwise."""
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, numbers.Integral):
        raise TypeError(f"threads must be a positive integer or None; got {threads!r}")
    import numba

    most = numba.config.NUMBA_NUM_THREADS
    if not 1 <= threads <= most:
        raise ValueError(f"threads must be between 1 and {most} (Numba's threads, "
                         f"NUMBA_NUM_THREADS); got {threads}")
    return int(threads)


@contextmanager
def numba_threads(threads):
    """Numba's threads set to ``threads`` inside the block (nothing changes for None)."""
    if threads is None:
        yield
        return
    import numba

    previous = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        yield
    finally:
        numba.set_num_threads(previous)
