"""``python -m steepest``: see ``steepest.cli``."""

import sys

from .cli import main

sys.exit(main())
