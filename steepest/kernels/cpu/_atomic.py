"""One atomic counter for ``@njit`` code: threads of a parallel loop taking work one item at a
time (a sweep's networks, ``sweeps.py``).

Numba's parallel loops split their range among the threads in equal static shares (under the
OpenMP layer ``numba.set_parallel_chunksize`` changes nothing), so the loop ends when the
slowest share does.  A share of items that need no work leaves its thread idle: a sweep's
upper learning rates, once they diverged and were stopped, are one contiguous run of its
networks, and every survivor fell to the other thread (a 3-epoch, 16-network sweep whose 9
upper rates diverged took 1.0-1.1 s, 0.70-0.76 s with a counter).  Threads that each take
the next item from one counter finish together instead, whatever the items cost and however
fast each core runs.  Each item's work is the same whichever thread does it, so the results
do not depend on the order taken.
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def take_next(typingctx, counter):
    """counter[0] += 1 in one atomic step; returns its value before (a 1-d int64 array).

    Numba's own passes do not see this write: read the counter in the loop that takes from
    it, never after (``counter[0]`` read after a parallel loop gave its value from before
    the loop, ``tests/test_atomic.py``)."""
    if not (isinstance(counter, types.Array) and counter.dtype == types.int64
            and counter.ndim == 1):
        return None

    def codegen(context, builder, sig, args):
        ary = context.make_array(sig.args[0])(context, builder, args[0])
        one = ir.Constant(ir.IntType(64), 1)
        return builder.atomic_rmw("add", cgutils.gep(builder, ary.data, 0), one, "monotonic")

    return types.int64(counter), codegen
