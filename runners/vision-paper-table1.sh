#!/usr/bin/env bash
# The paper's Table 1 grid on COCO 2017 (GPU, real weights): bash runners/vision-paper-table1.sh COCO_ROOT [OUT]
# Segmentation of dogs and pose, n = 3 and 30 shots, four trajectories, 3 seeds each, 5 sampling steps.
set -euo pipefail
coco=$1
out=${2:-results/vision-table1}
for shots in 3 30; do
  for trajectory in quadratic linear discrete tiles; do
    arcvdm vision run binary-segmentation --data "$coco/annotations/instances_val2017.json" --category dog \
      --shots "$shots" --seeds 3 --preset paper-ablation --trajectory "$trajectory" --out "$out/seg-$trajectory-n$shots"
    arcvdm vision run pose --data "$coco/annotations/person_keypoints_val2017.json" \
      --shots "$shots" --seeds 3 --preset paper-ablation --trajectory "$trajectory" --out "$out/pose-$trajectory-n$shots"
  done
done
