#!/usr/bin/env bash
# ARC-AGI-1 evaluation with the real CogVideoX1.5-5B-I2V, the paper's protocol (1800 steps, eval every 300, pass@2).
#   bash runners/paper_arc.sh                                   # this machine: one worker per visible GPU
#   EXECUTOR=slurm PARTITION=gpu ACCOUNT=lab bash runners/paper_arc.sh   # one SLURM job array, one GPU per problem
# Extra arguments go to `arcvdm run` (e.g. --limit 10, --tasks ID,ID). Rerunning the command resumes.
# With slurm the submitting process waits for the array (run it in tmux/screen); if it is stopped the array goes on,
# and rerunning later resumes from the finished problems. Logs: $OUT/slurm/.
set -euo pipefail
cd "$(dirname "$0")/.."
DATASET=${DATASET:-arc-agi-1/evaluation}
PRESET=${PRESET:-paper-arc}
BACKBONE=${BACKBONE:-}  # default: the preset's backbone; or a registered name, or a local pipeline folder (no hub)
OUT=${OUT:-results/paper-arc}
EXECUTOR=${EXECUTOR:-local}

args=()
if [ -n "$BACKBONE" ]; then args+=(--backbone "$BACKBONE"); fi
if [ -n "${PARTITION:-}" ]; then args+=(--partition "$PARTITION"); fi
if [ -n "${ACCOUNT:-}" ]; then args+=(--account "$ACCOUNT"); fi

status=0
arcvdm run "$DATASET" --preset "$PRESET" --out "$OUT" --executor "$EXECUTOR" \
    ${args[@]+"${args[@]}"} "$@" || status=$?
if [ "$status" -gt 1 ]; then exit "$status"; fi
arcvdm score "$OUT"
arcvdm report "$OUT"
exit "$status"
