"""kernels/cpu/spans.py's ``each_in_threads``: work on items shared among Python threads (a
sweep's per-network checks): the results in the items' order, each share's compiled calls on
one thread, a share that hands work on itself finishing, and an error raised after all."""

import threading
import time

import numba
import pytest

from steepest.kernels.cpu.spans import each_in_threads, in_threads, spans

TWO_THREADS = pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2,
                                 reason="needs Numba's pool to have two threads")


@pytest.mark.parametrize("n", [0, 1, 2, 5])
def test_the_results_come_in_the_items_order(n):
    assert each_in_threads(lambda item: item * item, list(range(n))) == [i * i for i in range(n)]


@TWO_THREADS
def test_the_items_are_shared_among_threads_each_share_on_one_of_numbas():
    def work(item):
        # long enough for a pool thread to start: quicker items may all be taken by the
        # calling thread before it does (each thread takes the next item when it is free)
        time.sleep(0.05)
        return threading.get_ident(), numba.get_num_threads()

    seen = each_in_threads(work, list(range(6)))
    # the calling thread and the pool's (a larger pool need not show one thread per item)
    assert len({ident for ident, _ in seen}) >= 2
    assert {threads for _, threads in seen} == {1}
    assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS  # restored here


@TWO_THREADS
def test_a_slow_item_holds_up_no_other():
    # each thread takes the next item not yet taken: in fixed shares the items after a
    # slow one (a sweep's going network among stopped ones) waited on its thread
    def work(item):
        if item == 0:
            time.sleep(0.5)
        return threading.get_ident()

    slow, *others = each_in_threads(work, list(range(6)))
    assert slow not in others


def test_one_item_keeps_the_threads_for_its_own_calls():
    assert each_in_threads(lambda item: numba.get_num_threads(), [0]) == [
        numba.get_num_threads()]


@TWO_THREADS
def test_work_that_shares_its_own_rows_finishes():
    # the pool has one thread per Numba thread after the first: a share running on it that
    # handed spans to the pool again would wait for itself
    def work(item):
        return sum(in_threads(lambda a, b: sum(range(a, b)), spans(1000, 10)))

    finished = []
    runner = threading.Thread(target=lambda: finished.append(each_in_threads(work, [1, 2, 3])),
                              daemon=True)
    runner.start()
    runner.join(60)
    assert finished == [[sum(range(1000))] * 3]


@TWO_THREADS
def test_an_error_in_any_share_is_raised_after_all_have_ended():
    done = []

    def work(item):
        if item == 3:
            raise ValueError("item 3")
        done.append(item)
        return item

    with pytest.raises(ValueError, match="item 3"):
        each_in_threads(work, [0, 1, 2, 3])
    assert sorted(done) == [0, 1, 2]
    assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS
