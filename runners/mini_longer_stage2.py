"""What a longer-trained prior changes: continue a mini's stage 2 (the transformer, VAE frozen) for more steps on
generated videos it has not seen (data seed 100 unless --data-seed), at the canvas and layout its model card names,
then bench the result (docs/mini.md).

    python runners/mini_longer_stage2.py OUT [STEPS=8000] [LR=5e-4] [--base DIR] [--data-seed N] [--fresh-videos]
    arcvdm mini-bench --out OUT/bench --tasks 100 --seed 1 --preset mini --backbone OUT/pipe

--base: the mini folder to continue (default: the shipped `arcvdm/backbones/mini`; e.g. a `pretrain-mini --canvas 80
--layout token-aligned` build, whose runs add its `--set video.height=80 ...`; or an earlier OUT of this runner, to
continue a continuation). An experiment, not a build: OUT/pipe is the base folder with the continued transformer and
without a model card (`pretrain-mini --minutes N` is the reproducible longer build). --data-seed: the seed of the
generated videos (give a continuation of a continuation another one, so that its videos are new too). --fresh-videos:
every step draws and encodes videos of its own (the recipe's `fresh_videos`) instead of a pool of 200 per 500 steps.
Rerunning after a kill resumes from OUT/state.
"""

import argparse
import shutil
import sys
from pathlib import Path

import torch
from diffusers import CogVideoXImageToVideoPipeline

from arcvdm.backbones import BACKBONES
from arcvdm.backbones.mini_card import CARD_JSON, CARD_README
from arcvdm.io import read_json
from arcvdm.pretrain.stages import Pretrainer, Recipe

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("out", type=Path)
parser.add_argument("steps", type=int, nargs="?", default=8000)
parser.add_argument("lr", type=float, nargs="?", default=5e-4)
parser.add_argument("--base", type=Path, default=Path(BACKBONES.get("mini").source))
parser.add_argument("--data-seed", type=int, default=100, help="seed of the generated videos")
parser.add_argument("--fresh-videos", action="store_true", help="new videos every step instead of a reused pool")
args = parser.parse_args()
card, earlier = args.base / CARD_JSON, args.base / "state" / ".pretrain" / "state.pt"
if card.exists():
    built = read_json(card)["recipe"]
elif earlier.exists():  # an earlier OUT of this runner: its state holds the recipe, OUT/pipe the weights
    built = torch.load(earlier, map_location="cpu", weights_only=False)["recipe"]
    args.base = args.base / "pipe"
else:
    sys.exit(f"{args.base}: neither a model card ({CARD_JSON}) nor this runner's state, so the canvas and layout to "
             f"continue at are unknown: --base a folder that `arcvdm backbone pretrain-mini` or this runner wrote")
recipe = Recipe(seed=args.data_seed, transformer_steps=args.steps, transformer_lr=args.lr, fresh_videos=args.fresh_videos,
                canvas=built.get("canvas", Recipe.canvas), layout=built.get("layout", Recipe.layout))
pretrainer = Pretrainer(args.out / "state", recipe)
base = CogVideoXImageToVideoPipeline.from_pretrained(args.base, dtype=torch.float32)
# the frozen text encoder always comes from the base folder; the VAE and transformer only on a fresh start
# (a resumed run has them in its state)
parts = ("text_encoder", "vae", "transformer") if pretrainer.stage == "vae" else ("text_encoder",)
for part in parts:
    getattr(pretrainer.pipe, part).load_state_dict(getattr(base, part).state_dict())
pretrainer.stage = "transformer"
pretrainer._train_transformer()
last = pretrainer.losses["transformer"][-50:]
print(f"stage 2 continued for {args.steps} steps; mean loss of the last {len(last)}: {sum(last) / len(last):.5f}")
shutil.rmtree(args.out / "pipe", ignore_errors=True)
shutil.copytree(args.base, args.out / "pipe", ignore=shutil.ignore_patterns(CARD_JSON, CARD_README))
pretrainer.pipe.transformer.to(torch.float16).save_pretrained(args.out / "pipe" / "transformer")
