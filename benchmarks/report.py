"""Turn a saved pytest-benchmark run into the markdown tables of benchmarks/RESULTS.md.

    python benchmarks/report.py .benchmarks/<machine>/<NNNN>_<name>.json

Throughput is samples per second from the median round (spread: samples/s at the first and
third quartile of the round times); "× numpy" and "× torch" are how many times faster
steepest's median is than that implementation's median in the same run.
"""

import json
import sys
from collections import defaultdict


def _impl(bench):
    return bench.get("extra_info", {}).get("implementation") or bench["params"].get(
        "implementation", "?")


def workload_table(benches):
    groups = defaultdict(dict)
    for b in benches:
        if b["name"].startswith(("test_bench_epoch", "test_bench_inference")):
            groups[b["group"]][_impl(b)] = b
    lines = ["| workload | implementation | samples/s (median) | spread (Q1–Q3) | rounds | "
             "× numpy | × torch | test accuracy |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for group in sorted(groups):
        row = groups[group]
        for impl in ("steepest", "numpy", "torch"):
            if impl not in row:
                continue
            b = row[impl]
            s, n = b["stats"], b["extra_info"]["samples"]
            ratios = []
            for other in ("numpy", "torch"):
                if impl == "steepest" and other in row:
                    ratios.append(f"{row[other]['stats']['median'] / s['median']:.1f}×")
                else:
                    ratios.append("")
            lines.append(f"| {group} | {impl} | {n / s['median']:,.0f} | "
                         f"{n / s['q3']:,.0f}–{n / s['q1']:,.0f} | {s['rounds']} | "
                         f"{ratios[0]} | {ratios[1]} | {b['extra_info'].get('accuracy', '')} |")
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
    print("\n### Compile time\n")
    print(compile_table(benches))
    print("\n### Kernels (float32)\n")
    print(kernel_table(benches))


if __name__ == "__main__":
    main(sys.argv[1])
