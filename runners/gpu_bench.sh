#!/usr/bin/env bash
# What a paper-arc problem costs on this GPU, for every full-size random backbone registered, at the paper's shapes:
# training step time and MFU, peak memory with and without gradient checkpointing, one 50-step video, projected
# minutes per problem (fixed schedule and early stop). At most 8 minutes; one JSON file and a table.
#   bash runners/gpu_bench.sh                          # -> results/gpu-bench-<UTC date>.json
#   OUT=results/h200.json bash runners/gpu_bench.sh --compile
# Without a CUDA device it stops at once with a one-line error (exit 2). Extra arguments go to `arcvdm bench gpu`.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-results/gpu-bench-$(date -u +%Y%m%d-%H%M).json}
mkdir -p "$(dirname "$OUT")"
# The hard stop: the JSON is rewritten after every backbone, so a cut run keeps what it measured.
timeout --kill-after=15 480 arcvdm bench gpu --out "$OUT" --budget-s 420 "$@"
