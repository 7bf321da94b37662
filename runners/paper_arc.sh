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
BACKBONE=${BACKBONE:-cogvideox1.5-5b-i2v}  # or a local folder holding the pipeline (no hub access needed then)
OUT=${OUT:-results/paper-arc}
EXECUTOR=${EXECUTOR:-local}

slurm=()
if [ -n "${PARTITION:-}" ]; then slurm+=(--partition "$PARTITION"); fi
if [ -n "${ACCOUNT:-}" ]; then slurm+=(--account "$ACCOUNT"); fi

status=0
arcvdm run "$DATASET" --preset "$PRESET" --backbone "$BACKBONE" --out "$OUT" --executor "$EXECUTOR" \
    ${slurm[@]+"${slurm[@]}"} "$@" || status=$?
if [ "$status" -gt 1 ]; then exit "$status"; fi
arcvdm score "$OUT"
arcvdm report "$OUT"
exit "$status"
