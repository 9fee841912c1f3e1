"""What a cold first call compiles: each CPU kernel once per argument type, never once more
for a literal argument (issue 14: a quick first run).

Numba types a constant argument (``0``, ``True``) given to a compiled function as a literal
and compiles that function, and everything it calls that is not yet compiled for those
types, once more for it: ``evaluate_rows(..., 0, n, ...)`` beside ``evaluate_rows(..., first,
...)`` compiled the inference loop twice.  The child compiles from scratch (a cached kernel
never compiles its callees) the calls a user makes, dense and sparse inputs, small and large
(serial and threaded inference), every training loop, and lists every kernel of the package
with a literal in one of its signatures.  It also lists what compiled ``network_gradient``:
fit's gradient probe runs in the epochs' own compiled loop (``kernels/cpu/loops.py``), so
no fit compiles a gradient kernel of its own; and for which rows the inference kernel
compiled: once, for the dense rows, where the training accuracy read the compacted ones too.
"""

import json
import os
import subprocess
import sys

import pytest

CHILD = r"""
import gc, json
import numpy as np
from numba.core.registry import CPUDispatcher
import steepest

rng = np.random.default_rng(0)
X = (rng.random((1500, 40)) * (rng.random((1500, 40)) < 0.2)).astype(np.float32)
y = rng.integers(0, 3, 1500)
for options in (dict(), dict(activation="relu", output="softmax", loss="cross_entropy")):
    net = steepest.Network([40, 8, 3], seed=0, **options)
    net.fit(X, y, epochs=1, batch_size=10, learning_rate=0.1)
    net.fit(X, y, epochs=2, batch_size=None, learning_rate=0.1)  # compacted: sparse rows
    net.fit(X, y, epochs=1, batch_size=1, learning_rate=0.1)
    net.fit(X, y, epochs=1, batch_size=32, optimizer="adam", learning_rate=0.01)
    for rows in (X[:10], X):  # serial and threaded inference
        net.predict(rows)
        net.evaluate(rows, y[:len(rows)])
from steepest.kernels.cpu import _fused, network
gradient = [str(signature) for signature in network.network_gradient.signatures]
inference = [str(signature[5]) for signature in _fused.fused_inference.signatures]

kernels = [obj for obj in gc.get_objects() if isinstance(obj, CPUDispatcher)
           and obj.py_func.__module__.startswith("steepest.")]
assert len(kernels) > 20, len(kernels)
literal = [(kernel.py_func.__qualname__, [str(a) for a in signature if "Literal" in str(a)])
           for kernel in kernels for signature in kernel.signatures
           if any("Literal" in str(a) for a in signature)]
parallel = [kernel.py_func.__qualname__ for kernel in kernels
            if kernel.targetoptions.get("parallel") and kernel.signatures]
print(json.dumps({"literal": literal, "gradient": gradient, "inference": inference,
                  "parallel": parallel}))
"""


SWEEP_CHILD = r"""
import json
import numpy as np
import steepest
from steepest.kernels.cpu import loops, network, optimizer_loops

rng = np.random.default_rng(0)
X = (rng.random((300, 40)) * (rng.random((300, 40)) < 0.2)).astype(np.float32)
y = rng.integers(0, 3, 300)
for options in (dict(batch_size=10), dict(batch_size=1), dict(batch_size=None),
                dict(batch_size=10, optimizer="adam")):
    steepest.sweep([40, 8, 3], X, y, learning_rates=[0.05, 0.1], epochs=2, **options)
loops_ = (loops.sgd_epoch_minibatch_fused, loops.gd_step_full_batch_fused,
          optimizer_loops.optimizer_epoch_minibatch_fused)
print(json.dumps({"gradient": len(network.network_gradient.signatures),
                  "loops": [len(loop.signatures) for loop in loops_]}))
"""


def _compiled_from_scratch(child):
    env = {**os.environ, "STEEPEST_NO_CACHE": "1"}
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True,
                         env=env, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def compiled():
    """What the child's calls compiled, from scratch."""
    return _compiled_from_scratch(CHILD)


def test_no_kernel_is_compiled_again_for_a_literal_argument(compiled):
    assert compiled["literal"] == []


def test_fit_compiles_no_gradient_kernel_of_its_own(compiled):
    # the probe after each epoch was network_gradient, a compiled function of its own that
    # linked and optimised the forward and backward passes once more (2.6 s of the CLI's
    # cold 27 s); the epochs' loop computes it now (its probe argument)
    assert compiled["gradient"] == []


def test_fit_predict_and_evaluate_compile_inference_once_for_dense_rows(compiled):
    # fit(epochs=2) trains on X's compacted rows; its training accuracy read them too, and
    # compiled the inference kernel a second time (9-10 s of the main job's cold start)
    assert len(compiled["inference"]) == 1, compiled["inference"]
    assert compiled["inference"][0].startswith("array(float32, 2d, C")


def test_inference_and_small_fits_compile_no_parallel_loop(compiled):
    # inference on 1,024 rows or more split them with a parallel loop (prange), which numba
    # builds as functions of their own: 2.4-3 s of the CLI's cold start; Python threads
    # share the rows now (kernels/cpu/spans.py)
    assert compiled["parallel"] == []


def test_a_sweep_compiles_no_gradient_kernel_and_its_probe_nothing_more():
    # a sweep's probe after each epoch ran network_gradient, compiled for it alone (2.2-2.3
    # s of a cold sweep); it runs the loop the sweep kernel trains each network with,
    # which that compiled for the same argument types: each loop has the one signature
    # the kernel gave it (a per-sample sweep trains as mini-batches of one)
    compiled = _compiled_from_scratch(SWEEP_CHILD)
    assert compiled == {"gradient": 0, "loops": [1, 1, 1]}, compiled
