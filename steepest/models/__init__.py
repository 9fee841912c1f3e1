"""The model layer: plain Python that holds shapes, weights and hyper-parameters.

No kernel code lives here; ``backend`` is the one place that chooses a kernel set.
"""
