#!/usr/bin/env bash
# The embedded default, on a CPU in a few minutes: `bash runners/demo_cpu.sh` (OUT=results/demo by default).
# Runs the whole pipeline end to end on the six tasks_json/ samples with the pretrained `mini` backbone shipped in
# the package (arcvdm/backbones/mini/, no download) under the `mini` preset, then scores it and writes the report.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-results/demo}

# Exit code 1 = some problems failed (recorded in $OUT/problems): still score and report them.
status=0
arcvdm run tasks_json --preset mini --out "$OUT" "$@" || status=$?
if [ "$status" -gt 1 ]; then exit "$status"; fi
arcvdm score "$OUT"
arcvdm report "$OUT"
exit "$status"
