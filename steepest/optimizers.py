"""The optimisers, importable the usual way: ``from steepest.optimizers import Adam``.

They live in ``steepest.models.optimizers`` (the model layer); this module is their public
name, so ``steepest.optimizers.Adam`` and ``from steepest.optimizers import Adam`` are one
class.
"""

from .models.optimizers import *  # noqa: F403 (the public names, as listed there)
from .models.optimizers import __all__  # noqa: F401
