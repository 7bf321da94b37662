#!/usr/bin/env bash
# One synthetic run per vision family on the tiny backbone (CPU, a few minutes): bash runners/vision-cpu-demo.sh [OUT]
# A tiny random model scores about 0: this checks the plumbing and shows the pictures, not the method.
set -euo pipefail
out=${1:-results/vision-cpu-demo}
for family in $(arcvdm vision list --names); do
  arcvdm vision run "$family" --data synthetic --shots 3 --seeds 1 --eval 4 --preset vision-smoke --out "$out/$family"
done
for family in $(arcvdm vision list --names); do arcvdm score "$out/$family"; done
