"""kernels/cpu/_atomic.py's ``take_next``: threads of a parallel loop taking items from one
counter take every item exactly once, however many threads and passes there are."""

import numpy as np
import pytest
from numba import njit, prange
from numba.core.errors import TypingError

from steepest.kernels.cpu._atomic import take_next


@njit(parallel=True)
def _take_all(n, passes):
    """Each of ``passes`` passes of a parallel loop takes items until none is left (as the
    sweep kernels do): how many times each item was taken, and the counter (read by the
    caller: numba does not see the intrinsic's write, and ``taken[0]`` read here after the
    loop gave the value from before it)."""
    counts = np.zeros(n, np.int64)
    taken = np.zeros(1, np.int64)
    for _ in prange(passes):
        k = take_next(taken)
        while k < n:
            counts[k] += 1
            k = take_next(taken)
    return counts, taken


@pytest.mark.parametrize("n, passes", [(0, 1), (1, 1), (1, 4), (16, 16), (5, 2), (10_000, 64)])
def test_every_item_is_taken_exactly_once(n, passes):
    counts, taken = _take_all(n, passes)
    np.testing.assert_array_equal(counts, np.ones(n, np.int64))
    assert taken[0] == n + passes  # each pass takes one past the last item, and stops


def test_the_counter_is_a_one_dimensional_int64_array():
    @njit
    def take(counter):
        return take_next(counter)

    assert take(np.array([41], np.int64)) == 41
    with pytest.raises(TypingError):
        take(np.array([1], np.int32))
