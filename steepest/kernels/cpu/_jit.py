"""The one place that says how CPU kernels are compiled.

* ``fastmath`` allows re-association and FMA contraction (so reductions vectorise) but NOT
  ``nnan``/``ninf``: σ's exp overflows to inf legally in float32, and divergence must show
  up as a NaN/inf loss rather than be optimised away.
* ``cache=True`` writes compiled code next to the package (or to numba's user cache when the
  install is read-only).  ``STEEPEST_NO_CACHE=1`` turns caching off for stale or broken
  caches; numba itself only warns when a cache write fails, so a failed write is harmless.
* ``error_model="numpy"``: a division by zero gives inf/NaN like NumPy, with no exception
  check in the inner loops.
"""

import os

import numba

FASTMATH = {"nsz", "arcp", "contract", "reassoc", "afn"}
CACHE = os.environ.get("STEEPEST_NO_CACHE", "").strip().lower() in ("", "0", "false", "no")

jit = numba.njit(cache=CACHE, fastmath=FASTMATH, error_model="numpy", nogil=True)
