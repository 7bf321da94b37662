#!/usr/bin/env bash
# ConceptARC with the real CogVideoX1.5-5B-I2V, the paper's protocol (600 steps, eval every 100, pass@3).
#   bash runners/paper_conceptarc.sh                                   # this machine: one worker per visible GPU
#   EXECUTOR=slurm PARTITION=gpu ACCOUNT=lab bash runners/paper_conceptarc.sh   # one SLURM job array, one GPU per problem
# The same recipe as paper_arc.sh (see it for the options) on another dataset and preset.
set -euo pipefail
DATASET=${DATASET:-conceptarc} PRESET=${PRESET:-paper-conceptarc} OUT=${OUT:-results/paper-conceptarc} \
    exec bash "$(dirname "$0")/paper_arc.sh" "$@"
