"""Which CPU path trains a network: chosen from its widths and the batch, here and nowhere
else.

* **fused** (``_fused.py``): one sample at a time through the whole network on one thread.
  Nothing beats it where a batch's work is small: per-sample SGD and small batches of the
  tutorials' narrow networks.
* **tiled** (``_tiled.py``): the same arithmetic reordered into passes over the batch that
  share the work among Numba's threads and read the first layer's Wᵀ tile by tile.  It
  pays where a batch's work is large against six parallel regions and the cache lines
  the threads hand each other.  Its results do not depend on the threads or the tiles
  (each weight's sums run in one order); against the fused path they agree to float32
  rounding, not bit for bit (the same functions, optimised by LLVM inside other callers).

The choice depends on the widths and the batch only, never on the threads, so that a
network trains to the same bits on any number of threads.  ``training_path`` is what
``loops.py`` and ``optimizer_loops.py`` ask before each epoch, and what
``History.training_path`` shows a user.  The thresholds were measured on the 2-core machine
(``benchmarks/width_grid.py``).
"""

from collections import namedtuple

from ._fused import GRADIENT_CHUNK
from ._simd import LANES
from ._tiled import Tiles

FORWARD_TILE_MAX = 128      # Wᵀ⁰ columns per forward job: 784 rows × 512 B in a core's L2
UPDATE_TILE_MAX = 128
# The tiled path when a batch's multiply-adds (3·B·weights) reach this many: below it,
# the fused path was faster on two threads (784-128-10 at batch 10, 3.0M: 300k samples/s
# fused, 195k tiled; 784-32-10 at batch 128, 9.8M: 750k fused, 990k tiled; 784-512-10 at
# batch 10, 12M: 91k fused, 123k tiled; the 2-core machine).  The choice does not depend
# on the threads, so neither do the results: on one thread the tiled passes cost what the
# fused path costs (within 5% at 784-32/128/512-10, batch 128).
TILED_MIN_BATCH_MACS = 6_000_000

TrainingPath = namedtuple("TrainingPath", "path tiles threads reason")


def _round_up(n, multiple):
    return -(-n // multiple) * multiple


def weights(sizes):
    """The network's weights (biases left out)."""
    return sum(int(a) * int(b) for a, b in zip(sizes[:-1], sizes[1:]))


def training_path(sizes, batch_size, n_samples, threads=None):
    """The path, its tiles and the reason, for batches of ``batch_size`` rows (None or ≥ N:
    full batch, taken ``_fused.GRADIENT_CHUNK`` rows at a time) on ``threads`` threads
    (default: Numba's current number).

    Returns ``TrainingPath(path, tiles, threads, reason)``: path "fused" (tiles None) or
    "tiled" (a ``_tiled.Tiles``).
    """
    if threads is None:
        import numba

        threads = numba.get_num_threads()
    n = max(1, int(n_samples))
    batch = n if batch_size is None else max(1, min(int(batch_size), n))
    if batch == 1:
        return TrainingPath("fused", None, 1, "per-sample SGD: one sample's work per update")
    macs = 3 * min(batch, GRADIENT_CHUNK) * weights(sizes)
    if macs < TILED_MIN_BATCH_MACS:
        return TrainingPath("fused", None, 1,
                            f"a batch's work ({macs:,} multiply-adds) is too small to share")
    return TrainingPath("tiled", tiles_for(sizes, min(batch, GRADIENT_CHUNK), threads),
                        threads, f"a batch's work ({macs:,} multiply-adds) is shared among "
                        f"{threads} thread{'s' if threads > 1 else ''}")


def warm_up_shape(sizes, batch_size, n_samples):
    """(rows, batch_size) of the smallest epoch that runs the kernel and path of an epoch of
    ``n_samples`` rows in batches of ``batch_size`` (None or ≥ N: full batch): fit's warm-up.

    The path is chosen from ``min(batch, GRADIENT_CHUNK)`` rows, so a batch (or a full
    batch) of more rows warms up as one of GRADIENT_CHUNK; a mini-batch epoch warms up on
    two batches.
    """
    n = max(1, int(n_samples))
    if batch_size is None or batch_size >= n:
        return min(n, GRADIENT_CHUNK), None
    batch = min(int(batch_size), GRADIENT_CHUNK)
    return min(n, 2 * batch), batch


def tiles_for(sizes, batch, threads):
    """``Tiles`` for batches of ``batch`` rows on ``threads`` threads: forward tiles of whole
    32-lane passes, at most FORWARD_TILE_MAX wide, the batch cut into blocks so that there
    are two forward jobs per thread and a block per thread at least (the column lists are
    sorted by blocks, ``_tiled._count_block_columns``); update tiles of whole 32-lane
    (128-byte) pairs of cache lines, one job per thread where the width allows: two threads
    writing the two lines of one pair (16-lane tiles) ran 2.5× slower than one thread, as
    the cores' adjacent-line prefetchers fought over the pairs."""
    width = _round_up(int(sizes[1]), LANES)
    n_forward = -(-width // FORWARD_TILE_MAX)
    forward = _round_up(-(-width // n_forward), 2 * LANES)
    n_blocks = max(1, min(batch, max(threads, -(-2 * threads // n_forward))))
    block = -(-batch // n_blocks)
    update = min(UPDATE_TILE_MAX, max(2 * LANES, _round_up(-(-width // threads), 2 * LANES)))
    return Tiles(forward, update, block)
