"""What a longer-trained prior changes: continue the shipped mini's stage 2 (the transformer, VAE frozen) for more
steps on generated videos it has not seen (data seed 100), then bench the result (docs/mini.md).

    python runners/mini_longer_stage2.py OUT [STEPS=8000] [LR=5e-4]
    arcvdm mini-bench --out OUT/bench --tasks 100 --seed 1 --preset mini --backbone OUT/pipe

An experiment, not a build: OUT/pipe is the shipped folder with the continued transformer and without a model card
(`pretrain-mini --minutes N` is the reproducible longer build). Rerunning after a kill resumes from OUT/state.
"""

import shutil
import sys
from pathlib import Path

import torch
from diffusers import CogVideoXImageToVideoPipeline

from arcvdm.backbones import BACKBONES
from arcvdm.backbones.mini_card import CARD_JSON, CARD_README
from arcvdm.pretrain.stages import Pretrainer, Recipe

out = Path(sys.argv[1])
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 8000
lr = float(sys.argv[3]) if len(sys.argv) > 3 else 5e-4
shipped_dir = Path(BACKBONES.get("mini").source)
pretrainer = Pretrainer(out / "state", Recipe(seed=100, transformer_steps=steps, transformer_lr=lr))
shipped = CogVideoXImageToVideoPipeline.from_pretrained(shipped_dir, dtype=torch.float32)
# the frozen text encoder always comes from the shipped folder; the VAE and transformer only on a fresh start
# (a resumed run has them in its state)
parts = ("text_encoder", "vae", "transformer") if pretrainer.stage == "vae" else ("text_encoder",)
for part in parts:
    getattr(pretrainer.pipe, part).load_state_dict(getattr(shipped, part).state_dict())
pretrainer.stage = "transformer"
pretrainer._train_transformer()
last = pretrainer.losses["transformer"][-50:]
print(f"stage 2 continued for {steps} steps; mean loss of the last {len(last)}: {sum(last) / len(last):.5f}")
shutil.rmtree(out / "pipe", ignore_errors=True)
shutil.copytree(shipped_dir, out / "pipe", ignore=shutil.ignore_patterns(CARD_JSON, CARD_README))
pretrainer.pipe.transformer.to(torch.float16).save_pretrained(out / "pipe" / "transformer")
