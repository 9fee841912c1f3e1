"""Work split into spans that run at the same time on Python threads.

The compiled functions release the GIL (``_jit.JIT_OPTIONS``: nogil), so Python threads
calling one on disjoint spans of rows run on separate cores, with no parallel loop
(``prange``) compiled: numba builds each parallel loop as functions of their own, which
cost seconds of a cold start (issue 14).  For work of milliseconds, not less: handing a
span to a waiting thread costs about 0.1 ms on the 2-core machine, against 10-150 µs for
one of numba's parallel regions.  Used by inference (``network.py``: every share pays one
hand-off per call, so fit's accuracy pass over eight runs of rows is one call) and the
compaction of a mostly-zero X (``models/validation.py``).
"""

import itertools
import os
from concurrent.futures import ThreadPoolExecutor

# the threads that run the spans after the first, started once per process (a fork's
# child, which has none of its parent's threads, starts its own): a thread started per
# call costs 0.12 ms, a waiting one 0.07 ms
_pool = None
_pool_pid = None


def spans(n, min_size):
    """(start, stop) of near-equal spans covering range(n): one per Numba thread (its count
    in the calling thread: ``fit(threads=...)`` and MPI ranks lower it), each of at least
    ``min_size`` items, and at least one."""
    import numba

    parts = max(1, min(numba.get_num_threads(), n // min_size))
    cuts = [n * i // parts for i in range(parts + 1)]
    return list(zip(cuts[:-1], cuts[1:]))


def in_threads(function, spans):
    """[function(start, stop) for each span]: the first on the calling thread, the others on
    the pool's threads; an exception in any span is raised here, after all have ended."""
    if len(spans) == 1:
        return [function(*spans[0])]
    others = [_threads().submit(function, *span) for span in spans[1:]]
    try:
        first = function(*spans[0])
    finally:
        for future in others:
            future.exception()  # wait: the spans write into the caller's arrays
    return [first] + [future.result() for future in others]


def each_in_threads(work, items):
    """[work(item) for item in items] on the threads, each thread taking the next item not
    yet taken until none is left (items of unequal cost, such as a sweep's stopped and
    going networks, keep every thread busy), each item's own compiled calls then on its
    thread alone: work those calls handed on would wait for a pool thread that may be the
    one running it.  For items of milliseconds each, their Python between the compiled
    calls (a sweep's networks' probes and accuracy passes, ``models/sweep.py``) then runs
    while another thread computes."""
    import numba

    parts = spans(len(items), 1)
    if len(parts) == 1:  # one item, or one thread: its own calls keep the threads
        return [work(item) for item in items]
    results = [None] * len(items)
    taken = itertools.count()  # its next() is one C call: atomic under the GIL

    def share(_start, _stop):
        previous = numba.get_num_threads()
        numba.set_num_threads(1)  # this thread's own count (numba's is per thread)
        try:
            while (i := next(taken)) < len(items):
                results[i] = work(items[i])
        finally:
            numba.set_num_threads(previous)

    in_threads(share, parts)
    return results


def _threads():
    global _pool, _pool_pid
    if _pool is None or _pool_pid != os.getpid():
        import numba

        _pool = ThreadPoolExecutor(max(1, numba.config.NUMBA_NUM_THREADS - 1),
                                   thread_name_prefix="steepest-span")
        _pool_pid = os.getpid()
    return _pool
