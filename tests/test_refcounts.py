"""The training loops' per-batch step counts no references.

Numba counts a reference to every array a compiled function receives (an atomic increment
on entry, a decrement on exit) unless it can prove them away.  The per-batch step
(``_fused.batch_step``) receives some forty arrays (the scratch's, the layout's, X's), and
each atomic operation is a full memory barrier: with them, a batch of one spent half its
time waiting (W2's epoch on one thread: 87 ms with them, 43 ms without, issue 15).  The
step is compiled without reference counting; this holds it there.  The child compiles
from scratch, since numba cannot show the IR of cached code.
"""

import json
import os
import subprocess
import sys

CHILD = r"""
import json, re
import numpy as np
from steepest.kernels import codes
from steepest.kernels.cpu import loops, optimizer_loops
from steepest.kernels.rows import SparseRows

rng = np.random.default_rng(0)
X = (rng.random((60, 40)) * (rng.random((60, 40)) < 0.2)).astype(np.float32)
rows, positions = np.nonzero(X)
indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=60))]).astype(np.int64)
sparse = SparseRows(indptr, positions.astype(np.int16), X[rows, positions], 40)
Y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 60)]
sizes = np.array([40, 16, 8, 3], np.int64)
acts = np.full(3, codes.ACTIVATION_CODES["sigmoid"], np.int64)
loss = codes.LOSS_CODES["mse"]
order = rng.permutation(60)
params = (0.1 * rng.standard_normal(40 * 16 + 16 + 16 * 8 + 8 + 8 * 3 + 3)).astype(np.float32)
hyper = np.array([0.01, 0.0, 0.9, 0.999, 1e-8], np.float32)
for rows_ in (X, sparse):
    loops.sgd_epoch_minibatch_fused(params.copy(), sizes, acts, loss, rows_, Y, order, 1,
                                    np.float32(0.1), loops.NO_PROBE)
    optimizer_loops.optimizer_epoch_minibatch_fused(
        params.copy(), np.zeros((2, params.size), np.float32), np.zeros(1, np.int64), sizes,
        acts, loss, codes.ADAM, hyper, rows_, Y, order, 1, loops.NO_PROBE)

found = {}
for loop in (loops.sgd_epoch_minibatch_fused, optimizer_loops.optimizer_epoch_minibatch_fused):
    for ir in loop.inspect_llvm().values():
        for body in re.split(r"\ndefine ", ir):
            name = re.match(r'[^@]*@"?([^"(\s]*)', body).group(1)
            if "batch_step" in name and "{" in body:
                found.setdefault(loop.__name__, []).append(
                    len(re.findall(r"call void @NRT_(?:incref|decref)\(", body)))
print(json.dumps(found))
"""


def test_the_per_batch_step_counts_no_references():
    env = {**os.environ, "STEEPEST_NO_CACHE": "1"}
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                         env=env, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    found = json.loads(out.stdout.strip().splitlines()[-1])
    # the step is there, for dense and sparse rows, in both loops, and counts nothing
    assert sorted(found) == ["optimizer_epoch_minibatch_fused", "sgd_epoch_minibatch_fused"]
    for loop, counts in found.items():
        assert len(counts) >= 2 and counts == [0] * len(counts), (loop, counts)
