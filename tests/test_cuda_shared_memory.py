"""Shared memory stays within what the launchers assume (SHARED_MEMORY_BYTES, 48 KB per block
without the driver opt-in; Hopper's 227 KB with it), for the benchmark networks and wide ones,
at the simulator's and the GPU's block sizes; an epoch whose one-block layout cannot fit takes
the tiled path; the launch plan chooses from the widths as well as the batch.

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
    # the real dispatch decision: tiled above ONE_BLOCK_MAX_BATCH rows; at or below it,
    # whichever step the launch plan estimates cheaper (every network here fits one block,
    # wide ones through the global fallback)
    plan = loops.launch_plan(sizes, batch, 60000)
    assert loops.sgd_epoch_path(sizes, batch, 60000) == plan["path"]
    if batch > loops.ONE_BLOCK_MAX_BATCH:
        assert plan["path"] == "tiled" and plan["one_block_step_s"] is None
    else:
        cheaper = plan["one_block_step_s"] <= plan["tiled_step_s"]
        assert plan["path"] == ("one-block" if cheaper else "tiled"), plan
    wide = loops.one_block_layout(sizes, min(batch, loops.ONE_BLOCK_MAX_BATCH),
                                  PRODUCTION_THREADS, LIMIT)
    if sizes in WIDE and batch == 32:
        assert not wide["work_in_shared"]  # the global fallback, not a failed launch


# ------------------------------------------------------------------ the launch plan
def test_the_tutorials_networks_keep_one_launch_per_epoch(loops):
    # per-sample and the small batches the benchmarks and tutorials use
    for sizes, batches in (([784, 30, 10], (1, 10, 32)), ([784, 16, 16, 10], (1, 10, 32)),
                           ([784, 128, 64, 10], (1, 10, 32)), ([2, 3, 1], (1, 32))):
        for batch in batches:
            assert loops.sgd_epoch_path(sizes, batch, 60000) == "one-block", (sizes, batch)


def test_a_wide_network_at_fits_default_batch_takes_the_whole_gpu(loops):
    # the cliff: 784-1024-1024-10 at fit's default batch ran on one SM of 132
    from steepest.models.network import DEFAULT_BATCH_SIZE

    for batch in (DEFAULT_BATCH_SIZE, 10):
        plan = loops.launch_plan([784, 1024, 1024, 10], batch, 60000)
        assert plan["path"] == "tiled", plan
        assert plan["one_block_step_s"] > 2 * plan["tiled_step_s"]
    # one row per step is still cheapest on one SM
    assert loops.sgd_epoch_path([784, 1024, 1024, 10], 1, 60000) == "one-block"
    # and a square 4096-wide layer is not, even per sample
    assert loops.sgd_epoch_path([4096, 4096, 10], 1, 60000) == "tiled"


def test_step_macs_counts_forward_delta_and_update(loops):
    # 784-30-10: forward 784·30 + 30·10 = 23,820, the update as many, δ of layer 1 only: 300
    assert loops.step_macs([784, 30, 10], 1) == 2 * 23_820 + 300
    assert loops.step_macs([784, 30, 10], 10) == 10 * (2 * 23_820 + 300)
    assert loops.step_macs([5, 4], 3) == 3 * 2 * 20  # one layer: no δ to propagate


SHAPES = [[784, 30, 10], [784, 128, 64, 10], [784, 512, 10], [784, 1024, 1024, 10],
          [4096, 4096, 10], [100, 100, 100, 100, 10]]


@pytest.mark.parametrize("sizes", SHAPES, ids=lambda s: "-".join(map(str, s)))
def test_the_path_changes_once_as_the_batch_grows(loops, sizes):
    # one-block up to some batch, tiled from there on: never back
    paths = [loops.sgd_epoch_path(sizes, batch, 60000) for batch in range(1, 65)]
    switch = paths.index("tiled")
    assert set(paths[switch:]) == {"tiled"}, paths
    assert switch <= loops.ONE_BLOCK_MAX_BATCH


@pytest.mark.parametrize("batch", [1, 4, 10, 32])
def test_widening_a_layer_never_brings_back_one_block(loops, batch):
    paths = [loops.sgd_epoch_path([784, width, 10], batch, 60000)
             for width in (8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)]
    if "tiled" in paths:
        assert set(paths[paths.index("tiled"):]) == {"tiled"}, paths


def test_a_short_epoch_plans_for_the_rows_it_has(loops):
    # a batch larger than the data set is one step of all rows, planned as such
    assert loops.launch_plan([784, 512, 10], 32, 3) == loops.launch_plan([784, 512, 10], 3, 3)


@pytest.mark.parametrize("batch_size", [1, 3])
def test_an_epoch_planned_tiled_trains_tiled_and_matches_the_cpu(rng, monkeypatch, loops,
                                                                 batch_size):
    # With one SM made (on paper) a thousand times slower, even [6, 5, 3] plans tiled: the
    # epoch must run the tiled launches (a spy counts them) and match the CPU.
    monkeypatch.setattr(loops, "ONE_SM_MACS_PER_S", loops.ONE_SM_MACS_PER_S / 1e6)
    assert loops.launch_plan([6, 5, 3], batch_size, 7)["path"] == "tiled"
    ran = _spy_paths(monkeypatch, loops)
    _train_on_both_devices(rng, batch_size)
    assert ran == ["tiled", "tiled"]  # fit's warm-up epoch and the epoch


def _spy_paths(monkeypatch, loops):
    """Record which epoch function each CUDA epoch runs, by name, in the returned list."""
    ran = []
    for name, label in (("_one_block_epoch", "one-block"), ("_tiled_epoch", "tiled")):
        original = getattr(loops, name)

        def spy(*args, original=original, label=label, **kwargs):
            ran.append(label)
            return original(*args, **kwargs)

        monkeypatch.setattr(loops, name, spy)
    return ran


def _train_on_both_devices(rng, batch_size, sizes=(6, 5, 3)):
    """One epoch from the same start on the CPU and on CUDA; asserts they agree."""
    import steepest

    n = 7
    X = rng.standard_normal((n, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], n)
    weights = [(rng.standard_normal((o, i)) / np.sqrt(i)).astype(np.float32)
               for i, o in zip(sizes[:-1], sizes[1:])]
    biases = [np.zeros(o, np.float32) for o in sizes[1:]]
    nets = {}
    for device in ("cpu", "cuda"):
        nets[device] = steepest.Network.from_params(
            [W.copy() for W in weights], [b.copy() for b in biases], activation="tanh",
            loss="cross_entropy", device=device)
        nets[device].fit(X, y, batch_size=batch_size, learning_rate=0.3, epochs=1,
                         shuffle=False)
    assert_close(nets["cuda"]._params, nets["cpu"]._params, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------ the shared-memory opt-in
HOPPER = 227 * 1024  # H100/H200's opt-in maximum per block


@pytest.mark.parametrize("sizes,batch", CASES, ids=lambda x: "-".join(map(str, x))
                         if isinstance(x, list) else f"b{x}")
def test_the_opt_in_layout_fits_hoppers_limit_and_keeps_more_in_shared(loops, sizes, batch):
    small = loops.one_block_layout(sizes, batch, PRODUCTION_THREADS, LIMIT)
    large = loops.one_block_layout(sizes, batch, PRODUCTION_THREADS, HOPPER)
    assert large["shared_bytes"] <= HOPPER
    assert large["shared_from"] <= small["shared_from"]  # at least as many layers shared
    assert large["work_in_shared"] >= small["work_in_shared"]


def test_on_hopper_the_tutorials_networks_are_wholly_in_shared_memory(loops):
    for sizes, batch in (([784, 30, 10], 10), ([784, 16, 16, 10], 1), ([784, 30, 10], 32)):
        layout = loops.one_block_layout(sizes, batch, PRODUCTION_THREADS, HOPPER)
        assert layout["shared_from"] == 0 and layout["work_in_shared"], (sizes, batch)
        assert layout["shared_bytes"] > LIMIT  # so these launches need the opt-in


def test_the_simulator_plans_within_48_kb(loops):
    # the simulator has no opt-in: the limit stays the launch default, and nothing is raised
    from steepest.kernels import _cuda

    if not _cuda.simulator_enabled():
        pytest.skip("on a GPU the limit is the device's (tests/test_cuda_gpu.py)")
    assert _cuda.shared_memory_opt_in_bytes() is None
    assert loops.one_block_shared_limit() == LIMIT
    assert not _cuda.raise_dynamic_shared_memory(loops._sgd_epoch_one_block_kernel, (), LIMIT)


def _layouts_used(monkeypatch, loops):
    """The layout of every one-block epoch, in the returned list."""
    used = []
    original = loops._one_block_epoch

    def spy(*args, **kwargs):
        value, layout = original(*args, **kwargs)
        used.append(layout)
        return value, layout

    monkeypatch.setattr(loops, "_one_block_epoch", spy)
    return used


@pytest.mark.parametrize("granted", [True, False])
def test_the_opt_in_launches_with_the_large_layout_only_when_granted(rng, monkeypatch, loops,
                                                                     granted):
    # A device reporting a larger opt-in limit than the network needs: the epoch plans for
    # it, asks the driver to raise the kernel's limit, and launches the whole-network-in-
    # shared-memory layout when granted, the 48 KB one when refused.  The simulator does not
    # enforce limits, so both layouts really run here, and both match the CPU.
    from steepest.kernels import _cuda

    asked = []
    # "48 KB" scaled to [6, 5, 3] per sample: the partial sums (one per thread), the work
    # buffer (18 floats) and the last layer (18), not W⁰
    small = 4 * (loops.ONE_BLOCK_THREADS + 36)
    monkeypatch.setattr(loops, "SHARED_MEMORY_BYTES", small)
    monkeypatch.setattr(_cuda, "shared_memory_opt_in_bytes", lambda: HOPPER)
    monkeypatch.setattr(_cuda, "raise_dynamic_shared_memory",
                        lambda kernel, args, nbytes: asked.append(nbytes) or granted)
    used = _layouts_used(monkeypatch, loops)
    _train_on_both_devices(rng, 1)
    assert len(used) == 2  # fit's warm-up epoch and the epoch
    for layout in used:
        whole = layout["shared_from"] == 0 and layout["work_in_shared"]
        assert whole == granted, layout
        assert layout["shared_bytes"] <= (HOPPER if granted else small)
        assert layout["shared_from"] == (0 if granted else 35)  # W⁰ and b⁰: 35 floats
    assert asked and all(nbytes > small for nbytes in asked)


def test_with_the_opt_in_switched_off_nothing_is_asked(rng, monkeypatch, loops):
    from steepest.kernels import _cuda

    monkeypatch.setattr(loops, "SHARED_MEMORY_OPT_IN", False)
    monkeypatch.setattr(_cuda, "shared_memory_opt_in_bytes", lambda: HOPPER)
    monkeypatch.setattr(_cuda, "raise_dynamic_shared_memory",
                        lambda *args: pytest.fail("the opt-in was asked for"))
    assert loops.one_block_shared_limit() == LIMIT
    _train_on_both_devices(rng, 1)


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
    monkeypatch.setattr(loops, "SHARED_MEMORY_BYTES", 4 * loops.ONE_BLOCK_THREADS - 4)
    assert loops.sgd_epoch_path([6, 5, 3], batch_size, 7) == "tiled"
    _train_on_both_devices(rng, batch_size)
