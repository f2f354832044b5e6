#!/usr/bin/env bash
# The GPU run in one command (see benchmarks/gpu_paper.py): every data-free paper preset run,
# recorded and timed against the CPU, within a 10-minute slot.
#   benchmarks/gpu_paper.sh "$OUT"            # table, runs, records and logs under $OUT
#   benchmarks/gpu_paper.sh "$OUT" --dry-run  # the plan only
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-runs/gpu-paper}}"
shift || true
exec "${PYTHON:-.venv/bin/python}" benchmarks/gpu_paper.py --out "$out" "$@"
