"""Two networks on one thread: a sweep's pair of same-shaped networks trained batch by batch
in turn over the same order of samples (``sweeps.py``).

Alone, per-sample and small-batch SGD leave the core waiting on one chain of dependent
steps: the next sample's forward pass reads the weights the last update wrote.  Two
networks' steps share no data, so the core runs one's while the other's waits, and the
second finds the batch's input rows in cache, fetched by the first.  On MNIST's 50,000
rows, 16 networks on the 2-core machine, a pair per job against one network per job
(``/tmp/g/jobs_ab.py``, paired medians of 6): W2 (784-16-16-10, per-sample) 0.95 of the
time on ``SparseRows`` (what a sweep of 8 network-epochs or more trains on) and 0.71 on
dense rows, which each network lists again; W1 (784-30-10, batch 10) 0.98 and 0.89.

Each network's steps are ``fused_sgd_epoch``'s own (``_fused.batch_step``) in the same
order on the same values, so each comes out with the bits it gets alone, its mean loss
too (``_fused.mean_loss``).
"""

import numpy as np

from ._fused import (
    ONE,
    ZERO,
    _packed,
    batch_scratch,
    batch_step,
    mean_loss,
)
from ._inputs import inputs_are_sparse
from ._jit import jit_inline
from ._layout import fused_layout, unpack_params
from ._maths import check_activations, check_loss


@jit_inline
def fused_sgd_epoch_pair(first, second, sizes, activations, loss, X, Y, order, batch_size,
                         first_rate, second_rate):
    """Two networks' mini-batch SGD epochs (``fused_sgd_epoch``, batch_size ≥ 1, fused
    path) over the same ``order``, each batch taken by the first then the second; returns
    their two mean losses.

    first, second (P,) updated in place; X (N, IN), Y (N, OUT), order (N,) int
    """
    check_activations(activations)
    check_loss(loss)
    n = order.shape[0]
    capacity = max(1, min(batch_size, n))
    net = fused_layout(sizes, activations)
    _, w_first, bias_first = _packed(first, net)
    _, w_second, bias_second = _packed(second, net)
    sparse = inputs_are_sparse(X, order)
    leader = batch_scratch(net, X, sparse, capacity, None)
    follower = batch_scratch(net, X, sparse, capacity, None)
    total_first = ZERO
    total_second = ZERO
    for start in range(0, n, capacity):
        n_rows = min(capacity, n - start)
        inv_b = ONE / np.float32(n_rows)
        total_first = batch_step(None, total_first, leader, w_first, bias_first, w_first,
                                 bias_first, X, Y, order, start, n_rows, net, loss, inv_b,
                                 first_rate)
        total_second = batch_step(None, total_second, follower, w_second, bias_second,
                                  w_second, bias_second, X, Y, order, start, n_rows, net,
                                  loss, inv_b, second_rate)
    unpack_params(first, w_first, bias_first, net)
    unpack_params(second, w_second, bias_second, net)
    return mean_loss(total_first, n), mean_loss(total_second, n)
