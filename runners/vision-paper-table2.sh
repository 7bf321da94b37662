#!/usr/bin/env bash
# The paper's Table 2 on COCO 2017 (GPU, real weights): bash runners/vision-paper-table2.sh COCO_ROOT [OUT]
# Three backbones, each under its own Table 3 recipe (preset): binary segmentation of dogs (mIoU) and pose
# (Match Rate) at n = 3 and n = 30 shots, 3 seeds each; one command per cell.
# Published (segmentation n=3 / n=30, pose n=3 / n=30):
#   LTX-Video (2B)      16.41 / 46.15 / 14.64 / 38.47
#   CogVideoX1.5 (5B)   34.08 / 58.16 / 46.38 / 65.09
#   Wan2.1 (14B)        52.88 / 68.38 / 51.74 / 72.51
set -euo pipefail
coco=$1
out=${2:-results/vision-table2}
for recipe in cogvideox1.5-5b-i2v:paper ltx-video-2b-i2v:paper-ltx wan2.1-i2v-14b-480p:paper-wan; do
  backbone=${recipe%%:*}
  preset=${recipe#*:}
  for shots in 3 30; do
    arcvdm vision run binary-segmentation --data "$coco/annotations/instances_val2017.json" --category dog \
      --shots "$shots" --seeds 3 --backbone "$backbone" --preset "$preset" --out "$out/$backbone/seg-n$shots"
    arcvdm vision run pose --data "$coco/annotations/person_keypoints_val2017.json" \
      --shots "$shots" --seeds 3 --backbone "$backbone" --preset "$preset" --out "$out/$backbone/pose-n$shots"
  done
done
