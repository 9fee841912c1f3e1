"""Numerical kernels: the float64 NumPy reference and its compiled twins.

``reference`` defines every op and is the test oracle; ``cpu`` holds the ``@njit`` kernels
with the same names, signatures and meaning.  Kernels never import from ``steepest.models``.
Every kernel writes its results into arrays passed first (outputs first, then inputs), so the
three implementations can be called and compared through one signature.
"""
