"""A process that ran a kernel ends without Python's last garbage collections walking
numba's objects (``kernels/cpu/_jit.py``): they took 0.3-0.4 s of every such process, a
third of a warm start (issue 14)."""

import subprocess
import sys

CHILD = r"""
import atexit, gc, sys
# registered first, so it runs after every exit handler registered later (steepest's too)
atexit.register(lambda: sys.stdout.write(f"frozen at exit: {gc.get_freeze_count()}\n"))
import numpy as np
from steepest.kernels import cpu
out = np.empty((3, 2), np.float32)
cpu.network_forward(out, np.ones(8, np.float32), np.array([2, 2]), np.array([1]),
                    np.ones((3, 2), np.float32))
"""


def test_numbas_objects_are_frozen_at_exit_out_of_the_last_collections():
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    frozen = int(out.stdout.strip().splitlines()[-1].split(": ")[1])
    assert frozen > 10_000  # numba's types, dispatchers and libraries: ~10^5 objects
