"""The one place that says how CPU kernels are compiled.

* ``fastmath`` allows re-association and FMA contraction (so reductions vectorise) but NOT
  ``nnan``/``ninf``: σ's exp overflows to inf legally in float32, and divergence must show
  up as a NaN/inf loss rather than be optimised away.
* ``cache=True`` writes compiled code next to the package (or to numba's user cache when the
  install is read-only).  ``STEEPEST_NO_CACHE=1`` turns caching off for stale or broken
  caches; numba itself only warns when a cache write fails, so a failed write is harmless.
  Numba checks only the source of the function it caches, but a cached loop carries the
  compiled code of every kernel it calls: after an edit or upgrade of ``_fused.py`` a
  cached ``sgd_epoch_minibatch`` (in ``loops.py``) would keep running the old code.  Numba
  has no supported way to follow such dependencies (its pull request #8396 for it was not
  merged), so the cache entries of this package are stamped with a hash of ALL its kernel
  sources (``_register_cache_stamp``): any change to any of them recompiles everything.
* ``error_model="numpy"``: a division by zero gives inf/NaN like NumPy, with no exception
  check in the inner loops.
* Each compiled kernel runs its own copies of the kernels it calls (``_own_callees``).
  Numba links a copy of every callee into the caller's module as a weak (linkonce_odr)
  symbol, and the JIT's linker binds a call to a weak symbol to the first definition loaded
  in the process.  With ``reassoc`` the machine code of a callee depends on the module it
  is optimised in (the softmax sum's order did), so without this a process that compiled
  the kernels ran the callees' stand-alone copies, one that loaded them from the cache ran
  the caller's: the same seed gave other weights (issue 11), and a process's results could
  depend on which kernels it had loaded first.

This module is the only one that touches numba internals (the two patches above, and the
``_nrt`` option of ``jit_no_refcount``); each falls back to numba's own behaviour if they
move, and ``tests/test_numba_internals.py`` fails when one no longer applies.  The design
of the kernel layer as a whole: ``kernels/DESIGN.md``.
"""

import atexit
import gc
import hashlib
import os
from functools import cache
from pathlib import Path

import numba
from llvmlite import binding as ll

FASTMATH = {"nsz", "arcp", "contract", "reassoc", "afn"}
CACHE = os.environ.get("STEEPEST_NO_CACHE", "").strip().lower() in ("", "0", "false", "no")

JIT_OPTIONS = {"cache": CACHE, "fastmath": FASTMATH, "error_model": "numpy", "nogil": True}
jit = numba.njit(**JIT_OPTIONS)
# For a function whose only callers are thin entry points (the epoch body behind
# sgd_epoch_minibatch and sgd_epoch_per_sample): numba links a separately compiled callee
# into each caller and optimises the linked module again, so a wrapper around a big kernel
# costs its whole LLVM time twice.  Inlined in numba's IR, the entry point compiles once
# (W1's cold first call: 8.0 s -> 6.3 s measured on the 2-core machine).
jit_inline = numba.njit(inline="always", **JIT_OPTIONS)
# For the per-sample and per-batch functions of the fused path, which allocate nothing: compiled
# without numba's reference counting (NRT), so that a call passing arrays costs no atomic
# increments and decrements of their counts.  Numba cannot always prove those away; where it
# could not (a function whose control flow it did not recognise) they cost per-sample
# training up to 10% (W2).  Such a function must not create arrays (np.empty, copies):
# numba refuses to compile one that does.
NO_REFCOUNT_OPTIONS = {**JIT_OPTIONS, "_nrt": False}
jit_no_refcount = numba.njit(**NO_REFCOUNT_OPTIONS)
# Only where one parallel region covers much work (the tiled passes of large batches, the
# sweeps' networks): a region costs 10-150 µs here, and numba compiles each parallel loop as
# functions of their own, seconds of a cold start.  Inference and the compaction share
# their rows among Python threads instead (``spans.py``).
jit_parallel = numba.njit(parallel=True, **JIT_OPTIONS)
# For a sum whose order is part of the result (the tiled passes add their per-sample losses
# in the fused path's order): without reassociation LLVM cannot vectorise it into partial
# sums.  Instructions keep their own flags when inlined, so this holds inside any caller.
jit_in_order = numba.njit(**{**JIT_OPTIONS, "fastmath": FASTMATH - {"reassoc"}})
# For a division whose bits are part of the result (an epoch's mean loss): with ``arcp``
# LLVM turns two divisions by one value in a function (the two means of a pair of networks,
# ``_pairs.py``) into a reciprocal and two products, an ulp away from the division the
# network's loop makes alone.  Kept per instruction, as above.
jit_true_division = numba.njit(**{**JIT_OPTIONS, "fastmath": FASTMATH - {"arcp"}})

_KERNEL_DIR = Path(__file__).resolve().parent

# At interpreter exit Python's last garbage collections walk every object still alive, and
# numba's (types, dispatchers, compiled libraries) are most of them once a kernel has run:
# 0.3-0.4 s of every such process, a third of a warm start (issue 14).  Frozen at exit
# (``gc.freeze``), they are out of those collections' reach and go with the process, as
# Python allows: it does not promise to finalise objects alive at exit.  Exit handlers
# registered before this one run after it, and the objects they make are collected as ever.
atexit.register(gc.freeze)

@cache
def _kernel_set_stamp():
    """A hash of every source file the CPU kernels are compiled from."""
    digest = hashlib.sha256(numba.__version__.encode())
    for path in sorted(_KERNEL_DIR.glob("*.py")) + [_KERNEL_DIR.parent / "codes.py"]:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()

def _register_cache_stamp():
    """Put locators first in numba's list that stamp this package's cache entries with
    ``_kernel_set_stamp`` instead of the one file's hash (see the module docstring).

    Uses numba's internal locator classes; if they move, numba's own locators (per-file
    stamps) stay in charge, and STEEPEST_NO_CACHE=1 remains the way out.
    """
    try:
        from numba.core import caching

        bases = (caching.UserProvidedCacheLocator, caching.InTreeCacheLocator,
                 caching.UserWideCacheLocator)
        locators = caching.CacheImpl._locator_classes
    except (ImportError, AttributeError):
        return

    class _WholeKernelSet:
        def get_source_stamp(self):
            return _kernel_set_stamp()

        @classmethod
        def from_function(cls, py_func, py_file):
            if Path(py_file).resolve().parent != _KERNEL_DIR:
                return None
            return super().from_function(py_func, py_file)

    ours = [type(f"Steepest{base.__name__}", (_WholeKernelSet, base), {}) for base in bases]
    if not any(cls.__name__.startswith("Steepest") for cls in locators):
        locators[:0] = ours


# Functions of this package in numba's mangled names (steepest.kernels.cpu.<module>.<name>),
# and the launchers of parallel loops (``prange``), whose names do not say whose they are.
_OWN_CALLEES_OF = ("8steepest7kernels3cpu", "__numba_parfor_gufunc_")
# Linkages of linked-in copies: callees (linkonce_odr) and parallel loops' bodies (weak_odr)
_WEAK = (ll.Linkage.linkonce_odr, ll.Linkage.weak_odr)


def _own_callees():
    """Make the callee copies in a kernel's compiled module local to that module.

    After numba has linked and optimised a library that defines one of this package's
    kernels, its linkonce_odr functions (the linked-in callees) become ``internal``, so its
    calls go to its own copies, the code that is also written to the cache, whatever else
    the process has loaded.  The module other libraries link against keeps them
    linkonce_odr, so callers are linked and optimised exactly as before, and the IR that is
    compiled is unchanged but for those linkages (no slower code).

    The same holds for parallel loops (``prange``: the tiled passes, ``_tiled.py``, and
    the sweeps).  Numba compiles a loop's body into a library of its own, wraps it in a
    launcher library (``.kernel…``, which calls the weak_odr ``__gufunc__…`` body), and
    links both into the function that holds the loop.  Without this, a process that
    compiled the loop ran the launcher library's copy of the body and a process that loaded
    it from the cache the enclosing function's, optimised in another module: the tiled
    passes gave other weights from the cache (found by ``tests/test_cache_determinism``).
    So the weak_odr copies are made local too, and the launchers, whose names carry
    ``__numba_parfor_gufunc_``, keep their own.  For anyone else's parallel loops this
    changes which copy of a callee runs, never what it computes.

    Uses numba's internal ``CPUCodeLibrary``; if it moves, the kernels still work, only
    with the old weak binding.
    """
    try:
        from numba.core.codegen import CPUCodeLibrary

        optimize = CPUCodeLibrary._optimize_final_module
        for_linking = CPUCodeLibrary._get_module_for_linking
    except (ImportError, AttributeError):
        return
    if getattr(optimize, "_steepest", False):
        return

    def _optimize_final_module(self):
        optimize(self)
        module = self._final_module
        if not any(any(name in fn.name for name in _OWN_CALLEES_OF) and not fn.is_declaration
                   and fn.linkage == ll.Linkage.external for fn in module.functions):
            return
        names = [(fn.name, fn.linkage) for fn in module.functions
                 if not fn.is_declaration and fn.linkage in _WEAK]
        for name, _ in names:
            module.get_function(name).linkage = "internal"
        self._steepest_internalized = names

    def _get_module_for_linking(self):
        fresh = self._shared_module is None
        module = for_linking(self)
        names = getattr(self, "_steepest_internalized", None)
        if fresh and names:
            if module is self._final_module:
                module = module.clone()
            for name, linkage in names:
                module.get_function(name).linkage = linkage
            self._shared_module = module
        return module

    _optimize_final_module._steepest = True
    CPUCodeLibrary._optimize_final_module = _optimize_final_module
    CPUCodeLibrary._get_module_for_linking = _get_module_for_linking


_own_callees()
# Numba's threading layer, started now, before any kernel is loaded from the cache.  Numba
# re-runs a cached function's set-up (which starts the layer and gives compiled code
# numba_parallel_for) only if that function compiled its parallel loops itself: a training
# loop compiled in a process that had loaded its parallel passes from the cache was cached
# without it, and a later process that ran that loop first called a null pointer (a
# segfault; tests/test_cache_determinism.py).  numba.get_num_threads starts the layer; its
# threads cost nothing while no parallel loop runs.
numba.get_num_threads()
if CACHE:
    _register_cache_stamp()
    # Stamp the sources this process imports, now: hashed at the first cache access instead,
    # a process that edited-and-then-cached (a long test run while the sources change) would
    # file its old code under the new sources' stamp, and a later process load it.
    _kernel_set_stamp()
