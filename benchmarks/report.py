"""Turn a saved pytest-benchmark run into the markdown tables of benchmarks/RESULTS.md.

    python benchmarks/report.py .benchmarks/<machine>/<NNNN>_<name>.json

Throughput is samples per second from the median round (spread: samples/s at the first and
third quartile of the round times); "× numpy" and "× torch" are how many times faster
steepest's median is than that implementation's median in the same run, per sample (so the
five-epoch ``fit`` row compares too).  "× kernel" is a public-API row's median time per sample
÷ its kernel row's (``steepest``) in the same run: what the user's call costs beside the
kernel (issue 14's target: ≤ 1.15×); "× kernel, paired" the same ratio as the median over
back-to-back pairs of the two calls after the row's rounds (``fit_over_kernel_paired``,
``predict_over_kernel_paired``), steadier on a shared machine, whose load changes between one
row's rounds and the next's.  The sparse table's "× dense" is how many times faster the CSR
row's median is than the same rows dense ("paired": from back-to-back pairs); the CLI table
is wall seconds of one run each.
"""

import json
import sys
from collections import defaultdict


def _impl(bench):
    return bench.get("extra_info", {}).get("implementation") or (bench.get("params") or {}).get(
        "implementation", "?")


# the rows of a workload group, in this order: the kernel row, the public-API rows, the others
WORKLOAD_IMPLEMENTATIONS = ("steepest", "steepest fit", "steepest fit x5", "steepest predict",
                            "numpy", "torch")
PUBLIC_API = ("steepest fit", "steepest fit x5", "steepest predict")
# a public-API row's time ÷ its kernel's, from back-to-back pairs after its rounds
PAIRED = ("fit_over_kernel_paired", "predict_over_kernel_paired")


def _per_sample(bench):
    return bench["stats"]["median"] / bench["extra_info"]["samples"]


def workload_table(benches):
    groups = defaultdict(dict)
    for b in benches:
        if b["name"].startswith(("test_bench_epoch", "test_bench_inference", "test_bench_fit",
                                 "test_bench_predict")):
            groups[b["group"]][_impl(b)] = b
    lines = ["| workload | implementation | samples/s (median) | spread (Q1–Q3) | rounds | "
             "× numpy | × torch | × kernel | × kernel, paired | test accuracy |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for group in sorted(groups):
        row = groups[group]
        for impl in WORKLOAD_IMPLEMENTATIONS:
            if impl not in row:
                continue
            b = row[impl]
            s, n = b["stats"], b["extra_info"]["samples"]
            ratios = []
            for other in ("numpy", "torch"):
                if impl.startswith("steepest") and other in row:
                    ratios.append(f"{_per_sample(row[other]) / _per_sample(b):.1f}×")
                else:
                    ratios.append("")
            kernel = (f"{_per_sample(b) / _per_sample(row['steepest']):.2f}×"
                      if impl in PUBLIC_API and "steepest" in row else "")
            paired = next((f"{b['extra_info'][key]:.2f}×" for key in PAIRED
                           if key in b["extra_info"]), "")
            lines.append(f"| {group} | {impl} | {n / s['median']:,.0f} | "
                         f"{n / s['q3']:,.0f}–{n / s['q1']:,.0f} | {s['rounds']} | "
                         f"{ratios[0]} | {ratios[1]} | {kernel} | {paired} | "
                         f"{b['extra_info'].get('accuracy', '')} |")
    return "\n".join(lines)


def grid_table(benches):
    """Issue 19's width × batch grid (test_bench_width_grid.py): thousands of samples/s of
    ``steepest fit`` beside PyTorch and NumPy, and steepest ÷ PyTorch, with the path fit
    took; empty when the run has none."""
    cells = defaultdict(dict)
    for b in benches:
        if b["name"].startswith("test_bench_width_grid"):
            info = b["extra_info"]
            cells[(info["width"], str(info["batch"]))][_impl(b)] = b
    if not cells:
        return ""
    batches = sorted({batch for _, batch in cells}, key=lambda b: (b == "full", b.zfill(6)))
    lines = ["| hidden H | " + " | ".join(f"batch {b}" for b in batches) + " |",
             "|---|" + "---|" * len(batches)]
    paths = []
    for width in sorted({w for w, _ in cells}):
        row = []
        for batch in batches:
            cell = cells.get((width, batch), {})
            if "steepest fit" not in cell:
                row.append("–")
                continue
            ours = cell["steepest fit"]
            rate = ours["extra_info"]["samples"] / ours["stats"]["median"] / 1e3
            text = f"{rate:,.1f}k"
            for other in ("torch", "numpy"):
                if other in cell:
                    theirs = cell[other]["extra_info"]["samples"] / \
                        cell[other]["stats"]["median"] / 1e3
                    text += f" vs {other} {theirs:,.1f}k ({rate / theirs:.2f}×)"
            row.append(text)
            paths.append(f"784-{width}-10, batch {batch}: "
                         f"{ours['extra_info'].get('training_path', '?')}")
        lines.append(f"| {width} | " + " | ".join(row) + " |")
    return "\n".join(lines + [""] + [f"- {p}" for p in paths])


def threads_table(benches):
    """W3 through ``fit(threads=…)`` beside PyTorch on as many threads."""
    rows = [b for b in benches if b["name"].startswith("test_bench_w3_threads")]
    if not rows:
        return ""
    lines = ["| implementation | samples/s (median) | rounds |", "|---|---:|---:|"]
    for b in sorted(rows, key=lambda b: (b["extra_info"]["threads"], _impl(b))):
        n = b["extra_info"]["samples"]
        lines.append(f"| {_impl(b)} | {n / b['stats']['median']:,.0f} | "
                     f"{b['stats']['rounds']} |")
    return "\n".join(lines)


def sparse_table(benches):
    """The sparse-input rows (test_bench_sparse.py): each problem's CSR row beside its dense
    row; empty when the run has none."""
    groups = defaultdict(dict)
    for b in benches:
        if b["name"].startswith("test_bench_sparse_fit"):
            groups[b["group"]][b["extra_info"]["input"]] = b
    if not groups:
        return ""

    def order(group):  # MNIST first, then the random problems by density
        info = next(iter(groups[group].values()))["extra_info"]
        return (info["problem"] != "mnist", info.get("nominal_density") or 0.0)

    lines = ["| W1 fit(epochs=1) on | input | density | samples/s (median) | spread (Q1–Q3) | "
             "rounds | × dense | × dense, paired | fit's extra peak ÷ input, 1 epoch | "
             "2 epochs | test accuracy |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for group in sorted(groups, key=order):
        row = groups[group]
        label = group.split(", ", 1)[-1]
        for fmt in ("csr", "dense"):
            if fmt not in row:
                continue
            b = row[fmt]
            s, info = b["stats"], b["extra_info"]
            n = info["samples"]
            faster = (f"{row['dense']['stats']['median'] / s['median']:.2f}×"
                      if fmt == "csr" and "dense" in row else "")
            paired = (f"{1 / info['csr_over_dense_paired']:.2f}×"
                      if "csr_over_dense_paired" in info else "")
            lines.append(f"| {label} | {fmt} | {info['density']:.1%} | {n / s['median']:,.0f} | "
                         f"{n / s['q3']:,.0f}–{n / s['q1']:,.0f} | {s['rounds']} | {faster} | "
                         f"{paired} | "
                         f"{info['peak_over_input']:.1%} | "
                         f"{info['peak_over_input_2_epochs']:.1%} | {info['accuracy']} |")
    return "\n".join(lines)


def kernel_table(benches):
    groups = defaultdict(dict)
    for b in benches:
        if b["name"].startswith(("test_bench_dense", "test_bench_activation")):
            groups[b["group"]][_impl(b)] = b
    lines = ["| kernel | steepest median µs | numpy median µs | × numpy | max rel. error |",
             "|---|---:|---:|---:|---:|"]
    for group in sorted(groups):
        row = groups[group]
        if "steepest" not in row or "numpy" not in row:
            continue
        ours, theirs = row["steepest"]["stats"]["median"], row["numpy"]["stats"]["median"]
        error = row["steepest"].get("extra_info", {}).get("max_rel_error", "")
        lines.append(f"| {group} | {ours * 1e6:,.1f} | {theirs * 1e6:,.1f} | "
                     f"{theirs / ours:.2f}× | {error:.1e} |")
    return "\n".join(lines)


def compile_table(benches):
    rows = defaultdict(dict)
    for b in benches:
        info = b.get("extra_info", {})
        if b["name"].startswith("test_bench_compile_cold"):
            rows[info["workload"]]["cold"] = info["first_call_s"]
        elif b["name"].startswith("test_bench_compile_warm"):
            rows[info["workload"]]["warm"] = info["warm_start_s"]
    lines = ["| workload | cold first call, s (target ≤ 3) | warm-cache start, launch to "
             "first call done, s (target ≤ 1) |", "|---|---:|---:|"]
    for name in sorted(rows):
        lines.append(f"| {name} | {rows[name].get('cold', '')} | {rows[name].get('warm', '')} |")
    return "\n".join(lines)


def cli_table(benches):
    """The CLI's first run, cold and from a warm cache (test_bench_compile.py); empty when
    the run has neither."""
    cells, command = {}, None
    for b in benches:
        info = b.get("extra_info", {})
        if b["name"].startswith("test_bench_cli_cold"):
            cells["cold"], command = info["cli_cold_s"], info["command"]
        elif b["name"].startswith("test_bench_cli_warm"):
            cells["first"], cells["warm"] = info["cli_first_run_s"], info["cli_warm_s"]
            command = info["command"]
    if not cells:
        return ""
    return "\n".join([
        "| command | cold: no cache, s (target ≤ 6) | first run into an empty cache, s | "
        "warm cache, s |", "|---|---:|---:|---:|",
        f"| `{command}` | {cells.get('cold', '')} | {cells.get('first', '')} | "
        f"{cells.get('warm', '')} |"])


def main(path):
    with open(path) as f:
        run = json.load(f)
    info = run.get("machine_info", {})
    print(f"Run {run.get('datetime', '?')} on {info.get('node', '?')}: "
          f"{info.get('cpu', {}).get('brand_raw', '?')}, {info.get('cpu', {}).get('count', '?')} "
          f"CPUs, Python {info.get('python_version', '?')}\n")
    benches = run["benchmarks"]
    print("### Epochs and inference\n")
    print(workload_table(benches))
    if any(_impl(b) in PUBLIC_API for b in benches):
        print("\n`steepest` is the epoch kernel as `fit` calls it; `steepest fit` one user "
              "call `fit(X, y, epochs=1, …)`, `steepest fit x5` one `fit(epochs=5)` call "
              "(samples/s over its five epochs, test accuracy after the fifth), `steepest "
              "predict` `predict(X_test)`.")
    grid = grid_table(benches)
    if grid:
        print("\n### Width × batch (784-H-10 through fit, 10,000 rows)\n")
        print(grid)
    threads = threads_table(benches)
    if threads:
        print("\n### W3 on 1 and 2 threads\n")
        print(threads)
    sparse = sparse_table(benches)
    if sparse:
        print("\n### Sparse inputs\n")
        print(sparse)
    print("\n### Compile time\n")
    print(compile_table(benches))
    cli = cli_table(benches)
    if cli:
        print("\n" + cli)
    print("\n### Kernels (float32)\n")
    print(kernel_table(benches))


if __name__ == "__main__":
    main(sys.argv[1])
