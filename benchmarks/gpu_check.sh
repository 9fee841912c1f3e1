#!/usr/bin/env bash
# The first minutes on a GPU, in one command (see benchmarks/gpu_check.py): gpu tests,
# compute-sanitizer over each kernel path, W1-W3 beside PyTorch, one table.  Without a GPU
# it says so and exits 2, having checked nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && python=.venv/bin/python
exec "$python" benchmarks/gpu_check.py "$@"
