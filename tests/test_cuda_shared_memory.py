"""Shared memory stays within what the launchers assume (SHARED_MEMORY_BYTES, 48 KB per block
without the driver opt-in), for the benchmark networks and wide ones, at the simulator's and
the GPU's block sizes; and an epoch whose one-block layout cannot fit takes the tiled path.

The layouts are host arithmetic (``one_block_layout``) and the tiled kernels' static shared
arrays are read from the kernel sources, so most of this runs without compiling anything.
"""

import ast
import math
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_close, needs_cuda

pytestmark = needs_cuda

LIMIT = 48 * 1024
SIMULATOR_THREADS, PRODUCTION_THREADS = 64, 256
SIMULATOR_TILE, PRODUCTION_TILE = 8, 16

BENCHMARKS = [[784, 30, 10], [784, 16, 16, 10], [784, 128, 64, 10]]
WIDE = [[784, 1024, 1024, 10], [784, 2048, 10], [4096, 4096, 10]]
CASES = ([(sizes, batch) for sizes in BENCHMARKS for batch in (1, 10, 32, 128)]
         + [(sizes, batch) for sizes in WIDE for batch in (1, 32)])


@pytest.fixture(scope="module")
def loops():
    from steepest.kernels.cuda import loops

    return loops


def _parts(pairs, n_terms, threads, coalesce_parts, min_terms):
    """The host's copy of the kernel's ``_parts`` (the split of each of ``pairs`` products)."""
    spread = max(threads // pairs, coalesce_parts)
    return max(1, min(spread, -(-n_terms // min_terms)))


def _most_partials(sizes, rows, threads, coalesce_parts, min_terms):
    """The most partial sums any phase of a step with ``rows`` rows writes to shared memory."""
    most = 0
    for layer, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        phases = [(rows * n_out, n_in)] + ([(rows * n_in, n_out)] if layer > 0 else [])
        for pairs, n_terms in phases:
            parts = _parts(pairs, n_terms, threads, coalesce_parts, min_terms)
            if parts > 1:
                most = max(most, pairs * parts)
    return most


@pytest.mark.parametrize("threads", [SIMULATOR_THREADS, PRODUCTION_THREADS])
@pytest.mark.parametrize("sizes,batch", CASES, ids=lambda x: "-".join(map(str, x))
                         if isinstance(x, list) else f"b{x}")
def test_one_block_layout_fits_the_launch_limit(loops, sizes, batch, threads):
    assert loops.SHARED_MEMORY_BYTES == LIMIT
    layout = loops.one_block_layout(sizes, batch, threads, loops.SHARED_MEMORY_BYTES)
    n_params = layout["w_offsets"][-1]
    floats = (layout["n_partials"] + n_params - layout["shared_from"]
              + (layout["work_size"] if layout["work_in_shared"] else 0))
    # what the launcher passes as dynamic shared memory is what the kernel indexes …
    assert layout["shared_bytes"] == 4 * floats
    # … and within the limit
    assert layout["shared_bytes"] <= LIMIT, (sizes, batch, threads, layout["shared_bytes"])
    assert loops.one_block_fits(sizes, batch, threads, LIMIT)
    # the partial-sum region holds the loss reduction (one per thread) and every phase's
    # split dot products, for a full batch and for every shorter last batch
    assert layout["n_partials"] >= threads
    for rows in range(1, batch + 1):
        assert _most_partials(sizes, rows, threads, layout["coalesce_parts"],
                              loops.MIN_TERMS_PER_THREAD) <= layout["n_partials"], rows
    # parameters in shared memory start at a layer boundary
    assert layout["shared_from"] in layout["w_offsets"]


def test_benchmark_layouts_keep_what_the_docstring_says(loops):
    # 784-30-10 batch 10 and 784-16-16-10 per sample: W⁰ global, the rest and the work buffer
    # in shared memory, at both block sizes
    for threads in (SIMULATOR_THREADS, PRODUCTION_THREADS):
        for sizes, batch in (([784, 30, 10], 10), ([784, 16, 16, 10], 1)):
            layout = loops.one_block_layout(sizes, batch, threads, LIMIT)
            assert layout["shared_from"] == sizes[1] * (sizes[0] + 1)
            assert layout["work_in_shared"]


@pytest.mark.parametrize("sizes,batch", CASES, ids=lambda x: "-".join(map(str, x))
                         if isinstance(x, list) else f"b{x}")
def test_every_benchmark_and_wide_network_has_a_path(loops, sizes, batch):
    # the real dispatch decision: one launch per epoch up to ONE_BLOCK_MAX_BATCH rows (every
    # network here fits, wide ones through the global fallback), tiled steps above it
    path = loops.sgd_epoch_path(sizes, batch, 60000)
    assert path == ("one-block" if batch <= loops.ONE_BLOCK_MAX_BATCH else "tiled")
    wide = loops.one_block_layout(sizes, min(batch, loops.ONE_BLOCK_MAX_BATCH),
                                  PRODUCTION_THREADS, LIMIT)
    if sizes in WIDE and batch == 32:
        assert not wide["work_in_shared"]  # the global fallback, not a failed launch


def _static_shared_bytes(tile):
    """{kernel name: bytes of static shared arrays} for every kernel in steepest.kernels.cuda
    that declares one, with TILE = ``tile`` (read from the sources: no compiler needed)."""
    from steepest.kernels import cuda as package
    from steepest.kernels.cuda._device import ELEMENTWISE_THREADS

    names = {"TILE": tile, "TILE_PADDED": tile + 1, "ELEMENTWISE_THREADS": ELEMENTWISE_THREADS}
    found = {}
    for path in sorted(Path(package.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef):
                continue
            total = 0
            for call in ast.walk(node):
                if not (isinstance(call, ast.Call) and ast.unparse(call.func)
                        == "cuda.shared.array"):
                    continue
                shape = eval(ast.unparse(call.args[0]), {}, names)  # constants and TILEs only
                dtype = ast.unparse(call.args[1])
                assert dtype in ("np.float32", "FLOAT32_TYPE"), (node.name, dtype)
                if shape == 0:
                    continue  # dynamic: sized at launch (the one-block kernel, tested above)
                total += 4 * math.prod(shape if isinstance(shape, tuple) else (shape,))
            if total:
                found[f"{path.stem}.{node.name}"] = total
    return found


@pytest.mark.parametrize("tile", [SIMULATOR_TILE, PRODUCTION_TILE])
def test_tiled_kernels_static_shared_arrays_fit(tile):
    found = _static_shared_bytes(tile)
    assert {"dense._dense_forward_kernel", "dense._dense_backward_input_kernel",
            "dense._dense_params_kernel"} <= set(found), found
    for name, nbytes in found.items():
        assert nbytes <= LIMIT, (name, nbytes)
    if tile == PRODUCTION_TILE:  # (16·16 + 16·17) and 2·16·17 floats
        assert found["dense._dense_forward_kernel"] == 4 * (16 * 16 + 16 * 17) == 2112
        assert found["dense._dense_params_kernel"] == 4 * 2 * 16 * 17 == 2176


def test_the_running_tile_matches_a_size_checked_here():
    from steepest.kernels.cuda import _device, loops

    assert _device.TILE in (SIMULATOR_TILE, PRODUCTION_TILE)
    assert loops.ONE_BLOCK_THREADS in (SIMULATOR_THREADS, PRODUCTION_THREADS)


def test_a_layout_that_cannot_fit_is_refused_not_launched(loops):
    threads = loops.ONE_BLOCK_THREADS
    too_small = 4 * threads - 4  # not even one partial sum per thread
    assert not loops.one_block_fits([6, 5, 3], 1, threads, too_small)
    with pytest.raises(ValueError, match="shared memory"):
        loops.one_block_layout([6, 5, 3], 1, threads, too_small)


@pytest.mark.parametrize("batch_size", [1, 3])
def test_an_epoch_that_does_not_fit_one_block_trains_tiled(rng, monkeypatch, loops,
                                                           batch_size):
    # With a shared-memory limit below the one-block kernel's minimum, per-sample and
    # mini-batch SGD must fall back to tiled steps (before the fallback: a crash in
    # one_block_layout) and still match the CPU.
    import steepest

    monkeypatch.setattr(loops, "SHARED_MEMORY_BYTES", 4 * loops.ONE_BLOCK_THREADS - 4)
    assert loops.sgd_epoch_path([6, 5, 3], batch_size, 7) == "tiled"
    X = rng.standard_normal((7, 6)).astype(np.float32)
    y = rng.integers(0, 3, 7)
    weights = [(rng.standard_normal((o, i)) / np.sqrt(i)).astype(np.float32)
               for i, o in ((6, 5), (5, 3))]
    biases = [np.zeros(5, np.float32), np.zeros(3, np.float32)]
    nets = {}
    for device in ("cpu", "cuda"):
        nets[device] = steepest.Network.from_params(
            [W.copy() for W in weights], [b.copy() for b in biases], activation="tanh",
            loss="cross_entropy", device=device)
        nets[device].fit(X, y, batch_size=batch_size, learning_rate=0.3, epochs=1,
                         shuffle=False)
    assert_close(nets["cuda"]._params, nets["cpu"]._params, rtol=1e-4, atol=1e-5)
